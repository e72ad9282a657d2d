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
