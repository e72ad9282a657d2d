"""The product's metrics: declared once, bounded labels, Prometheus text out."""

from __future__ import annotations

from datetime import timedelta

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from contracts import generation
from contracts.models import JobKind
from streams.metrics import Metrics
from tests.factories import T0
from tests.unit.test_generation import NOW, issue, job_for


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(metrics.registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_the_registry_text_parses_and_counts_events_by_type() -> None:
    metrics = Metrics(CollectorRegistry())

    metrics.event_in("AssignmentAccepted")
    metrics.event_in("AssignmentAccepted")
    metrics.event_in("InvoiceIssued")

    seen = samples(metrics)
    accepted = ("contractflow_events_in_total", (("event_type", "AssignmentAccepted"),))
    assert seen[accepted] == 2
    assert (
        seen[("contractflow_events_in_total", (("event_type", "InvoiceIssued"),))] == 1
    )


def test_unknown_label_values_are_counted_as_other() -> None:
    metrics = Metrics(CollectorRegistry())

    metrics.event_in("asg-1 of org-a")
    metrics.duplicate("somewhere")
    metrics.attempt("weird")
    metrics.dead_letter("NOT_A_CODE")
    metrics.warning("SOMETHING")

    label_values = {value for _, labels in samples(metrics) for _, value in labels}
    assert "asg-1 of org-a" not in label_values
    assert "other" in label_values
    other = ("contractflow_dead_letters_total", (("reason", "other"),))
    assert samples(metrics)[other] == 1


def test_every_known_series_exists_at_zero_before_anything_happens() -> None:
    seen = samples(Metrics(CollectorRegistry()))

    assert (
        seen[("contractflow_duplicates_suppressed_total", (("stage", "intake"),))] == 0
    )
    assert (
        seen[("contractflow_generation_attempts_total", (("outcome", "skipped"),))] == 0
    )
    assert (
        seen[("contractflow_dead_letters_total", (("reason", "MISSING_PARTY"),))] == 0
    )
    code = (("code", "CONTRACT_EXPECTED_WARNING"),)
    assert seen[("contractflow_warnings_emitted_total", code)] == 0


def test_an_issuance_counts_and_observes_the_seconds_since_acceptance() -> None:
    metrics = Metrics(CollectorRegistry())

    metrics.issued(T0, T0 + timedelta(seconds=4))

    seen = samples(metrics)
    assert seen[("contractflow_contracts_issued_total", ())] == 1
    histogram = "contractflow_acceptance_to_issuance_seconds"
    assert seen[(f"{histogram}_bucket", (("le", "2.5"),))] == 0
    assert seen[(f"{histogram}_bucket", (("le", "5.0"),))] == 1
    assert seen[(f"{histogram}_sum", ())] == 4


def test_two_instances_on_separate_registries_do_not_collide() -> None:
    first, second = Metrics(CollectorRegistry()), Metrics(CollectorRegistry())

    first.previews.inc()

    assert samples(first)[("contractflow_previews_total", ())] == 1
    assert samples(second)[("contractflow_previews_total", ())] == 0


def test_sent_outcomes_count_issues_duplicates_voids_and_notifications() -> None:
    metrics = Metrics(CollectorRegistry())
    job = job_for()
    entry, issued = issue(job)
    duplicate = generation.plan(job, entry, delivery="jobs/0/7", now=NOW).outcome
    cancel = job.model_copy(
        update={"kind": JobKind.CANCEL, "cause": "evt-cancel", "reason": "budget cut"}
    )
    void = generation.plan(cancel, entry, delivery="jobs/0/8", now=NOW).outcome

    for outcome in (issued, duplicate, duplicate, void):
        metrics.sent(outcome, issued.contracts[0].issued_at + timedelta(seconds=3))

    seen = samples(metrics)
    assert seen[("contractflow_contracts_issued_total", ())] == 1
    attempts = "contractflow_generation_attempts_total"
    assert seen[(attempts, (("outcome", "success"),))] == 1
    assert seen[(attempts, (("outcome", "duplicate"),))] == 2
    stage = (("stage", "generate"),)
    assert seen[("contractflow_duplicates_suppressed_total", stage)] == 2
    assert seen[("contractflow_voids_requested_total", ())] == 1
    assert seen[("contractflow_acceptance_to_issuance_seconds_sum", ())] == 3
