"""Every bash and python block of the README runs, in order, and does what it says: the
bash blocks through the installed ``clarifai-connect`` against a real local server."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from clarifai_connect.server import LocalServer

from .readme_snippets import README, ROOT, S3_STAND_IN, Snippet, snippets

TIMEOUT = 240


@pytest.fixture
def workspace(tmp_path: Path):
    """A copy of ``examples/`` to run in, a local server, and the environment of a user
    who set CLARIFAI_API_BASE and CLARIFAI_PAT."""
    work = tmp_path / "examples"
    shutil.copytree(ROOT / "examples", work)
    bin_dir = str(Path(sys.executable).parent)
    with LocalServer(data_dir=tmp_path / "server") as server:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("AWS_", "CLARIFAI_"))}
        env.update(PATH=bin_dir + os.pathsep + env.get("PATH", ""),
                   CLARIFAI_API_BASE=server.base_url, CLARIFAI_PAT=server.keys[0],
                   XDG_DATA_HOME=str(tmp_path / "data"),  # where --base-url local keeps its data
                   CLARIFAI_CONNECT_STATE_DIR=str(tmp_path / "state"),
                   PYTHONUNBUFFERED="1")
        yield work, env, server


def _moto():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return server, f"http://{host}:{port}"


def _command(snippet: Snippet, work: Path) -> tuple[list[str], str, Path]:
    """The argv, the code as run, and the working directory of a snippet."""
    code, cwd = snippet.code, work
    if snippet.mode == "main-command":
        # The install ran already (this is the installed package); run what follows it,
        # from a repository-like folder holding examples/.
        code = code.split("&&")[-1].replace(".venv/bin/", "")
        cwd = work.parent / "repo"
        if not cwd.exists():
            cwd.mkdir()
            shutil.copytree(ROOT / "examples", cwd / "examples")
    if snippet.language == "python":
        return [sys.executable, "-c", code], code, cwd
    return ["bash", "-euo", "pipefail", "-c", code], code, cwd


def _background(argv: list[str], cwd: Path, env: dict) -> tuple[int, str, str]:
    """Start a long-running snippet, wait for its first line of output, stop it."""
    process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    first: list[str] = []
    reader = threading.Thread(target=lambda: first.append(process.stdout.readline()))
    reader.start()
    reader.join(60)
    os.killpg(process.pid, signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    return (0 if first and first[0].strip() else 1), "".join(first) + out, err


def run_snippet(snippet: Snippet, work: Path, env: dict) -> tuple[int, str, str]:
    """Run one snippet; returns (exit code, stdout, stderr)."""
    argv, code, cwd = _command(snippet, work)
    moto = None
    try:
        if snippet.mode == "s3":
            moto, endpoint = _moto()
            argv[-1] = code.replace(S3_STAND_IN, endpoint)
        if snippet.mode == "background":
            return _background(argv, cwd, env)
        done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=TIMEOUT)
        return done.returncode, done.stdout, done.stderr
    finally:
        if moto is not None:
            moto.stop()


def test_the_snippet_finder_reads_modes_and_refuses_unknown_ones():
    text = ("x\n<!-- snippet: s3 -->\n```bash\necho a\n```\n\n<!-- my-task -->\n```python\n"
            "print(1)\n```\n<!-- snippet: skip starts a daemon -->\n```bash\nsleep 1d\n```\n"
            "```toml\na=1\n```\n<!-- test-command -->\n```bash\npytest\n```\n")
    found = snippets(text)
    assert [(s.language, s.mode, s.runs) for s in found] == [
        ("bash", "s3", True), ("python", "run", True), ("bash", "skip", False),
        ("toml", "run", False), ("bash", "test-command", False)]
    assert found[1].name == "my-task"
    assert found[0].code == "echo a\n" and found[0].line == 4
    assert found[2].reason == "starts a daemon"
    with pytest.raises(ValueError, match="unknown snippet mode 'later'"):
        snippets("<!-- snippet: later -->\n```bash\ntrue\n```\n")
    with pytest.raises(ValueError, match="must say why"):
        snippets("<!-- snippet: skip -->\n```bash\ntrue\n```\n")


def test_every_readme_snippet_runs(workspace):
    work, env, server = workspace
    found = [s for s in snippets(README.read_text(encoding="utf-8")) if s.runs]
    assert len(found) >= 8, "the README lost its snippets"
    failures = []
    for snippet in found:
        code, out, err = run_snippet(snippet, work, env)
        if code != 0 or "Traceback" in err:
            failures.append(f"{snippet} exited {code}:\n{snippet.code}\n--- stdout\n{out[-3000:]}"
                            f"\n--- stderr\n{err[-3000:]}")
    assert not failures, "\n\n".join(failures)
    # What the snippets claim really happened: six labelled pets landed and came back out.
    import json

    coco = [json.loads(p.read_text()) for p in (work / "pets-coco").rglob("*.json")]
    assert sum(len(c["images"]) for c in coco) == 6
    assert {c["name"] for f in coco for c in f["categories"]} == {"cat", "dog"}
    assert len(list((work / "pets-voc").rglob("*.png"))) == 6
