"""The `contractflow` command line.

Each subcommand is one `Command` in `COMMANDS`: a function that adds its
arguments to a parser and a function that runs it and returns the exit code.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import pydantic

from contracts.errors import ContractflowError
from streams import admin, tools
from streams.auth import READ_ROLE, mint_token
from streams.settings import Settings
from streams.topics import Catalog

EXIT_OK = 0
EXIT_PARTIAL = 1  # the command ran, but some input was refused or not delivered
EXIT_ERROR = 2  # the command could not run: no broker, bad settings, bad usage
EXIT_INTERRUPTED = 130


@dataclass(frozen=True)
class Command:
    """A subcommand: its name, one line of help, its arguments and its body."""

    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


def configure_topics(parser: argparse.ArgumentParser) -> None:
    """Add the `topics` actions."""
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("create", help="create every topic of the catalog")


def run_topics(args: argparse.Namespace) -> int:
    """Create the catalog's topics, with the settings from the environment."""
    settings = load_settings()
    created = admin.create_topics(settings, Catalog(settings), timeout=args.timeout)
    total = len(list(Catalog(settings)))
    print(f"created {len(created)} topics; {total - len(created)} already existed")
    for name in created:
        print(f"  {name}")
    return EXIT_OK


def configure_produce(parser: argparse.ArgumentParser) -> None:
    """Add the `produce` arguments."""
    parser.add_argument("topic", metavar="TOPIC", help="with or without the prefix")
    parser.add_argument("file", metavar="FILE", help="JSON lines, or - for stdin")
    parser.add_argument(
        "--key", metavar="FIELD", help="record field to key by (default: the topic's)"
    )


def run_produce(args: argparse.Namespace) -> int:
    """Produce a file of JSON lines; report refused lines on stderr."""
    settings = load_settings()
    with open_lines(args.file) as lines:
        result = tools.produce_lines(
            settings,
            args.topic,
            lines,
            key_field=args.key,
            timeout=args.timeout,
            report=lambda problem: print(problem, file=sys.stderr),
        )
    if result.failed:
        print(f"{result.failed} records were not delivered", file=sys.stderr)
    print(f"produced {result.produced} records to {result.topic}")
    return EXIT_OK if result.ok else EXIT_PARTIAL


def configure_tail(parser: argparse.ArgumentParser) -> None:
    """Add the `tail` arguments."""
    parser.add_argument("topic", metavar="TOPIC", help="with or without the prefix")
    parser.add_argument(
        "--from-beginning", action="store_true", help="start at the oldest record"
    )
    parser.add_argument(
        "--idle", type=float, metavar="SECONDS", help="stop after SECONDS without one"
    )
    parser.add_argument(
        "--meta", action="store_true", help="wrap values with key, offset, headers"
    )
    parser.add_argument("--max", type=int, metavar="N", help="stop after N records")


def run_tail(args: argparse.Namespace) -> int:
    """Print a topic's records as JSON lines."""
    tools.tail(
        load_settings(),
        args.topic,
        sys.stdout,
        from_beginning=args.from_beginning,
        idle=args.idle,
        meta=args.meta,
        max_records=args.max,
        timeout=args.timeout,
    )
    return EXIT_OK


def configure_worker(parser: argparse.ArgumentParser) -> None:
    """The worker takes no arguments: it reads CONTRACTFLOW_* only."""


def run_worker(args: argparse.Namespace) -> int:
    """Run one worker until SIGTERM or Ctrl-C."""
    from streams.worker import run_worker as run

    return run(load_settings())


def configure_dev(parser: argparse.ArgumentParser) -> None:
    """Add the `dev` arguments."""
    parser.add_argument(
        "--dir",
        default=".contractflow/dev",
        help="where the stack keeps logs, data and artifacts (default: %(default)s)",
    )


def run_dev(args: argparse.Namespace) -> int:
    """Start the embedded broker and redis-server, create topics, run a worker."""
    from streams.devrun import run_dev as run

    return run(Path(args.dir))


def configure_demo(parser: argparse.ArgumentParser) -> None:
    """Add the `demo` arguments."""
    parser.add_argument(
        "--assignments",
        type=int,
        default=1000,
        metavar="N",
        help="how many assignments the scenario has (default: %(default)s)",
    )
    parser.add_argument(
        "--seed", type=int, default=7, help="the scenario's seed (default: %(default)s)"
    )
    parser.add_argument(
        "--dir",
        default=".contractflow/demo",
        help="wiped, then used for logs and artifacts (default: %(default)s)",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the stack running until Ctrl-C"
    )


def run_demo(args: argparse.Namespace) -> int:
    """Run the embedded stack and a worker on a seeded scenario; print a summary."""
    from streams.demo import run_demo as run

    return run(
        Path(args.dir), assignments=args.assignments, seed=args.seed, keep=args.keep
    )


def configure_bench(parser: argparse.ArgumentParser) -> None:
    """Add the `bench` arguments."""
    add = parser.add_argument
    add("--assignments", type=int, default=50_000, metavar="N", help="backlog size")
    add("--skip-baselines", action="store_true", help="measure the pipeline only")
    add("--json", type=Path, metavar="PATH", help="also write the figures as JSON")
    add("--scale", action="store_true", help="1 and 2 workers, registry recovery")
    add("--registry-keys", type=int, default=1_000_000, metavar="N")
    add("--paced-seconds", type=float, default=30.0, metavar="S")
    add("--profile", type=Path, metavar="PATH", help="py-spy the worker, no baselines")
    add("--profile-seconds", type=float, default=30.0, metavar="S")
    add("--keep", action="store_true", help="keep the logs and data directory")


def run_bench(args: argparse.Namespace) -> int:
    """Measure the pipeline against baselines on the embedded stack."""
    from streams.bench import BenchOptions
    from streams.bench import run_bench as run

    options = BenchOptions(
        assignments=args.assignments,
        skip_baselines=args.skip_baselines,
        json_path=args.json,
        scale=args.scale,
        registry_keys=args.registry_keys,
        paced_seconds=args.paced_seconds,
        profile_path=args.profile,
        profile_seconds=args.profile_seconds,
        keep=args.keep,
    )
    return run(options)


def configure_token(parser: argparse.ArgumentParser) -> None:
    """Add the `token` arguments."""
    parser.add_argument("--org", required=True, metavar="ORG", help="the org_id")
    parser.add_argument(
        "--project",
        required=True,
        action="append",
        metavar="P",
        help="a project_id the token reaches, or * for all; repeat for more",
    )
    parser.add_argument(
        "--role",
        action="append",
        metavar="R",
        help=f"a role to grant; repeat for more (default: {READ_ROLE})",
    )
    parser.add_argument(
        "--ttl",
        type=float,
        default=3600.0,
        metavar="SECONDS",
        help="how long the token is valid (default: %(default)s)",
    )
    parser.add_argument(
        "--sub", default="operator", help="who holds it (default: %(default)s)"
    )


def run_token(args: argparse.Namespace) -> int:
    """Print a token signed with CONTRACTFLOW_JWT_SECRET."""
    if args.ttl <= 0:
        raise tools.CommandError("--ttl must be a positive number of seconds")
    secret = load_settings().jwt_secret
    if secret == Settings.model_fields["jwt_secret"].default:
        print(
            "contractflow: warning: CONTRACTFLOW_JWT_SECRET is not set; "
            "signing with the built-in default",
            file=sys.stderr,
        )
    print(
        mint_token(
            secret,
            sub=args.sub,
            org_id=args.org,
            project_ids=args.project,
            roles=args.role or [READ_ROLE],
            ttl_seconds=args.ttl,
        )
    )
    return EXIT_OK


def configure_timeline(parser: argparse.ArgumentParser) -> None:
    """Add the `timeline` arguments."""
    parser.add_argument("org", metavar="ORG", help="the org_id")
    parser.add_argument("project", metavar="PROJECT", help="the project_id")
    parser.add_argument("mission", metavar="MISSION", help="the mission_id")


def run_timeline(args: argparse.Namespace) -> int:
    """Read the topics and print a mission's timeline, one table per assignment."""
    from streams.timelines import format_timeline, read_timeline

    timeline = read_timeline(
        load_settings(), args.org, args.project, args.mission, timeout=args.timeout
    )
    sys.stdout.write(format_timeline(timeline))
    return EXIT_OK


def configure_dlq(parser: argparse.ArgumentParser) -> None:
    """Add the `dlq` actions: list and redrive."""
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="print dead letters as a table")
    listing.add_argument("--reason", metavar="CODE", help="only this reason code")
    listing.add_argument("--org", metavar="ORG", help="only this organization")
    listing.add_argument("--project", metavar="P", help="only this project")
    listing.add_argument(
        "--from-beginning", action="store_true", help="read the whole topic (default)"
    )
    again = actions.add_parser("redrive", help="send dead letters back to be retried")
    again.add_argument("--reason", metavar="CODE", help="letters with this reason")
    again.add_argument(
        "--offset",
        action="append",
        default=[],
        metavar="[PARTITION:]OFFSET",
        help="the letter at this place on contract.dlq (repeatable)",
    )
    again.add_argument("--all", action="store_true", help="every dead letter")


def run_dlq(args: argparse.Namespace) -> int:
    """List dead letters, or send the chosen ones back to their topics."""
    from streams import dlq

    settings = load_settings()
    if args.action == "list":
        filters = {"reason": args.reason, "org": args.org, "project": args.project}
        dlq.list_letters(settings, sys.stdout, timeout=args.timeout, **filters)
        return EXIT_OK
    result = dlq.redrive(
        settings,
        reason=args.reason,
        offsets=args.offset,
        everything=args.all,
        timeout=args.timeout,
    )
    for position, why in result.skipped:
        print(f"not redriven {position}: {why}", file=sys.stderr)
    print(f"redrove {len(result.sent)} dead letters: {' '.join(result.sent)}")
    return EXIT_OK if result.ok else EXIT_PARTIAL


def configure_asyncapi(parser: argparse.ArgumentParser) -> None:
    """Add the `asyncapi` arguments."""
    parser.add_argument(
        "--output", metavar="PATH", help="write the document there (default: stdout)"
    )


def run_asyncapi(args: argparse.Namespace) -> int:
    """Print the AsyncAPI document of every topic, or write it to --output."""
    from streams.asyncapi import render

    text = render(load_settings())
    if args.output is None:
        sys.stdout.write(text)
        return EXIT_OK
    try:
        Path(args.output).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise tools.CommandError(f"cannot write {args.output}: {exc.strerror}") from exc
    return EXIT_OK


COMMANDS: list[Command] = [
    Command("topics", "manage the catalog's topics", configure_topics, run_topics),
    Command(
        "produce", "produce JSON lines onto a topic", configure_produce, run_produce
    ),
    Command("tail", "print a topic's records as JSON lines", configure_tail, run_tail),
    Command(
        "worker",
        "run a worker (settings from CONTRACTFLOW_*)",
        configure_worker,
        run_worker,
    ),
    Command("dev", "run the embedded stack and a worker", configure_dev, run_dev),
    Command("demo", "feed a seeded scenario and summarize", configure_demo, run_demo),
    Command("bench", "measure the pipeline and baselines", configure_bench, run_bench),
    Command("token", "mint a bearer token for the API", configure_token, run_token),
    Command("timeline", "print a mission's timeline", configure_timeline, run_timeline),
    Command("dlq", "list or redrive dead letters", configure_dlq, run_dlq),
    Command(
        "asyncapi", "print the AsyncAPI document", configure_asyncapi, run_asyncapi
    ),
]


def build_parser(commands: Sequence[Command] = COMMANDS) -> argparse.ArgumentParser:
    """Return the parser of every subcommand in `commands`."""
    parser = argparse.ArgumentParser(
        prog="contractflow",
        description="Turn accepted assignments into issued, auditable contracts.",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="how long to wait for the broker (default: %(default)s)",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log progress and client details"
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in commands:
        sub = subparsers.add_parser(command.name, help=command.help)
        command.configure(sub)
        sub.set_defaults(run=command.run)
    return parser


def load_settings() -> Settings:
    """Read the settings from the environment, as a command error if invalid."""
    try:
        return Settings()
    except pydantic.ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()
        )
        raise tools.CommandError(f"invalid settings: {problems}") from exc


@contextmanager
def open_lines(path: str) -> Iterator[TextIO]:
    """Open `path` for reading as UTF-8 text, or stdin for `-`."""
    if path == "-":
        yield sys.stdin
        return
    try:
        stream = open(path, encoding="utf-8")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise tools.CommandError(f"cannot read {path}: {exc.strerror}") from exc
    with stream:
        yield stream


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit code."""
    args = build_parser().parse_args(argv)
    _configure_logging(args.verbose)
    try:
        return int(args.run(args))
    except ContractflowError as exc:
        print(f"contractflow: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`| head`); keep Python from complaining at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    # Without -v, an unreachable broker is one line of ours, not a stream of
    # librdkafka connection failures.
    admin.client_log.setLevel(logging.DEBUG if verbose else logging.CRITICAL)


if __name__ == "__main__":
    sys.exit(main())
