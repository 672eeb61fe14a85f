"""The ``ducats`` command line.

Every failure the project anticipates ends in one line on stderr, starting
``ducats: error:``, and a non-zero exit code.
"""
from __future__ import annotations

import asyncio
import importlib
import subprocess
import sys
from typing import NoReturn

import click
import orjson

from ducats.errors import EXIT_PERMANENT, EXIT_RETRIABLE, DucatsError
from ducats.settings import PROJECT_ROOT, Settings, load_settings

SERVICES = ("postgres", "redis", "kafka")  # what `ducats up` starts without names
OPTIONAL = ("neo4j",)                      # off by default: `ducats up neo4j` (docs/network.md)


def _fail(message: str, code: int = EXIT_PERMANENT) -> NoReturn:
    click.echo(f"ducats: error: {message}", err=True)
    sys.exit(code)


def _services(action: str, names: tuple[str, ...]) -> None:
    script = PROJECT_ROOT / "deploy" / "services.sh"
    rc = subprocess.call(["bash", str(script), action, *names])
    if rc:
        sys.exit(rc)  # the script already printed its one-line reason


class LazyGroup(click.Group):
    """A group whose heavy subcommands are imported only when they are run: the
    benchmarks (bench/) are not loaded by every ``ducats`` start (click's
    documented lazy-loading pattern)."""

    lazy = {"bench": ("bench.cli", "bench", "benchmarks with same-run baselines (BENCHMARKS.md)")}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in self.lazy:
            return super().get_command(ctx, name)
        module, attr, short_help = self.lazy[name]
        if ctx.resilient_parsing or "--help" in sys.argv[1:2]:  # `ducats --help` lists it without importing it
            return click.Command(name, short_help=short_help)
        command: click.Command = getattr(importlib.import_module(module), attr)
        return command


@click.group(cls=LazyGroup)
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Conscious Ducats: stream processing for individually identified coins."""
    from ducats.logs import configure_logging

    ctx.obj = load_settings()
    if ctx.invoked_subcommand != "worker":
        configure_logging(ctx.obj, quiet_clients=True)


@cli.command()
@click.argument("names", nargs=-1, type=click.Choice(SERVICES + OPTIONAL))
def up(names: tuple[str, ...]) -> None:
    """Start Kafka, PostgreSQL and Redis on loopback (idempotent)."""
    _services("up", names)


@cli.command()
@click.argument("names", nargs=-1, type=click.Choice(SERVICES + OPTIONAL))
def down(names: tuple[str, ...]) -> None:
    """Stop the local services; no process is left behind."""
    _services("down", names)


@cli.command()
@click.argument("names", nargs=-1, type=click.Choice(SERVICES + OPTIONAL))
@click.pass_obj
def status(settings: Settings, names: tuple[str, ...]) -> None:
    """Show each local service with its port and health, then the pipeline's own processes
    on this host and what any of them waits for; a configured service (KAFKA_BOOTSTRAP,
    DATABASE_URL, REDIS_URL) that does not answer is one line on stderr each.
    Exit 0 when all is well; 75 when a configured service does not answer, 1 when one
    refuses us, a local service is down or a process waits (README, "Exit codes")."""
    from ducats.health import read_statuses

    script = PROJECT_ROOT / "deploy" / "services.sh"
    rc = subprocess.call(["bash", str(script), "status", *names])
    procs = read_statuses(settings.run_dir)
    if procs:
        click.echo(f"{'PROCESS':<10} {'PID':<8} {'STATE':<8} WAITING FOR")
    for p in procs:
        click.echo(f"{p['component']:<10} {p['pid']:<8} {'ready' if p['ready'] else 'waiting':<8} "
                   f"{p['waitingFor'] or '-'}")
    failures = asyncio.run(_probe_configured(settings, tuple(n for n in names or SERVICES if n in SERVICES)))
    for exc in failures:
        click.echo(f"ducats: error: {exc}", err=True)
    if failures:
        sys.exit(EXIT_RETRIABLE if all(exc.retriable for exc in failures) else EXIT_PERMANENT)
    if rc or not all(p["ready"] for p in procs):
        sys.exit(1)


async def _probe_configured(settings: Settings, names: tuple[str, ...]) -> list[DucatsError]:
    """The configured services among ``names`` that do not answer, or refuse us."""
    from ducats.connect import pg_connect, redis_connect
    from ducats.kafka import admin_client

    async def postgres() -> None:
        await (await pg_connect(settings.database_url)).close()

    async def redis() -> None:
        await (await redis_connect(settings.redis_url)).aclose()

    async def kafka() -> None:
        async with admin_client(settings):
            pass

    probes = {"postgres": postgres, "redis": redis, "kafka": kafka}
    results = await asyncio.gather(*(probes[n]() for n in names), return_exceptions=True)
    for r in results:
        if isinstance(r, BaseException) and not isinstance(r, DucatsError):
            raise r
    return [r for r in results if isinstance(r, DucatsError)]


@cli.command()
@click.pass_obj
def topics(settings: Settings) -> None:
    """Create the pipeline's topics (existing ones are left alone)."""
    from ducats.kafka import ensure_topics
    from streams.topics import pipeline_topics

    created = asyncio.run(ensure_topics(settings, pipeline_topics(settings)))
    for spec in pipeline_topics(settings):
        click.echo(f"{spec.name}: {'created' if spec.name in created else 'exists'}")


@cli.command()
@click.pass_obj
def migrate(settings: Settings) -> None:
    """Apply the database migrations (idempotent)."""
    from sinks.postgres.migrate import migrate as run_migrations

    applied = run_migrations(settings.database_url, timescale=settings.timescale)
    click.echo(f"applied: {', '.join(applied)}" if applied else "schema is up to date")


@cli.command()
@click.pass_obj
def ledger(settings: Settings) -> None:
    """Run the ledger worker (a second one waits as a hot standby)."""
    from ducats.logs import configure_logging
    from streams.ledger import main as run_ledger
    from streams.ledger import preflight

    # At start-up nothing is waited out, and the clients are still quiet: a service that does
    # not answer ends the command in one line (exit 75). Once running, the ledger rides out restarts.
    asyncio.run(preflight(settings))
    configure_logging(settings)
    run_ledger(settings)


@cli.command()
@click.pass_obj
def worker(settings: Settings) -> None:
    """Run a Faust worker (start more for more replicas in the same group)."""
    from streams.app import run_worker

    run_worker(settings)


@cli.command()
@click.option("--once", is_flag=True, help="one run, printed as JSON, then exit")
@click.option("--every", type=click.FloatRange(1, 86_400), default=None,
              help="seconds between runs (DUCATS_ANALYZE_EVERY, 60)")
@click.pass_obj
def analyze(settings: Settings, once: bool, every: float | None) -> None:
    """Network intelligence: components, PageRank and communities of the holder graph (docs/network.md)."""
    from ducats.logs import configure_logging
    from ducats.observability import serve_metrics
    from streams.analyze import run_every, run_once

    configure_logging(settings)
    if once:
        click.echo(orjson.dumps(asyncio.run(run_once(settings)), option=orjson.OPT_INDENT_2).decode())
        return
    serve_metrics(settings.analyze_metrics_port)
    asyncio.run(run_every(settings, every or settings.analyze_every))


@cli.command()
@click.option("--once", is_flag=True, help="one pass, then exit")
@click.option("--every", type=click.FloatRange(0.1, 3600), default=1.0, show_default=True,
              help="seconds between passes")
@click.pass_obj
def mirror(settings: Settings, once: bool, every: float) -> None:
    """Mirror holders and edges into Neo4j (NEO4J_URL; `ducats up neo4j`), idempotent by seq."""
    from ducats.logs import configure_logging
    from streams.mirror import run as run_mirror

    configure_logging(settings)
    if not once:
        from ducats.observability import serve_metrics

        serve_metrics(settings.mirror_metrics_port)
    sent = asyncio.run(run_mirror(settings, every=every, once=once))
    if once:
        click.echo(f"mirrored {sent} edges")


@cli.command()
@click.pass_obj
def cascades(settings: Settings) -> None:
    """Watch the accepted log for cascades; raise one alert per burst (docs/network.md)."""
    from ducats.logs import configure_logging
    from streams.cascades import main as run_cascades

    configure_logging(settings)
    run_cascades(settings)


@cli.command()
@click.option("--host", default=None, help="address to listen on (DUCATS_API_HOST, 127.0.0.1)")
@click.option("--port", type=click.IntRange(0, 65535), default=None, help="port (DUCATS_API_PORT, 8000)")
@click.option("--workers", type=click.IntRange(1, 64), default=None,
              help="server processes sharing the port (DUCATS_API_WORKERS, 1)")
@click.pass_obj
def api(settings: Settings, host: str | None, port: int | None, workers: int | None) -> None:
    """Serve the HTTP API and the dashboard (uvicorn; docs at /docs)."""
    from cli.serve import run_api

    run_api(settings, host=host or settings.api_host, port=settings.api_port if port is None else port,
            workers=workers or settings.api_workers)


@cli.command("api-key")
def api_key() -> None:
    """Print a new API key and the digest to add to DUCATS_API_KEYS."""
    from serving.auth import new_key

    key, digest = new_key()
    click.echo(f"key:    {key}\ndigest: {digest}\n(give the key to the client; configure DUCATS_API_KEYS={digest})")


@cli.command()
@click.pass_obj
def demo(settings: Settings) -> None:
    """Run the whole pipeline end to end on a demo workload."""
    from rich.console import Console

    from cli.demo import run_demo

    console = Console(stderr=True)
    with console.status("running the demo workload"):
        report = asyncio.run(run_demo(settings, say=console.log))
    snap = report["snapshot"]
    v = snap["velocity"]
    rejected = ", ".join(f"{n} {reason}" for reason, n in sorted(report["rejected"].items()))
    letters = ", ".join(f"{n} {reason}" for reason, n in sorted(report["deadLetters"].items()))
    click.echo(f"ledger: {report['accepted']} accepted (mints and transfers); rejected: {rejected}; "
               f"dead letters: {letters}")
    click.echo(f"snapshot v{snap['version']} at seq {snap['position']['seq']}: supply {snap['supply']}, "
               f"circulation {snap['circulation']}, holders {snap['holders']}, transfers {snap['transfers']}, "
               f"velocity 1m/1h/1d {v['1m']['velocity']}/{v['1h']['velocity']}/{v['1d']['velocity']}")
    top = ", ".join(f"{t['ducatId']} ({t['transfers']})" for t in snap["topCirculating"][:3])
    click.echo(f"top circulating: {top}")
    n = report["network"]
    influencers = ", ".join(f"{h['holder']} ({h['pagerank']:.3f})" for h in n["influence"][:3])
    click.echo(f"network: {n['graph']['nodes']} holders, {n['graph']['edges']} edges, "
               f"{n['components']['count']} component(s), {n['communityCount']} communities; "
               f"top influence: {influencers}")


from cli.upstream import mint, publish  # noqa: E402  (registered after the group exists)

cli.add_command(publish)
cli.add_command(mint)



def main() -> None:
    try:
        cli(standalone_mode=True)
    except DucatsError as exc:
        _fail(str(exc), exc.exit_code)


if __name__ == "__main__":
    main()
