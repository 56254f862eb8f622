"""A third-party connector package, really pip-installed (into a throwaway folder), synced through
`clarifai-connect sync` in a fresh process (format detected by the plugin's own hook)."""

from __future__ import annotations

import subprocess
import sys

from clarifai_connect.plugins import reset_registry

from .sync_support import app_content
from .test_plugins import third_party_plugin  # noqa: F401 (the fixture installs the package)


def test_a_pip_installed_plugin_syncs_end_to_end(third_party_plugin, clarifai_server,  # noqa: F811
                                                 clarifai_raw, clarifai_app, tmp_path):
    source = tmp_path / "notes.lines"
    source.write_text("first note\n\nsecond note\nthird note\n")
    env = third_party_plugin.env(CLARIFAI_PAT=clarifai_server.keys[0])
    done = subprocess.run(
        [sys.executable, "-m", "clarifai_connect.cli", "sync", str(source),
         "--app", f"{clarifai_app.user_id}/{clarifai_app.app_id}", "--base-url",
         clarifai_server.base_url, "--state", str(tmp_path / "s.sqlite"), "-o", "label=note"],
        env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr  # the empty line is reported
    assert "3 created" in done.stdout and "1 failed" in done.stdout
    assert f"{source}:2: empty line" in done.stdout
    reset_registry()
    # The plugin's ids are line-<number>; the empty line 2 is the failure.
    assert app_content(clarifai_raw, clarifai_app) == {
        f"line-{n}": {"concepts": ["note"], "regions": [], "datasets": []} for n in (1, 3, 4)}
