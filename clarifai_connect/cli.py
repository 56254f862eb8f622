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


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="clarifai-connect")


if __name__ == "__main__":
    main()
