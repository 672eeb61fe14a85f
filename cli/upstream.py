"""``ducats publish`` and ``ducats mint``: the upstream client on the command line.

Both validate every event with the schema before sending it. Exit codes:
0 when everything was sent; 1 when ``publish`` turned a line away at the door
(the valid lines are sent all the same), or on a one-line ``ducats: error:``.
"""
from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

import click
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

from ducats.settings import Settings
from ducats.upstream import (
    FLUSH_EVERY,
    BadRequest,
    EventKind,
    RejectedLine,
    mint_events,
    publish_lines,
    publish_mints,
)


@click.command()
@click.argument("source", default="-", metavar="[FILE|-]")
@click.option("--topic", "kind", required=True, type=click.Choice([k.value for k in EventKind]),
              help="The input topic: mints or transactions.")
@click.pass_context
def publish(ctx: click.Context, source: str, kind: str) -> None:
    """Validate JSON lines from FILE (or - for stdin) and send the valid ones.

    Each rejected line is reported on stderr as "line N: <reason>: <detail>"
    and not sent. Exit code 0 when every line was sent, 1 when any was rejected.
    """
    settings: Settings = ctx.obj
    console = Console(stderr=True)
    with _open_source(source) as stream, _bar(console, DownloadColumn()) as bar:
        task = bar.add_task(f"publishing {source}", total=_size(source))

        def report(rejected: RejectedLine) -> None:
            console.print(str(rejected), markup=False, highlight=False)

        summary = asyncio.run(publish_lines(settings, kind=EventKind(kind),
                                            lines=_advancing(stream, bar, task), on_rejected=report))
    click.echo(str(summary))
    if not summary.ok:
        ctx.exit(1)


@click.command()
@click.option("--batches", type=int, required=True, help="How many mint events (one batch each).")
@click.option("--size", type=int, required=True, help="Ducats per mint event, 1..10000.")
@click.option("--holder", required=True, help="Who receives the minted ducats, e.g. treasury.")
@click.option("--first-batch", type=int, default=1, show_default=True, help="The first batch number.")
@click.pass_obj
def mint(settings: Settings, batches: int, size: int, holder: str, first_batch: int) -> None:
    """Publish BATCHES mint events of SIZE ducats each, with mint ids mint-<batch>."""
    mints = mint_events(batches=batches, size=size, holder=holder, first_batch=first_batch)
    console = Console(stderr=True)
    # Flush about a hundred times over the run, so the bar moves as Kafka confirms.
    flush_every = max(1, min(FLUSH_EVERY, batches // 100))
    with _bar(console, MofNCompleteColumn()) as bar:
        task = bar.add_task("minting", total=batches)
        sent = asyncio.run(publish_mints(settings, mints, flush_every=flush_every,
                                         on_sent=lambda n: bar.advance(task, n)))
    click.echo(f"minted {sent} batches ({first_batch}..{first_batch + batches - 1}) of {size} "
               f"ducats to {holder}: {sent * size} ducats on {settings.topic_mints}")


@contextlib.contextmanager
def _open_source(source: str) -> Iterator[BinaryIO]:
    if source == "-":
        yield sys.stdin.buffer
        return
    try:
        stream = Path(source).open("rb")
    except OSError as exc:
        raise BadRequest(f"cannot read {source}: {exc.strerror}") from None
    with stream:
        yield stream


def _size(source: str) -> float | None:
    # A file's size makes the bar a real fraction; stdin has no end to measure.
    return None if source == "-" else float(Path(source).stat().st_size)


def _bar(console: Console, counter: DownloadColumn | MofNCompleteColumn) -> Progress:
    # Drawn only on a terminal: piped or captured stderr gets the report lines alone.
    return Progress(TextColumn("{task.description}"), BarColumn(), counter, console=console,
                    disable=not console.is_terminal)


def _advancing(lines: Iterable[bytes], bar: Progress, task: TaskID) -> Iterator[bytes]:
    for line in lines:
        bar.advance(task, len(line))
        yield line
