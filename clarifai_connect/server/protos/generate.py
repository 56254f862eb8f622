"""Regenerate ``modules_pb2.py`` / ``.pyi`` from ``modules.proto``, and the reference copy of
clarifai-grpc 12.1.1's Module messages that the tests compare it with.

The command that made the committed files (run from the repository root)::

    python3 -m venv /tmp/protoc-venv && /tmp/protoc-venv/bin/pip install grpcio-tools==1.69.0
    pip download --no-deps clarifai-grpc==12.1.1 -d /tmp/cg1211
    .venv/bin/python clarifai_connect/server/protos/generate.py \\
        --protoc-python /tmp/protoc-venv/bin/python \\
        --reference-wheel /tmp/cg1211/clarifai_grpc-12.1.1-py3-none-any.whl

grpcio-tools 1.69 bundles protoc 29, whose Python code runs on protobuf 5.29 and newer
(the project's floor). The imports it resolves (resources.proto, status.proto and what they
import) come from the installed clarifai-grpc as a descriptor set, and the generated imports
are pointed at ``clarifai_grpc.grpc.api`` as clarifai-grpc's own files are.
"""

from __future__ import annotations

import argparse
import ast
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from clarifai_grpc.grpc.api import resources_pb2
from clarifai_grpc.grpc.api.status import status_pb2
from google.protobuf import descriptor_pb2

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
PROTO = HERE.relative_to(ROOT) / "modules.proto"
REFERENCE = ROOT / "tests" / "data" / "modules_12_1_1.binpb"
_IMPORTS = {
    "from proto.clarifai.api import resources_pb2":
        "from clarifai_grpc.grpc.api import resources_pb2",
    "from proto.clarifai.api.status import status_pb2":
        "from clarifai_grpc.grpc.api.status import status_pb2",
}


def dependency_set() -> descriptor_pb2.FileDescriptorSet:
    """The installed clarifai-grpc files modules.proto imports, with their own imports."""
    files: dict[str, descriptor_pb2.FileDescriptorProto] = {}

    def add(desc) -> None:
        if desc.name in files:
            return
        for dep in desc.dependencies:
            add(dep)
        proto = descriptor_pb2.FileDescriptorProto()
        desc.CopyToProto(proto)
        files[desc.name] = proto

    add(resources_pb2.DESCRIPTOR)
    add(status_pb2.DESCRIPTOR)
    return descriptor_pb2.FileDescriptorSet(file=list(files.values()))


def compile_proto(protoc_python: str) -> None:
    """Run protoc on modules.proto and point its imports at clarifai_grpc."""
    with tempfile.TemporaryDirectory() as tmp:
        deps = Path(tmp) / "deps.binpb"
        deps.write_bytes(dependency_set().SerializeToString())
        subprocess.run([protoc_python, "-m", "grpc_tools.protoc", f"-I{ROOT}",
                        f"--descriptor_set_in={deps}", f"--python_out={ROOT}",
                        f"--pyi_out={ROOT}", str(PROTO)], check=True)
    for suffix in ("_pb2.py", "_pb2.pyi"):
        path = HERE / f"modules{suffix}"
        text = path.read_text()
        for old, new in _IMPORTS.items():
            text = text.replace(old, new)
        path.write_text(text)


def _serialized_file(wheel: zipfile.ZipFile, name: str) -> descriptor_pb2.FileDescriptorProto:
    source = wheel.read(f"clarifai_grpc/grpc/api/{name}").decode()
    blob = re.search(r"AddSerializedFile\((b'.*?')\)\n", source, re.S).group(1)
    proto = descriptor_pb2.FileDescriptorProto()
    proto.ParseFromString(ast.literal_eval(blob))
    return proto


def write_reference(wheel_path: str) -> None:
    """Copy 12.1.1's Module messages (verbatim) into one file descriptor the tests load into
    a pool of their own, beside the installed clarifai-grpc files: an old-proto client."""
    with zipfile.ZipFile(wheel_path) as wheel:
        resources = _serialized_file(wheel, "resources_pb2.py")
        service = _serialized_file(wheel, "service_pb2.py")
    ours = {m.name for m in _our_messages()}
    reference = descriptor_pb2.FileDescriptorProto(
        name="clarifai_grpc_12_1_1/modules.proto", package="clarifai.api", syntax="proto3",
        dependency=["google/protobuf/struct.proto", "google/protobuf/timestamp.proto",
                    resources_pb2.DESCRIPTOR.name, status_pb2.DESCRIPTOR.name])
    for message in (*resources.message_type, *service.message_type):
        if message.name in ours:
            reference.message_type.add().CopyFrom(message)
    missing = ours - {m.name for m in reference.message_type}
    if missing:
        sys.exit(f"not in the reference wheel: {sorted(missing)}")
    REFERENCE.parent.mkdir(parents=True, exist_ok=True)
    REFERENCE.write_bytes(reference.SerializeToString())


def _our_messages():
    from clarifai_connect.server.protos import modules_pb2

    return modules_pb2.DESCRIPTOR.message_types_by_name.values()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--protoc-python", help="a Python with grpcio-tools==1.69.0")
    parser.add_argument("--reference-wheel", help="clarifai_grpc-12.1.1-py3-none-any.whl")
    args = parser.parse_args()
    if args.protoc_python:
        compile_proto(args.protoc_python)
    if args.reference_wheel:
        write_reference(args.reference_wheel)


if __name__ == "__main__":
    main()
