"""Finding the code blocks of the README and how each one is run (see the README's
"README snippets are tests" section, which is the contract for anyone adding a snippet)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
RUN_LANGUAGES = ("bash", "python")
# How a block runs, from the ``<!-- snippet: MODE -->`` comment on the line before it.
MODES = ("run", "s3", "background", "skip")
# Other comments name a block (``<!-- etl-task -->``), for a test of its own to find it; it
# still runs here. Two names are the quick start's, run their own way.
NAMED_MODES = {"main-command": "main-command", "test-command": "test-command"}
S3_STAND_IN = "http://127.0.0.1:9000"

_FENCE = re.compile(r"^```(\S*)\s*$")
_MARKER = re.compile(r"^<!--\s*(snippet:\s*)?([\w-]+)\s*(.*?)\s*-->$")


@dataclass(frozen=True)
class Snippet:
    """One fenced block: its language, code, first line number, and how it runs."""

    language: str
    code: str
    line: int
    mode: str = "run"
    reason: str = ""
    name: str = ""

    @property
    def runs(self) -> bool:
        """Whether the README test executes it."""
        return self.language in RUN_LANGUAGES and self.mode not in ("skip", "test-command")

    def __str__(self) -> str:
        return f"README.md:{self.line} ({self.language}, {self.mode})"


def snippets(text: str) -> list[Snippet]:
    """Every fenced block of ``text`` in order; a marker names an unknown mode → ValueError."""
    lines = text.splitlines()
    found: list[Snippet] = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        start = index
        index += 1
        body: list[str] = []
        while index < len(lines) and lines[index].strip() != "```":
            body.append(lines[index])
            index += 1
        index += 1
        mode, reason, name = "run", "", ""
        before = next((lines[i].strip() for i in range(start - 1, -1, -1)
                       if lines[i].strip()), "")
        marker = _MARKER.match(before)
        if marker and not marker.group(1):
            name = marker.group(2)
            mode = NAMED_MODES.get(name, "run")
        elif marker:
            mode, reason = marker.group(2), marker.group(3)
            if mode not in MODES:
                raise ValueError(f"README.md:{start + 1}: unknown snippet mode '{mode}' "
                                 f"(known: {', '.join(MODES)})")
            if mode == "skip" and not reason:
                raise ValueError(f"README.md:{start + 1}: a skipped snippet must say why")
        found.append(Snippet(opening.group(1), "\n".join(body) + "\n", start + 2, mode, reason,
                             name))
    return found
