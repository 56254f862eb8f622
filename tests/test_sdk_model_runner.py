"""The official SDK's own ``ModelRunner`` serves a model through the local server: it attaches
to a runner in a compute cluster's nodepool, takes the prediction over ProcessRunnerItems,
and the PostModelOutputs caller gets the model's answer.

The runner runs in a child process (killed at the end): the SDK's runner protocol installs
its own threads and signal handling, which must not outlive the test session.
"""

import os
import subprocess
import sys
import textwrap
import uuid

import pytest
from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes

pytestmark = pytest.mark.compat
pytest.importorskip("clarifai.runners.models.model_runner", reason="install the compat extra")

RUNNER = textwrap.dedent("""
    import sys
    from clarifai.runners.models.model_class import ModelClass
    from clarifai.runners.models.model_runner import ModelRunner

    class Shout(ModelClass):
        @ModelClass.method
        def predict(self, text: str) -> str:
            return text.upper() + "!"

    base_url, pat, user_id = sys.argv[1:4]
    model = Shout()
    model.load_model()
    ModelRunner(model=model, runner_id="sdk-runner", nodepool_id="np", compute_cluster_id="cc",
                user_id=user_id, base_url=base_url, pat=pat, num_parallel_polls=1,
                health_check_port=None).start()
""")


def test_official_model_runner_serves_a_model(clarifai_server, clarifai_raw, clarifai_app,
                                              tmp_path):
    call, ids = clarifai_raw.call, clarifai_app.user_app_id
    user = resources_pb2.UserAppIDSet(user_id=clarifai_app.user_id)
    model_id = f"m-{uuid.uuid4().hex[:8]}"
    assert call("PostModels", service_pb2.PostModelsRequest(user_app_id=ids, models=[
        resources_pb2.Model(id=model_id, model_type_id="text-embedder")])).status.code == \
        codes.SUCCESS
    version = call("PostModelVersions", service_pb2.PostModelVersionsRequest(
        user_app_id=ids, model_id=model_id, model_versions=[resources_pb2.ModelVersion()])
        ).model.model_version.id
    call("PostComputeClusters", service_pb2.PostComputeClustersRequest(
        user_app_id=user, compute_clusters=[resources_pb2.ComputeCluster(id="cc")]))
    call("PostNodepools", service_pb2.PostNodepoolsRequest(
        user_app_id=user, compute_cluster_id="cc", nodepools=[resources_pb2.Nodepool(id="np")]))
    worker = resources_pb2.Worker(model=resources_pb2.Model(
        id=model_id, app_id=clarifai_app.app_id,
        model_version=resources_pb2.ModelVersion(id=version)))
    created = call("PostRunners", service_pb2.PostRunnersRequest(
        user_app_id=user, compute_cluster_id="cc", nodepool_id="np",
        runners=[resources_pb2.Runner(id="sdk-runner", worker=worker)]))
    assert created.status.code == codes.SUCCESS, created.status

    script = tmp_path / "runner.py"
    script.write_text(RUNNER)
    log = open(tmp_path / "runner.log", "wb")
    child = subprocess.Popen(
        [sys.executable, str(script), clarifai_server.base_url, clarifai_server.keys[0],
         clarifai_app.user_id], stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "CLARIFAI_ENABLE_PROCESS_CLEANUP": "false"})
    try:
        request = service_pb2.PostModelOutputsRequest(
            user_app_id=ids, model_id=model_id, version_id=version,
            inputs=[resources_pb2.Input(id="q1", data=resources_pb2.Data(
                text=resources_pb2.Text(raw="hello runner")))])
        # The child needs a few seconds to import the SDK and attach; until its stream is
        # open the model is not served (MODEL_NOT_DEPLOYED), so ask again.
        for _ in range(12):
            response = call("PostModelOutputs", request, timeout=10)
            if response.status.code != codes.MODEL_NOT_DEPLOYED or child.poll() is not None:
                break
        assert response.status.code == codes.SUCCESS, \
            (response.status, (tmp_path / "runner.log").read_text()[-2000:])
        (output,) = response.outputs
        assert output.data.text.raw == "HELLO RUNNER!"
        assert output.input.id == "q1" and output.model.id == model_id
    finally:
        child.kill()
        child.wait(10)
        log.close()
