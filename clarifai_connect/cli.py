"""The ``clarifai-connect`` command line."""

from __future__ import annotations

import logging
import signal
import sys

import click

from . import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="clarifai-connect")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def cli(verbose: int) -> None:
    """Move annotated data into and out of Clarifai.

    \b
    Start here:
      clarifai-connect serve            a local Clarifai-compatible API server
    """
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind. Keep the loopback default unless you mean to share it.")
@click.option("--port", default=50051, show_default=True, type=int,
              help="gRPC port (0 picks a free one).")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Where resources and media are kept [default: a per-user data folder].")
@click.option("--pat", "pats", multiple=True, envvar="CLARIFAI_CONNECT_SERVER_PATS",
              help="A key the server accepts (repeatable; env CLARIFAI_CONNECT_SERVER_PATS, "
                   "comma-separated). When none is given, one is generated and printed.")
@click.option("--fault-rate", type=click.FloatRange(0, 1), default=0.0,
              help="Testing: fraction of calls that fail with a transient fault.")
@click.option("--fault-kind", type=click.Choice(["unavailable", "throttle"]),
              default="unavailable", show_default=True, help="Testing: which transient fault.")
@click.option("--latency", type=float, default=0.0, help="Testing: seconds added to every call.")
def serve(host: str, port: int, data_dir: str | None, pats: tuple[str, ...], fault_rate: float,
          fault_kind: str, latency: float) -> None:
    """Run a local Clarifai-compatible API server.

    It speaks Clarifai's gRPC API (the official SDK works against it unchanged), keeps
    apps, datasets, inputs and annotations in SQLite with media on disk, and serves hosted
    media over HTTP. Point a client at the printed base URL with the printed key:

    \b
      clarifai-connect serve --port 50051 --data-dir ./clarifai-data
      export CLARIFAI_API_BASE=http://127.0.0.1:50051 CLARIFAI_PAT=<printed key>
    """
    from .server import FaultInjector, LocalServer

    keys = [k for p in pats for k in p.split(",") if k.strip()]
    generated = not keys
    server = LocalServer(data_dir=data_dir, host=host, port=port, keys=keys or None,
                         faults=FaultInjector(latency=latency, rate=fault_rate, kind=fault_kind))
    server.start()
    click.echo(f"Serving the Clarifai API on {server.base_url}")
    click.echo(f"Hosted media on {server.media_url}; data in {server.data_dir}")
    if generated:
        # Printed once, to the terminal that asked for it; it never reaches a log.
        click.echo(f"Generated key (use as CLARIFAI_PAT): {server.keys[0]}")
    sys.stdout.flush()
    signal.signal(signal.SIGTERM, lambda *_: server.stop())
    try:
        server.wait()
    except KeyboardInterrupt:
        server.stop()


@cli.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def plugins_command(as_json: bool) -> None:
    """List every connector and exporter with the distribution that provides it.

    Plugins come from the ``clarifai_connect`` entry-point group; choose which load with
    CLARIFAI_CONNECT_PLUGINS (only these third-party ones) and
    CLARIFAI_CONNECT_DISABLE_PLUGINS (never these, built-ins included).
    """
    from .plugins import get_registry

    registry = get_registry()
    rows = [(reg.kind, reg.name, reg.plugin.distribution, reg.plugin.version,
             reg.description, reg.options)
            for table in (registry.connectors, registry.exporters)
            for reg in sorted(table.values(), key=lambda r: r.name)]
    if as_json:
        import json

        click.echo(json.dumps({
            "plugins": [{"kind": k, "name": n, "distribution": d, "version": v,
                         "description": desc, "options": o} for k, n, d, v, desc, o in rows],
            "errors": registry.errors}, indent=2))
        return
    width = max([len(n) for _, n, *_ in rows] + [4])
    for kind, name, dist, version, description, _ in rows:
        click.echo(f"{kind:<9} {name:<{width}}  {dist} {version}".rstrip()
                   + (f"  — {description}" if description else ""))
    if not rows:
        click.echo("no connectors or exporters are loaded")
    for error in registry.errors:
        click.echo(f"error: {error}", err=True)


@cli.command()
@click.argument("source")
@click.option("--format", "format_", default="auto", show_default=True,
              help="Connector name (see `clarifai-connect plugins`), or auto to detect it.")
@click.option("-o", "--option", "options", multiple=True, metavar="KEY=VALUE",
              help="A connector option (repeatable; JSON values; dotted keys nest, "
                   "e.g. -o columns.input=image_name).")
@click.option("-s", "--storage-option", "storage", multiple=True, metavar="KEY=VALUE",
              help="An fsspec storage option for the source (repeatable, same syntax).")
@click.option("--check-media", is_flag=True,
              help="Also open every media file and check its content is the declared kind.")
def validate(source: str, format_: str, options: tuple[str, ...], storage: tuple[str, ...],
             check_media: bool) -> None:
    """Read SOURCE and check it, sending nothing: counts, then each problem.

    Exits with 1 when anything is wrong (a broken item, a missing file, a duplicate id).
    """
    from .errors import UserError
    from .plugins import parse_option_pairs
    from .validation import validate_source

    def show(problem) -> None:
        click.echo(f"problem: {problem}")

    try:
        report = validate_source(source, format_, options=parse_option_pairs(options),
                                 storage_options=parse_option_pairs(storage, "storage option"),
                                 media=check_media, on_problem=show)
    except UserError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(report.summary())
    if not report.ok:
        sys.exit(1)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="clarifai-connect")


if __name__ == "__main__":
    main()
