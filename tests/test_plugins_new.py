"""`clarifai-connect plugins new`: the generated package installs in a fresh venv and passes
its own generated test there (conformance kit, entry point, a sync into a local server)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sysconfig
import venv
from pathlib import Path

from click.testing import CliRunner

from clarifai_connect.cli import cli


def test_plugins_new_writes_a_package(tmp_path):
    result = CliRunner().invoke(cli, ["plugins", "new", "demo-fmt", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    root = tmp_path / "clarifai-connect-demo-fmt"
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) == [
        "README.md", "clarifai_connect_demo_fmt/__init__.py",
        "clarifai_connect_demo_fmt/plugin.py", "pyproject.toml", "tests/test_plugin.py"]
    assert 'demo-fmt = "clarifai_connect_demo_fmt.plugin"' in (root / "pyproject.toml").read_text()
    assert "class DemoFmtReader(Reader)" in (root / "clarifai_connect_demo_fmt/plugin.py"
                                             ).read_text()
    again = CliRunner().invoke(cli, ["plugins", "new", "demo-fmt", "--dir", str(tmp_path)])
    assert again.exit_code == 1 and "already exists and is not empty" in again.output
    bad = CliRunner().invoke(cli, ["plugins", "new", "Bad Name", "--dir", str(tmp_path)])
    assert bad.exit_code == 1 and "must be lowercase" in bad.output
    # The group still lists plugins when no subcommand is given.
    listed = CliRunner().invoke(cli, ["plugins"])
    assert listed.exit_code == 0 and "connector" in listed.output


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PYTEST"))}
    env["PIP_NO_INDEX"] = "1"  # offline: everything the package needs is already installed
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=240)


def test_generated_plugin_installs_in_a_fresh_venv_and_passes_its_own_test(tmp_path):
    result = CliRunner().invoke(cli, ["plugins", "new", "tabbed", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    package = tmp_path / "clarifai-connect-tabbed"
    env_dir = tmp_path / "venv"
    try:
        # A fresh venv that sees this interpreter's installed packages (clarifai-connect,
        # pytest, pip, setuptools) through a .pth, so it is quick and works offline.
        venv.EnvBuilder(with_pip=False).create(env_dir)
        python = env_dir / "bin" / "python"
        site = Path(_run([str(python), "-c", "import sysconfig; "
                          "print(sysconfig.get_paths()['purelib'])"], tmp_path).stdout.strip())
        ours = sysconfig.get_paths()["purelib"]
        (site / "_reuse_installed.pth").write_text(f"import site; site.addsitedir({ours!r})\n")

        before = _run([str(python), "-m", "clarifai_connect.cli", "plugins"], tmp_path)
        assert before.returncode == 0, before.stderr
        assert "tabbed" not in before.stdout

        install = _run([str(python), "-m", "pip", "install", "--no-deps",
                        "--no-build-isolation", "-q", str(package)], tmp_path)
        assert install.returncode == 0, install.stdout + install.stderr
        assert list(site.glob("clarifai_connect_tabbed-0.1.0.dist-info"))
        listed = _run([str(python), "-m", "clarifai_connect.cli", "plugins"], tmp_path)
        assert "connector tabbed" in listed.stdout.replace("  ", " ") and \
            "clarifai-connect-tabbed 0.1.0" in listed.stdout

        tests = _run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider",
                      "-p", "no:randomly", "tests"], package)
        assert tests.returncode == 0, tests.stdout + tests.stderr
        assert "4 passed" in tests.stdout
    finally:
        shutil.rmtree(env_dir, ignore_errors=True)
    assert not env_dir.exists()
