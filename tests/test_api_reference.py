"""The reference's ``### Class.method()`` headings for the client classes in scope exist here,
with the reference's parameter names (checked by ``inspect.signature``).

The reference is hand-written and has typos (``archive_url=''local_archive_path=''``, a
heading ``patch_annotation`` over a ``patch_annotations(...)`` signature, doubled
parentheses), so it is parsed robustly: string, list and dict literals are dropped, each
comma-separated piece gives the identifier it starts with, and the name in the code block
wins over the heading's.
"""

import importlib
import inspect
import re

import pytest

from .shared_files import SHARED, missing_message, require

REFERENCE = SHARED / "spec" / "sdk-api-reference.md"
_WHAT = "the SDK API reference (shared/spec/sdk-api-reference.md)"
# class → the module that must hold it (mirroring the reference's clarifai.client.<module>)
CLASSES = {
    "User": "clarifai_connect.client.user", "App": "clarifai_connect.client.app",
    "Dataset": "clarifai_connect.client.dataset", "Inputs": "clarifai_connect.client.input",
    "Lister": "clarifai_connect.client.lister", "Chunker": "clarifai_connect.client.utils",
    "Module": "clarifai_connect.client.module", "Model": "clarifai_connect.client.model",
    "Search": "clarifai_connect.client.search",
    "Workflow": "clarifai_connect.client.workflow", "Runner": "clarifai_connect.client.runner",
}
# Parameter bullets that contradict their own signature in the reference.
BULLET_TYPOS = {("Inputs", "download_inputs"): {"input_ids"}, ("Model", "__init__"): {"url_init"},
                ("Module", "__init__"): {"url_init"}, ("Workflow", "__init__"): {"url_init"},
                ("Search", "__init__"): {"alogrithm"}, ("User", "delete_runner"): {"runner_ids"}}

_HEADING = re.compile(r"^### (\w+)\.(.+?)\(\)\s*$")
_BULLET = re.compile(r"^\s*\*\s+\*\*(.+?)\*\*")


def _sections(text: str):
    """(class, heading name, section text) for every ``### Class.name()`` heading."""
    lines = text.splitlines()
    marks = [(i, m) for i, line in enumerate(lines) if (m := _HEADING.match(line))]
    for n, (i, match) in enumerate(marks):
        end = marks[n + 1][0] if n + 1 < len(marks) else len(lines)
        end = next((j for j in range(i + 1, end) if lines[j].startswith("## ")), end)
        name = match.group(2).replace("\\", "")
        yield match.group(1), name, "\n".join(lines[i + 1:end])


def _signature(section: str, fallback: str) -> tuple[str, list[str]]:
    """(method name, parameter names) from the first python block of a section."""
    block = re.search(r"```python\s*\n(.*?)```", section, re.S)
    if not block:
        return fallback, []
    code = block.group(1).strip()
    match = re.match(r"(\w+)\s*\((.*)\)?", code, re.S)
    if not match:  # an example instead of a signature (Model.export)
        return fallback, []
    name, params = match.group(1), match.group(2)
    params = re.sub(r"'[^']*'|\"[^\"]*\"", ",", params)  # literals end a parameter
    params = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", params)
    names = []
    for piece in params.split(","):
        found = re.match(r"\s*(\*{0,2}[A-Za-z_]\w*)", piece)
        if found:
            names.append(found.group(1))
    return name, names


def _bullets(section: str) -> list[str]:
    """Parameter names listed under the section's ``#### Parameters`` (not the keys nested
    under one, such as output_config's min_value)."""
    part = re.search(r"#### Parameters\s*\n(.*?)(?:\n####|\Z)", section, re.S)
    if not part:
        return []
    found = []
    for line in part.group(1).splitlines():
        bullet = _BULLET.match(line)
        if bullet:
            inner = bullet.group(1).replace("\\", "")
            name = re.match(r"(\*{0,2}[A-Za-z_]\w*)", inner)
            if name:
                found.append((len(line) - len(line.lstrip()), name.group(1)))
    top = min((indent for indent, _ in found), default=0)
    return [name for indent, name in found if indent == top]


def _cases():
    if not REFERENCE.exists():
        return []
    cases = []
    for cls, heading, section in _sections(REFERENCE.read_text(encoding="utf-8")):
        if cls not in CLASSES:
            continue
        name, params = _signature(section, heading)
        bullets = [b for b in _bullets(section) if b not in BULLET_TYPOS.get((cls, name), ())]
        cases.append(pytest.param(cls, name, params, bullets, id=f"{cls}.{name}"))
    return cases


CASES = _cases()


def _check(parameters, name: str, where: str) -> None:
    kinds = {p.kind for p in parameters.values()}
    if name.startswith("**"):
        assert inspect.Parameter.VAR_KEYWORD in kinds, f"{where} takes no **{name[2:]}"
    elif name.startswith("*"):
        assert inspect.Parameter.VAR_POSITIONAL in kinds, f"{where} takes no *{name[1:]}"
    else:
        assert name in parameters, f"{where} has no parameter '{name}'"


@pytest.mark.skipif(not CASES, reason=missing_message(REFERENCE, _WHAT))
@pytest.mark.parametrize("cls_name, method, params, bullets", CASES)
def test_reference_method_exists_with_its_parameters(cls_name, method, params, bullets):
    cls = getattr(importlib.import_module(CLASSES[cls_name]), cls_name)
    assert cls is getattr(importlib.import_module("clarifai_connect.client"), cls_name)
    assert hasattr(cls, method), f"{cls_name}.{method} is missing"
    parameters = inspect.signature(getattr(cls, method)).parameters
    for name in params + bullets:
        _check(parameters, name, f"{cls_name}.{method}")


def test_the_parser_found_the_reference_sections():
    require(REFERENCE, _WHAT)  # in CI a missing reference fails here
    found = {case.id for case in CASES}
    for expected in ("User.__init__", "User.list_apps", "App.list_concepts", "Dataset.export",
                     "Inputs.patch_annotations", "Inputs.get_multimodal_input",
                     "Lister.list_pages_generator", "Chunker.chunk", "App.create_module",
                     "App.list_installed_module_versions", "Module.list_versions",
                     "Search.__init__", "Search.query", "App.search"):
        assert expected in found
    export = next(c for c in CASES if c.id == "Dataset.export").values
    assert export[2] == ["save_path", "archive_url", "local_archive_path", "split",
                         "num_workers"]
    assert {"User.create_runner", "User.runner", "User.list_runners", "User.delete_runner",
            "Runner.__init__", "Runner.start", "Runner.run_input", "App.create_workflow",
            "App.workflow", "App.list_workflows", "App.delete_workflow", "Workflow.__init__",
            "Workflow.list_versions", "Workflow.predict", "Workflow.predict_by_bytes",
            "Workflow.predict_by_filepath", "Workflow.predict_by_url",
            "Workflow.export"} <= found
    models = {case_id for case_id in found if case_id.startswith("Model.")}
    assert len(models) == 18  # __init__ and every method of the reference's Model
    assert {"App.create_model", "App.model", "App.list_models", "App.delete_model",
            "App.list_trainable_model_types"} <= found
    assert len(found) >= 45 + 18 + 5 + 18


def test_every_class_of_the_reference_is_covered():
    require(REFERENCE, _WHAT)
    headed = {cls for cls, _, _ in _sections(REFERENCE.read_text(encoding="utf-8"))}
    assert headed == set(CLASSES), headed ^ set(CLASSES)
    # ... and nothing of any class is skipped: every heading became a case.
    assert len(CASES) == sum(1 for _ in _sections(REFERENCE.read_text(encoding="utf-8")))
