"""Every command, given the mistakes people make, answers with one line saying what to do
and the exit code of the README's table — never a traceback (unless ``-vv``)."""

from __future__ import annotations

import json
import socket
import time

import click
import pytest
from click.testing import CliRunner

from clarifai_connect.cli import cli
from clarifai_connect.errors import (
    EXIT_AUTH,
    EXIT_FAILED,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    ConfigError,
)
from clarifai_connect.server import FaultInjector, LocalServer

from .sync_support import class_folders


def _invoke(*args: str, env: dict | None = None):
    result = CliRunner().invoke(cli, list(args), prog_name="clarifai-connect", env={"CLARIFAI_PAT": None,
                                                      "CLARIFAI_API_BASE": None, **(env or {})})
    # A traceback would reach the user: CliRunner keeps the exception instead.
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        f"{args} raised {result.exception!r}"
    assert "Traceback" not in result.output
    return result


def _one_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def _dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again: nothing listens there


@pytest.fixture
def api(clarifai_server):
    return ["--base-url", clarifai_server.base_url, "--pat", clarifai_server.keys[0]]


SAMPLE = "examples/sample/labels.csv"


def _commands(group: click.Group = cli, path: tuple[str, ...] = ()):
    """Every command and subcommand of ``group`` (itself included), as (path, command):
    a command added later is covered without touching the tests."""
    yield path, group
    for name in sorted(group.commands):
        command = group.commands[name]
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))
        else:
            yield (*path, name), command


COMMANDS = list(_commands())


def _cases(keep=lambda command: True):
    return [pytest.param(path, command, id=" ".join(path) or "cli")
            for path, command in COMMANDS if keep(command)]


def _needs_something(command: click.Command) -> bool:
    return not isinstance(command, click.Group) and any(p.required for p in command.params)


def _needs_a_subcommand(command: click.Command) -> bool:
    return isinstance(command, click.Group) and not command.invoke_without_command


def test_the_walk_finds_the_subcommands():
    names = {" ".join(path) for path, _ in COMMANDS}
    assert {"", "sync", "export", "version create", "plugins new"} <= names


@pytest.mark.parametrize("path, command", _cases())
def test_every_command_refuses_a_bad_option_in_one_line(path, command):
    result = _invoke(*path, "--no-such-option")
    assert result.exit_code == EXIT_USAGE, result.output
    line = _one_line(result)
    assert line.startswith("Error: No such option '--no-such-option'"), line
    assert line.endswith(f"; see '{' '.join(('clarifai-connect', *path))} --help'"), line
    assert not result.stdout


@pytest.mark.parametrize("path, command", _cases(_needs_something))
def test_every_command_with_required_arguments_says_which_is_missing(path, command):
    result = _invoke(*path)
    assert result.exit_code == EXIT_USAGE, result.output
    assert _one_line(result).startswith("Error: Missing ")
    assert not result.stdout


@pytest.mark.parametrize("path, command", _cases(_needs_a_subcommand))
def test_a_group_called_bare_shows_its_help(path, command):
    result = _invoke(*path)
    assert result.exit_code == EXIT_USAGE, result.output
    assert "Usage: clarifai-connect" in result.output and "Commands:" in result.output


@pytest.mark.parametrize("path, command", _cases())
def test_every_command_has_help(path, command):
    for flag in ("--help", "-h"):
        result = _invoke(*path, flag)
        assert result.exit_code == 0, result.output
        assert result.stdout.startswith(f"Usage: {' '.join(('clarifai-connect', *path))} ")
        assert not result.stderr


@pytest.mark.parametrize("args, code, words", [
    (["sync"], EXIT_USAGE, "Missing argument"),
    (["sync", SAMPLE], EXIT_USAGE, "no target app"),
    (["sync", SAMPLE, "--app", "me/pets/extra"], EXIT_USAGE, "USER/APP"),
    (["sync", SAMPLE, "--app", "me"], EXIT_USAGE, "USER/APP"),
    (["sync", SAMPLE, "--app", "me/x", "--format", "nope"], EXIT_USAGE, "unknown format 'nope'"),
    (["sync", SAMPLE, "--app", "me/x", "--workers", "0"], EXIT_USAGE, "--workers"),
    (["sync", SAMPLE, "--app", "me/x", "-o", "oops"], EXIT_USAGE, "not KEY=VALUE"),
    (["sync", "./nope.csv", "--app", "me/x"], EXIT_USAGE, "does not exist"),
    (["sync", SAMPLE, "--app", "me/x", "--base-url", "ftp://x"], EXIT_USAGE, "scheme"),
    (["validate", "./nope"], EXIT_USAGE, "does not exist"),
    (["validate", SAMPLE, "--format", "nope"], EXIT_USAGE, "unknown format"),
    (["export", "--app", "me/x", "--to", "out", "--format", "nope", "--base-url", "local"],
     EXIT_USAGE, "unknown export format"),
    (["export", "--app", "me/x/y", "--to", "out", "--format", "coco"], EXIT_USAGE, "USER/APP"),
    (["export", "--app", "me/x"], EXIT_USAGE, "Missing option"),
    (["plugins", "--nope"], EXIT_USAGE, "No such option"),
    (["serve", "--port", "notaport"], EXIT_USAGE, "not a valid integer"),
    (["version", "create", "--app", "me/x"], EXIT_USAGE, "Missing option"),
    (["nope"], EXIT_USAGE, "No such command"),
])
def test_bad_arguments_give_one_line_and_a_usage_code(args, code, words):
    result = _invoke(*args)
    assert result.exit_code == code, result.output
    assert words in _one_line(result)


def test_no_credentials_speaks_the_cli(tmp_path):
    result = _invoke("sync", SAMPLE, "--app", "me/x", "--base-url", "https://api.example",
                     "--state", str(tmp_path / "s"))
    assert result.exit_code == EXIT_USAGE
    line = _one_line(result)
    assert "CLARIFAI_PAT" in line and "--pat" in line and "--base-url local" in line
    assert "***" not in line and "base_url=" not in line


def test_a_wrong_key_is_refused_in_one_line(clarifai_server, tmp_path):
    for args in (["sync", SAMPLE, "--app", "me/x", "--state", str(tmp_path / "s")],
                 ["export", "--app", "me/x", "--to", str(tmp_path / "o"), "--format", "csv"],
                 ["version", "list", "--app", "me/x", "--dataset", "d"]):
        result = _invoke(*args, "--base-url", clarifai_server.base_url, "--pat",
                         "wrong-key-0123456789")
        assert result.exit_code == EXIT_AUTH, result.output
        assert _one_line(result).startswith("Error: the API refused the key: ")
        assert "wrong-key-0123456789" not in result.output


def test_an_unreachable_api_is_said_within_seconds(tmp_path):
    base = f"http://127.0.0.1:{_dead_port()}"
    started = time.monotonic()
    result = _invoke("sync", SAMPLE, "--app", "me/x", "--base-url", base, "--pat", "k",
                     "--state", str(tmp_path / "s"))
    assert time.monotonic() - started < 30  # not the 60 s retry deadline
    assert result.exit_code == EXIT_UNREACHABLE
    line = _one_line(result)
    assert base in line and "not answering" in line and "run the same command again" in line


def test_a_missing_dataset_is_one_line(clarifai_app, api):
    result = _invoke("version", "create", "--app", clarifai_app.target, "--dataset", "nope",
                     *api)
    assert result.exit_code == EXIT_FAILED
    assert "nope" in _one_line(result)


def test_format_names_take_any_case(clarifai_app, api, tmp_path):
    result = _invoke("sync", SAMPLE, "--app", clarifai_app.target, "--format", "CSV",
                     "--state", str(tmp_path / "s"), *api)
    assert result.exit_code == 0, result.output
    assert "8 created" in result.stdout
    out = tmp_path / "out"
    result = _invoke("export", "--app", clarifai_app.target, "--to", str(out), "--format",
                     "Coco", *api)
    assert result.exit_code == 0, result.output
    assert list(out.rglob("*.json"))


def test_serve_on_a_taken_port_suggests_port_zero(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = _invoke("serve", "--port", str(port), "--data-dir", str(tmp_path))
    assert result.exit_code == EXIT_USAGE
    line = _one_line(result)
    assert f"127.0.0.1:{port}" in line and "taken" in line and "--port 0" in line


def test_versions_are_created_and_listed(clarifai_dataset, api):
    target = clarifai_dataset.app.target
    made = _invoke("version", "create", "--app", target, "--dataset", "ds", "--id", "v1",
                   "--description", "first", *api)
    assert made.exit_code == 0 and made.stdout.strip() == "v1"
    listed = _invoke("version", "list", "--app", target, "--dataset", "ds", *api)
    assert listed.exit_code == 0
    assert listed.stdout.split()[0] == "v1" and listed.stdout.rstrip().endswith("first")


def test_vv_shows_the_traceback():
    result = CliRunner().invoke(cli, ["-vv", "validate", "./nope"])
    assert isinstance(result.exception, ConfigError.__mro__[1])  # the error itself, raised


def test_an_export_that_loses_the_api_ends_with_one_line(tmp_path):
    faults = FaultInjector()
    with LocalServer(data_dir=tmp_path / "server", faults=faults, user="u") as server:
        api = ["--base-url", server.base_url, "--pat", server.keys[0], "--no-progress"]
        folder = class_folders(tmp_path / "pets", {"cat": 150, "dog": 150})
        synced = _invoke("sync", str(folder), "--app", "u/a", "--state", str(tmp_path / "s"),
                         *api)
        assert synced.exit_code == 0, synced.output
        faults.configure(rate=1.0, methods={"ListInputs"}, after=1)  # one page, then no more
        report, out = tmp_path / "export.jsonl", tmp_path / "out"
        result = _invoke("export", "--app", "u/a", "--to", str(out), "--format", "coco",
                         "--report", str(report), "--give-up-after", "1", *api)
    assert result.exit_code == EXIT_UNREACHABLE, result.output
    line = _one_line(result)
    assert line.startswith(f"Error: reading u/a stopped, the API at {server.base_url} "), line
    summary = json.loads(report.read_text().splitlines()[-1])["summary"]
    assert 0 < summary["exported"] < 300 and summary["read"] == summary["exported"], summary
    assert (f" after {summary['read']} inputs ({summary['exported']} exported, 0 skipped, "
            "0 failed; the output is incomplete); ") in line
    assert line.endswith(f"; report: {report}; run the same command again to export it all")
    # What was read before the API stopped answering is written, in a COCO file that holds it.
    coco = json.loads(next(out.rglob("*.json")).read_text())
    assert len(coco["images"]) == summary["exported"]
    assert "error:" not in result.stdout  # said once, in the line on stderr


def test_an_interrupted_export_says_what_it_wrote(clarifai_server, clarifai_app, tmp_path):
    from clarifai_connect import export, sync
    from clarifai_connect.exports.runner import ExportInterrupted

    api = {"base_url": clarifai_server.base_url, "pat": clarifai_server.keys[0]}
    folder = class_folders(tmp_path / "pets", {"cat": 100, "dog": 100})
    assert sync(str(folder), clarifai_app.target, state=tmp_path / "s", **api).ok
    done = []

    def ctrl_c_after_a_few(count: int) -> None:
        done.append(count)
        if sum(done) >= 40 > sum(done) - count:  # once (the runner advances in steps)
            raise KeyboardInterrupt

    report = tmp_path / "export.jsonl"
    with pytest.raises(ExportInterrupted) as stop:
        export(clarifai_app.target, str(tmp_path / "out"), "coco", report=report,
               on_progress=ctrl_c_after_a_few, **api)
    done_report = stop.value.report
    assert done_report.stopped == "interrupted" and done_report.exported >= 40
    summary = json.loads(report.read_text().splitlines()[-1])["summary"]
    assert summary["read"] == done_report.read and summary["exported"] == done_report.exported
    line = done_report.summary().splitlines()[-1]
    assert line.startswith(f"interrupted after {done_report.read} inputs "
                           f"({done_report.exported} exported, 0 skipped, "
                           f"{done_report.failed} failed; the output is incomplete)")
    assert line.endswith(f"; report: {report}; run the same command again to export it all")


def test_a_sync_that_loses_the_api_ends_with_one_line(tmp_path):
    faults = FaultInjector()
    with LocalServer(data_dir=tmp_path / "server", faults=faults, user="u") as server:
        api = ["--base-url", server.base_url, "--pat", server.keys[0], "--no-progress"]
        folder = class_folders(tmp_path / "pets", {"cat": 50, "dog": 50})
        faults.configure(rate=1.0, methods={"PostInputs"}, after=3)  # 3 batches, then none
        report = tmp_path / "sync.jsonl"
        args = ["sync", str(folder), "--app", "u/a", "--state", str(tmp_path / "s"),
                "--batch-size", "10", "--workers", "1"]
        result = _invoke(*args, "--report", str(report), "--give-up-after", "1", *api)
        assert result.exit_code == EXIT_UNREACHABLE, result.output
        line = _one_line(result)
        assert line.startswith(f"Error: sending stopped, the API at {server.base_url} "), line
        summary = json.loads(report.read_text().splitlines()[-1])["summary"]
        assert summary["created"] == 30 and summary["not_attempted"] > 0, summary
        assert (f" after {summary['read']} items (30 created, 0 updated, 0 skipped, 0 failed, "
                f"{summary['not_attempted']} not attempted; all checkpointed)") in line
        assert line.endswith(f"; report: {report}; run the same command again to finish")
        assert "error:" not in result.stdout  # said once, in the line on stderr

        faults.configure(rate=0.0)
        rerun = _invoke(*args, *api)
        assert rerun.exit_code == 0, rerun.output
        assert "70 created" in rerun.stdout and "30 skipped" in rerun.stdout
