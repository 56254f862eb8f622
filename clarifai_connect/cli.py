"""The ``clarifai-connect`` command line."""

from __future__ import annotations

import logging
import os
import signal
import sys

import click

from . import __version__
from .cli_search import print_hits, query_from_options, query_options
from .errors import EXIT_INTERRUPTED


def _api_options(command):
    """``--base-url`` and ``--pat``, as every command that calls the API takes them."""
    command = click.option(
        "--pat", metavar="KEY",
        help="Personal access token. Prefer env CLARIFAI_PAT: a key on the command "
             "line is visible to other users of the machine.")(command)
    return click.option(
        "--base-url", metavar="URL",
        help="The API: https://host, http://host:port, or 'local' for the embedded "
             "local server [default: env CLARIFAI_API_BASE, else the Clarifai cloud].")(command)


def _pair_options(option_help: str, storage_help: str):
    """``-o/--option`` and ``-s/--storage-option`` (repeatable KEY=VALUE pairs, JSON values),
    as every command that reads or writes a source takes them; the help says whose they are."""
    def decorate(command):
        command = click.option("-s", "--storage-option", "storage", multiple=True,
                               metavar="KEY=VALUE", help=storage_help)(command)
        return click.option("-o", "--option", "options", multiple=True, metavar="KEY=VALUE",
                            help=option_help)(command)
    return decorate


def _give_up_option(help_text: str):
    """``--give-up-after SECONDS``: how long every call to the API may fail before the run
    stops."""
    return click.option("--give-up-after", type=click.FloatRange(min=1), default=60,
                        show_default=True, metavar="SECONDS", help=help_text)


_allow_path_option = click.option(
    "--allow-path", "allow_paths", multiple=True, metavar="DIR",
    help="Let media references of the source (absolute paths, file:// URLs, ../) point "
         "into DIR too (repeatable); by default they must stay inside the source.")

_progress_option = click.option(
    "--progress/--no-progress", default=None,
    help="Show progress on stderr: done/total, created/skipped/failed so far, items/s and "
         "the ETA [default: on; a live bar on a terminal, a line every 5 s elsewhere].")


class CommandFailed(click.ClickException):
    """An error shown as one line, ending the command with its own exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def error_line(exc: BaseException, command: str | None = None) -> tuple[str, int]:
    """What the user is told about ``exc`` (one sentence saying what to do), and the exit
    code (the table in the README)."""
    from .errors import (
        EXIT_FAILED,
        ApiUnreachableError,
        AuthError,
        ClarifaiConnectError,
        CredentialsMissing,
    )

    resume = "; run the same command again to resume" if command == "sync" else ""
    if isinstance(exc, CredentialsMissing):
        text = ("no credentials: set CLARIFAI_PAT (or pass --pat KEY), or use --base-url "
                "local for the embedded local server")
    elif isinstance(exc, AuthError):
        text = f"the API refused the key: {exc.reason}; check --pat or CLARIFAI_PAT"
    elif isinstance(exc, ApiUnreachableError):
        text = f"{exc}; check --base-url and the network{resume}"
    elif isinstance(exc, ClarifaiConnectError):
        text = str(exc)
    else:  # a bug: say so, briefly; -vv shows the traceback
        text = (f"unexpected {type(exc).__name__}: {exc} (run with -vv to see the traceback, "
                "and please report it)")
    return text, getattr(exc, "exit_code", EXIT_FAILED)


class OneLineUsageError(click.UsageError):
    """A usage error shown as one line: what is wrong, and where the help is (click's own
    adds the usage line and a hint line before it)."""

    def show(self, file=None) -> None:
        message = self.format_message().rstrip().removesuffix(".")
        hint = f"; see '{self.ctx.command_path} --help'" if self.ctx is not None else ""
        click.echo(f"Error: {message}{hint}", file=file, err=file is None)


def _one_line_usage(exc: click.UsageError) -> click.UsageError:
    """``exc`` as a :class:`OneLineUsageError` (a group called bare still shows its help)."""
    if isinstance(exc, (OneLineUsageError, click.exceptions.NoArgsIsHelpError)):
        return exc
    one = OneLineUsageError(exc.format_message(), exc.ctx)
    one.exit_code = exc.exit_code
    return one


class CommandGroup(click.Group):
    """The top-level group: no traceback reaches the user (unless ``-vv``); every error is
    one line and its exit code."""

    def make_context(self, info_name, args, parent=None, **extra) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as exc:  # the top-level options
            raise _one_line_usage(exc) from None

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:  # a subcommand's arguments, or an unknown command
            raise _one_line_usage(exc) from None
        except (click.exceptions.Exit, click.ClickException, click.exceptions.Abort,
                BrokenPipeError):  # click ends a piped command (| head) quietly itself
            raise
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(EXIT_INTERRUPTED)
        except Exception as exc:
            if ctx.params.get("verbose", 0) >= 2:
                raise
            text, code = error_line(exc, ctx.invoked_subcommand)
            raise CommandFailed(text, code) from None


@click.group(cls=CommandGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="clarifai-connect")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def cli(verbose: int) -> None:
    """Move annotated data into and out of Clarifai.

    \b
    Start here:
      clarifai-connect validate SOURCE                  read and check data, send nothing
      clarifai-connect sync SOURCE --app USER/APP       upload data into an app, resumably
      clarifai-connect export --app USER/APP --to URI --format coco
                                                        write an app or dataset back out
      clarifai-connect search --app USER/APP --concept dog
                                                        find inputs (export takes the same)
      clarifai-connect serve                            a local Clarifai-compatible API server
      clarifai-connect plugins                          the formats this install can read and write

    Add --base-url local to work against an embedded local server, no account needed.
    Credentials come from CLARIFAI_PAT (or --pat); they never appear in logs or reports.
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
              metavar="USER:KEY",
              help="A key the server accepts and whose it is: USER:KEY (every app of USER), "
                   "USER/APP:KEY (that app only); a bare KEY belongs to --user (repeatable; "
                   "env CLARIFAI_CONNECT_SERVER_PATS, comma-separated).")
@click.option("--keys-file", type=click.Path(dir_okay=False), default=None,
              help="A file of such keys, one per line; it must be mode 0600.")
@click.option("--user", default="me", show_default=True,
              help="The user a generated key (and a bare --pat KEY) belongs to.")
@click.option("--any-user", is_flag=True,
              help="Development only: the generated key reaches every user's apps.")
@click.option("--fault-rate", type=click.FloatRange(0, 1), default=0.0,
              help="Testing: fraction of calls that fail with a transient fault.")
@click.option("--fault-kind", type=click.Choice(["unavailable", "throttle"]),
              default="unavailable", show_default=True, help="Testing: which transient fault.")
@click.option("--latency", type=float, default=0.0, help="Testing: seconds added to every call.")
def serve(host: str, port: int, data_dir: str | None, pats: tuple[str, ...],
          keys_file: str | None, user: str, any_user: bool, fault_rate: float,
          fault_kind: str, latency: float) -> None:
    """Run a local Clarifai-compatible API server.

    It speaks Clarifai's gRPC API (the official SDK works against it unchanged), keeps
    apps, datasets, inputs and annotations in SQLite with media on disk, and serves hosted
    media over HTTP. Keys belong to users: a key reaches its user's apps (or its one app)
    only. Point a client at the printed base URL with the printed key:

    \b
      clarifai-connect serve --port 50051 --data-dir ./clarifai-data --user me
      export CLARIFAI_API_BASE=http://127.0.0.1:50051 CLARIFAI_PAT=<printed key>
    """
    from .server import FaultInjector, LocalServer
    from .server.auth import read_keys_file

    keys = [k for p in pats for k in p.split(",") if k.strip()]
    try:
        if keys_file:
            keys += read_keys_file(keys_file)
        server = LocalServer(data_dir=data_dir, host=host, port=port, keys=keys or None,
                             user=user, any_user=any_user,
                             faults=FaultInjector(latency=latency, rate=fault_rate,
                                                  kind=fault_kind))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    server.start()
    click.echo(f"Serving the Clarifai API on {server.base_url}")
    click.echo(f"Hosted media and the web view on {server.media_url}/; data in "
               f"{server.data_dir}")
    if not keys:
        # Printed once, to the terminal that asked for it; it never reaches a log.
        owner = server.auth.identities[0]
        click.echo(f"Generated key for {owner} (use as CLARIFAI_PAT): {server.keys[0]}")
    else:
        click.echo("Accepting keys of: " + ", ".join(sorted({str(i) for i in
                                                              server.auth.identities})))
    if any(i.user_id is None for i in server.auth.identities):
        click.echo("warning: an any-user key is accepted: it reaches every user's apps "
                   "(local development only)", err=True)
    if host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(f"warning: bound to {host}, not loopback: this is a development server "
                   "(no TLS); anyone who reaches it with a key reaches that key's data",
                   err=True)
    sys.stdout.flush()
    signal.signal(signal.SIGTERM, lambda *_: server.stop())
    try:
        server.wait()
    except KeyboardInterrupt:
        server.stop()


@cli.group("plugins", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def plugins_command(ctx: click.Context, as_json: bool) -> None:
    """List every connector, exporter and embedder with the distribution that provides it.

    Plugins come from the ``clarifai_connect`` entry-point group; choose which load with
    CLARIFAI_CONNECT_PLUGINS (only these third-party ones) and
    CLARIFAI_CONNECT_DISABLE_PLUGINS (never these, built-ins included).
    `clarifai-connect plugins new NAME` starts a plugin package of your own.
    """
    if ctx.invoked_subcommand is not None:
        return
    from .plugins import get_registry

    registry = get_registry()
    regs = [reg for table in (registry.connectors, registry.exporters, registry.embedders)
            for reg in sorted(table.values(), key=lambda r: r.name)]
    if as_json:
        import json

        click.echo(json.dumps({
            "plugins": [{"kind": r.kind, "name": r.name, "distribution": r.plugin.distribution,
                         "version": r.plugin.version, "description": r.description,
                         "options": r.options, "option_help": r.option_help} for r in regs],
            "errors": registry.errors}, indent=2))
        return
    width = max([len(r.name) for r in regs] + [4])
    for reg in regs:
        click.echo(f"{reg.kind:<9} {reg.name:<{width}}  {reg.plugin.distribution} "
                   f"{reg.plugin.version}".rstrip()
                   + (f"  — {reg.description}" if reg.description else ""))
        options = reg.option_help
        option_width = max([len(o) for o in options] + [0])
        for option, text in options.items():  # one line each: -o OPTION=… in sync/export
            click.echo(f"    -o {option:<{option_width}}  {_one_line(text)}")
    rows = regs
    if not rows:
        click.echo("no connectors, exporters or embedders are loaded")
    for error in registry.errors:
        click.echo(f"error: {error}", err=True)


@plugins_command.command("new")
@click.argument("name")
@click.option("--dir", "directory", type=click.Path(file_okay=False), default=None,
              help="Where to create the package folder [default: the current directory].")
def plugins_new(name: str, directory: str | None) -> None:
    """Write a working plugin package for the format NAME: a pyproject with the entry
    point, a Reader, a Writer and a test running the conformance kit.

    \b
      clarifai-connect plugins new my-format --dir ~/src
      cd ~/src/clarifai-connect-my-format && pip install -e '.[test]' && python -m pytest
    """
    from .errors import UserError
    from .scaffold import new_plugin

    try:
        root = new_plugin(name, directory)
    except UserError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"wrote {root}")
    click.echo(f"next: cd {root} && pip install -e '.[test]' && python -m pytest")


def _one_line(text: str, limit: int = 100) -> str:
    """Docstring prose for a terminal line: ``markup`` dropped, cut at ``limit`` characters."""
    text = text.replace("``", "")
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


@cli.command()
@click.argument("source")
@click.option("--format", "format_", default="auto", show_default=True,
              help="Connector name (see `clarifai-connect plugins`), or auto to detect it.")
@_pair_options("A connector option (repeatable; JSON values; dotted keys nest, "
               "e.g. -o columns.input=image_name).",
               "An fsspec storage option for the source (repeatable, same syntax).")
@_allow_path_option
@click.option("--check-media", is_flag=True,
              help="Also open every media file and check its content is the declared kind.")
def validate(source: str, format_: str, options: tuple[str, ...], storage: tuple[str, ...],
             check_media: bool, allow_paths: tuple[str, ...]) -> None:
    """Read SOURCE and check it, sending nothing: each problem (and each file ignored, each
    value repaired) as found, then the counts and which connector was chosen and why.

    Exits with 1 when anything is wrong (a broken item, a missing file, a duplicate id),
    with 2 when nothing could be read from a folder that holds files (a wrong --format).
    """
    from .plugins import parse_option_pairs
    from .validation import validate_source

    def show(problem) -> None:
        click.echo(f"problem: {problem}")

    def notice(item) -> None:
        click.echo(f"{item.kind}: {item.source}: {item.reason}")

    report = validate_source(source, format_, options=parse_option_pairs(options),
                             storage_options=parse_option_pairs(storage, "storage option"),
                             media=check_media, on_problem=show, allowed_paths=allow_paths,
                             on_notice=notice)
    click.echo(report.summary())
    if not report.ok:
        sys.exit(1)


class WorkersType(click.ParamType):
    """``--workers``: a number 1-64, or ``auto``."""

    name = "N|auto"

    def convert(self, value, param, ctx):
        if value is None or str(value).strip().lower() == "auto":
            return None
        return click.IntRange(1, 64).convert(value, param, ctx)


@cli.command("sync")
@click.argument("source")
@click.option("--app", "app", metavar="USER/APP",
              help="The target app (USER/APP or its URL); created when missing.")
@click.option("--dataset", metavar="ID", help="A dataset every input joins; created when missing.")
@click.option("--format", "format_", default="auto", show_default=True,
              help="Connector name (see `clarifai-connect plugins`), or auto to detect it.")
@_api_options
@click.option("--workers", type=WorkersType(), default="auto", show_default=True,
              help="Concurrent API calls (inputs and annotations share them): 1-64, or "
                   "auto (4, growing up to 16 while the throughput grows with it).")
@click.option("--batch-size", type=click.IntRange(1, 128), default=128, show_default=True,
              help="Inputs per request.")
@click.option("--state", "state", type=click.Path(dir_okay=False), default=None,
              help="The sync state file [default: one per source and target in "
                   "~/.local/state/clarifai-connect, or $CLARIFAI_CONNECT_STATE_DIR].")
@click.option("--update", is_flag=True,
              help="Also re-send items that changed since they were synced.")
@click.option("--delete", is_flag=True,
              help="Delete app inputs synced from this source that are gone from it "
                   "(refused when anything failed).")
@click.option("--max-delete", type=click.IntRange(0), default=1000, show_default=True,
              help="With --delete: refuse to delete more inputs than this.")
@click.option("--dry-run", is_flag=True, help="Read the source and the state; send nothing; "
                                             "print what would be done.")
@click.option("--report", "report", type=click.Path(dir_okay=False), default=None,
              help="Where to write the JSON-lines report [default: beside the state file].")
@click.option("--check-media", is_flag=True,
              help="Also decode every image before sending it (the first bytes of every "
                   "image, video and audio are always checked).")
@_give_up_option("Stop sending when every call to the API has failed for this long (a "
                 "rerun resumes).")
@_pair_options("A connector option (repeatable; JSON values; dotted keys nest).",
               "An fsspec storage option for the source (repeatable), e.g. "
               "-s anon=true or -s endpoint_url=http://…")
@click.option("--transform", metavar="MODULE:FUNCTION", default=None,
              help="A function from a list of records to a list of records, applied to "
                   "each batch before upload (imported from the current directory).")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local",
              show_default=True,
              help="Where the sync runs: this process, or Ray tasks (one per shard of the "
                   "source; --workers of them at once). Needs the [ray] extra.")
@click.option("--ray-address", metavar="ADDR", default=None,
              help="With --engine ray: the cluster [default: the running one, else a local "
                   "Ray with --workers CPUs].")
@_allow_path_option
@_progress_option
@click.pass_context
def sync_command(ctx: click.Context, source: str, engine: str, ray_address: str | None,
                 **settings) -> None:
    """Sync SOURCE into a Clarifai app: new items are created, items already synced are
    skipped, and a report accounts for every item.

    SOURCE is a path or any fsspec URL (s3://bucket/data.csv, a folder of class
    folders, a Parquet table …), or a YAML file holding these same settings
    (`source:`, `app:`, `dataset:`, `storage_options:`, `options:` …; options given on
    the command line win).

    \b
    Examples:
      clarifai-connect sync ./photos --app me/pets --dataset train
      clarifai-connect sync s3://bucket/labels.csv --app me/pets -s anon=true
      clarifai-connect sync examples/sample/images --app me/demo --base-url local
      clarifai-connect sync ./photos --app me/pets --update --delete --dry-run

    Runs are resumable: the state file remembers what the API acknowledged, so running
    the same command again after an interruption finishes the job with no duplicate.
    Exits with 1 when any item failed (see the report for each one, with its reason);
    the README lists every exit code.
    """
    from .engine.config import load_sync_settings
    from .engine.run import SyncInterrupted, sync

    try:
        args = load_sync_settings(ctx, source, settings)
        if engine == "ray":
            from .engine.shards import distributed_settings

            ray_args = distributed_settings(args, "--engine ray")  # before Ray is imported
            from .integrations.ray import sync_on_ray

            report = sync_on_ray(**ray_args, ray_address=ray_address)
            if args.get("report") not in (None, "auto"):  # the merged summary, as a line
                report.open(args["report"]).close()
        else:
            report = sync(**args)
    except SyncInterrupted as stop:
        _end_stopped(stop.report)
        if stop.abandoned:  # a second Ctrl-C: do not wait for the threads still in a call
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(EXIT_INTERRUPTED)  # the state and the report are closed already
        sys.exit(EXIT_INTERRUPTED)
    except KeyboardInterrupt:
        click.echo("interrupted: run the same command again to finish the sync", err=True)
        sys.exit(EXIT_INTERRUPTED)
    if report.stopped:
        _end_stopped(report)
    else:
        click.echo(report.summary())
    sys.exit(report.exit_code)


def _end_stopped(report) -> None:
    """A sync or an export that ended early: its summary on stdout, then one line on
    stderr saying why, the counts, the report and what to do."""
    *lines, last = report.summary().splitlines()
    click.echo("\n".join(lines))
    click.echo(last if report.stopped == "interrupted" else f"Error: {last}", err=True)


@cli.command("export")
@click.option("--app", "app", required=True, metavar="USER/APP",
              help="The app to export from (USER/APP or its URL).")
@click.option("--dataset", metavar="ID", help="Export only this dataset (its current inputs).")
@click.option("--version", "version", metavar="ID",
              help="Export this version of --dataset (its frozen inputs, through the "
                   "version's export archive).")
@click.option("--to", "to", required=True, metavar="URI",
              help="The destination folder (or .csv/.parquet file): a path or any fsspec "
                   "URL, e.g. s3://bucket/export.")
@click.option("--format", "format_", required=True, metavar="NAME",
              help="Exporter name: coco, voc, csv, parquet, folder (see "
                   "`clarifai-connect plugins`).")
@_api_options
@click.option("--workers", type=click.IntRange(1, 64), default=8, show_default=True,
              help="Concurrent media downloads (and concurrent file writes).")
@click.option("--report", "report", type=click.Path(dir_okay=False), default=None,
              help="Where to write the JSON-lines report, one line per input [default: a "
                   "fresh file in ~/.local/state/clarifai-connect, or "
                   "$CLARIFAI_CONNECT_STATE_DIR].")
@_pair_options("An exporter option (repeatable; JSON values), e.g. -o default_split=train.",
               "An fsspec storage option for the destination (repeatable), e.g. "
               "-s endpoint_url=http://…")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local",
              show_default=True,
              help="Where the export runs: this process, or Ray tasks (each exports a part "
                   "of the listing into <to>.parts/, merged into --to at the end; --workers "
                   "of them at once). --to must be where every worker can write. Needs the "
                   "[ray] extra.")
@click.option("--ray-address", metavar="ADDR", default=None,
              help="With --engine ray: the cluster [default: the running one, else a local "
                   "Ray with --workers CPUs].")
@_give_up_option("Stop reading when every call to the API has failed for this long (what "
                 "was read is written; the report says what was not).")
@_progress_option
@query_options
def export_command(app: str, dataset: str | None, version: str | None, to: str, format_: str,
                   base_url: str | None, pat: str | None, workers: int, report: str | None,
                   options: tuple[str, ...], storage: tuple[str, ...],
                   progress: bool | None, engine: str, ray_address: str | None,
                   give_up_after: float, **search: object) -> None:
    """Export an app, a dataset, a dataset version or the hits of a search to COCO, VOC,
    CSV, Parquet or folders.

    \b
    Examples:
      clarifai-connect export --app me/pets --dataset train --to ./pets-coco --format coco
      clarifai-connect export --app me/pets --dataset train --version v1 \\
          --to s3://bucket/pets-voc --format voc
      clarifai-connect export --app me/pets --to pets.csv --format csv --base-url local
      clarifai-connect export --app me/pets --concept dog --like ./rex.jpg --top-k 50 \\
          --to rex-like.csv --format csv
      clarifai-connect export --app me/pets --query query.yaml --to out --format coco

    With a search option (or --query) only its hits are exported, best first; each
    record's metadata gains "search": {"score": …, "rank": …}, and --dataset is one more
    filter of the search.

    Media are downloaded in parallel; file names that could leave the destination are
    made safe; files already there under the same names are replaced. What the format
    cannot hold is named in warnings. Exits with 1 when any input failed (see --report
    for each one, with its reason).
    """
    from .exports.runner import ExportInterrupted, export
    from .plugins import parse_option_pairs

    try:
        if engine == "ray":
            result = _export_on_ray(app, to, format_, dataset=dataset, version=version,
                                    base_url=base_url, pat=pat, workers=workers,
                                    storage_options=parse_option_pairs(storage,
                                                                       "storage option"),
                                    options=parse_option_pairs(options), progress=progress,
                                    query=query_from_options(search), report=report,
                                    ray_address=ray_address)
        else:
            result = export(app, to, format_, dataset=dataset, version=version,
                            base_url=base_url, pat=pat,
                            storage_options=parse_option_pairs(storage, "storage option"),
                            options=parse_option_pairs(options), workers=workers,
                            report=report or "auto", progress=progress,
                            query=query_from_options(search), give_up_after=give_up_after)
    except ExportInterrupted as stop:
        _end_stopped(stop.report)
        sys.exit(EXIT_INTERRUPTED)
    except KeyboardInterrupt:
        click.echo("interrupted: the export is incomplete", err=True)
        sys.exit(EXIT_INTERRUPTED)
    if result.stopped:
        _end_stopped(result)
    else:
        click.echo(result.summary())
    sys.exit(result.exit_code)

def _export_on_ray(app: str, to: str, format_: str, *, report: str | None,
                   **settings: object):
    """``export --engine ray``: checked before Ray is imported, the merged summary written
    to --report (the parts' per-input lines stay with their tasks)."""
    from .engine.shards import check_shared_server

    check_shared_server(settings.get("base_url"), "--engine ray")  # before Ray is imported
    from .engine.run import default_report_path
    from .integrations.ray import export_on_ray

    result = export_on_ray(app, to, format_, **settings)
    result.open(report or default_report_path(None, "export")).close()
    return result


@cli.command("search")
@click.option("--app", "app", required=True, metavar="USER/APP",
              help="The app to search (USER/APP or its URL).")
@click.option("--dataset", "datasets", multiple=True, metavar="ID",
              help="Inputs of this dataset (repeat for either).")
@query_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per hit.")
@_api_options
def search_command(app: str, datasets: tuple[str, ...], as_json: bool, base_url: str | None,
                   pat: str | None, **search: object) -> None:
    """Search an app: by concept, metadata, type, dataset, place, or likeness.

    \b
    Examples:
      clarifai-connect search --app me/pets --concept dog --not-concept cat
      clarifai-connect search --app me/pets --metadata breed="Saint Bernard" --type image
      clarifai-connect search --app me/pets --near 46.5,7.9 --within-km 100
      clarifai-connect search --app me/pets --like ./rex.jpg --top-k 5 --json
      clarifai-connect search --app me/pets --query query.yaml

    Repeated options are all required (AND); a,b in one --concept means either. Prints
    rank, id, score, type and labels of each hit, best first (10 unless --top-k).
    """
    from .cli_search import hit_rows
    from .client import Search
    from .engine.run import parse_app
    from .queries import SearchQuery

    user_id, app_id = parse_app(app)
    query = query_from_options(search, datasets) or SearchQuery()
    client = Search(user_id=user_id, app_id=app_id, base_url=base_url, pat=pat,
                    top_k=query.top_k or 10, metric=query.metric)
    print_hits(hit_rows(client.hits(query.ranks or None, query.filters or None)), as_json)


@cli.group("version")
def version_group() -> None:
    """Dataset versions: a frozen copy of a dataset's current inputs (what
    `export --version` reads)."""


def _dataset(app: str, dataset: str, base_url: str | None, pat: str | None):
    from .client import App
    from .engine.run import parse_app

    user_id, app_id = parse_app(app)
    return App(user_id=user_id, app_id=app_id, base_url=base_url, pat=pat).dataset(dataset)


def _version_options(command):
    command = click.option("--dataset", required=True, metavar="ID",
                           help="The dataset.")(command)
    return click.option("--app", "app", required=True, metavar="USER/APP",
                        help="The app (USER/APP or its URL).")(command)


@version_group.command("create")
@_version_options
@click.option("--id", "version_id", metavar="ID", default=None,
              help="The version id [default: one the API picks].")
@click.option("--description", default="", help="A description of the version.")
@_api_options
def version_create(app: str, dataset: str, version_id: str | None, description: str,
                   base_url: str | None, pat: str | None) -> None:
    """Create a version of a dataset and print its id.

    \b
    Example:
      clarifai-connect version create --app me/pets --dataset train --id v1
      clarifai-connect export --app me/pets --dataset train --version v1 --to out --format coco
    """
    fields = {"description": description, **({"id": version_id} if version_id else {})}
    created = _dataset(app, dataset, base_url, pat).create_version(**fields)
    click.echo(created.version.id)


@version_group.command("list")
@_version_options
@_api_options
def version_list(app: str, dataset: str, base_url: str | None, pat: str | None) -> None:
    """List the versions of a dataset: id, creation time (UTC), description."""
    for item in _dataset(app, dataset, base_url, pat).list_versions():
        version = item.version
        created = version.created_at.ToDatetime().strftime("%Y-%m-%d %H:%M:%S") \
            if version.HasField("created_at") else "-"
        click.echo(f"{version.id}  {created}  {version.description}".rstrip())


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="clarifai-connect")


if __name__ == "__main__":
    main()
