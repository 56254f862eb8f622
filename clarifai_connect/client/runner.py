"""Runner: serve a model from a process of your own — subclass, implement ``run_input``,
``start()``; and the runner methods of User."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes
from clarifai_grpc.grpc.api.status import status_pb2

from ..errors import ApiClientError, ApiError, UserError
from .auth import ClientAuth
from .base import BaseClient, resolve_auth
from .utils import make_proto

log = logging.getLogger("clarifai_connect.client")
_WORK = (codes.SUCCESS, codes.RUNNER_NEEDS_RETRY)
_LATE = (codes.RUNNER_ITEM_CANCELLED,)  # the caller gave up before the answer came


class Runner(BaseClient):
    """Base class for remote inference runners: subclass it with :meth:`run_input`.

    ``start()`` asks the API for work (ListRunnerItems) in ``num_parallel_polls`` threads;
    each item is a PostModelOutputsRequest whose inputs go through ``run_input`` one by one,
    and the outputs are posted back (PostRunnerItemOutputs) with SUCCESS, MIXED_STATUS or
    FAILURE; an input whose ``run_input`` raises gets MODEL_PREDICTION_FAILED.
    """

    #: seconds to wait after a failed poll (the API unreachable) before the next
    error_backoff: float = 1.0

    def __init__(self, runner_id: str, user_id: str = "", check_runner_exists: bool = True,
                 base_url: str | None = None, pat: str = "", token: str = "",
                 num_parallel_polls: int = 4, root_certificates_path: str = "",
                 auth: ClientAuth | None = None, **kwargs: Any) -> None:
        """Initializes a Runner object.

        Args:
            runner_id: The id of the runner (create it first: ``User.create_runner``).
            user_id: Its owner (default: env ``CLARIFAI_USER_ID``).
            check_runner_exists: Fail now (ApiError) when the runner does not exist.
            base_url: The API: ``https://…``, ``http://host:port`` or ``local[:PATH]``.
            pat: A personal access token (default: env ``CLARIFAI_PAT``).
            token: A session token (default: env ``CLARIFAI_SESSION_TOKEN``).
            num_parallel_polls: The threads asking for work at once.
            root_certificates_path: PEM roots for TLS channels.
            auth: An already resolved connection (used by parent objects).
            **kwargs: Further fields of the Runner proto (description, labels …).
        """
        if not runner_id:
            raise UserError("Runner needs a runner_id.")
        if num_parallel_polls < 1:
            raise UserError(f"num_parallel_polls must be 1 or more, got {num_parallel_polls}.")
        self._init_client(resolve_auth(auth, user_id=user_id, app_id="", base_url=base_url,
                                       pat=pat, token=token,
                                       root_certificates_path=root_certificates_path
                                       ).with_ids(app_id=""))
        if not self.user_id:
            raise UserError("Runner needs a user_id: pass user_id= or set CLARIFAI_USER_ID.")
        self.num_parallel_polls = num_parallel_polls
        self._info = make_proto(resources_pb2.Runner, "Runner()", **{**kwargs, "id": runner_id})
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        if check_runner_exists:
            self._info.CopyFrom(self._call("GetRunner", service_pb2.GetRunnerRequest(
                user_app_id=self.user_app_id, runner_id=runner_id)).runner)

    # -- what a subclass implements -------------------------------------------------------

    def run_input(self, input: resources_pb2.Input,
                  output_info: resources_pb2.OutputInfo) -> resources_pb2.Output:
        """Run the model on one input of a request and return its Output (``data`` set; the
        status defaults to SUCCESS). ``output_info`` holds the request's
        ``model.model_version.output_info`` (``params`` per request). Raise to fail the
        input."""
        raise NotImplementedError("subclass Runner and implement run_input(input, output_info)")

    # -- the run loop ---------------------------------------------------------------------

    def start(self) -> None:
        """Ask for work and answer it until :meth:`stop` (or Ctrl-C); blocks."""
        with self._lock:
            self._stop = stop = threading.Event()
            self._threads = [threading.Thread(target=self._poll_loop, args=(stop,), daemon=True,
                                              name=f"runner-poll-{n}")
                             for n in range(self.num_parallel_polls)]
            for thread in self._threads:
                thread.start()
        log.info("runner '%s' started with %d polling threads", self.id, len(self._threads))
        try:
            while not stop.wait(0.2):
                pass
        except KeyboardInterrupt:
            log.info("runner '%s': interrupted, stopping", self.id)
        finally:
            self.stop()

    def start_in_background(self) -> threading.Thread:
        """:meth:`start` in a daemon thread; returns once the polling threads run."""
        thread = threading.Thread(target=self.start, name=f"runner-{self.id}", daemon=True)
        thread.start()
        while not self.running and thread.is_alive():
            time.sleep(0.01)
        return thread

    def stop(self, timeout: float | None = 30.0) -> None:
        """Stop asking for work; waits (up to ``timeout`` s) for the items in hand."""
        with self._lock:
            self._stop.set()
            threads = list(self._threads)
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(timeout)

    @property
    def running(self) -> bool:
        """Whether polling threads are at work."""
        return any(t.is_alive() for t in self._threads)

    def _poll_loop(self, stop: threading.Event) -> None:
        request = service_pb2.ListRunnerItemsRequest(user_app_id=self.user_app_id,
                                                     runner_id=self.id)
        while not stop.is_set():
            try:
                response = self._call("ListRunnerItems", request, ok=_WORK)
                for item in response.runner_items:
                    self._answer(item)
            except (ApiError, ApiClientError) as err:
                log.warning("runner '%s': %s", self.id, err)
                stop.wait(self.error_backoff)

    def _answer(self, item: service_pb2.RunnerItem) -> None:
        if not item.HasField("post_model_outputs_request"):
            log.warning("runner '%s': item '%s' is not a prediction; skipped", self.id, item.id)
            return
        response = self.run_request(item.post_model_outputs_request)
        try:
            self._call("PostRunnerItemOutputs", service_pb2.PostRunnerItemOutputsRequest(
                user_app_id=self.user_app_id, runner_id=self.id, runner_item_id=item.id,
                runner_item_outputs=[service_pb2.RunnerItemOutput(
                    multi_output_response=response)]), ok=(codes.SUCCESS, *_LATE))
        except ApiError as err:
            log.warning("runner '%s': answer to item '%s' refused: %s", self.id, item.id, err)

    def run_request(self, request: service_pb2.PostModelOutputsRequest
                    ) -> service_pb2.MultiOutputResponse:
        """Every input of ``request`` through :meth:`run_input`, as one MultiOutputResponse."""
        output_info = request.model.model_version.output_info
        outputs = []
        for inp in request.inputs:
            try:
                output = self.run_input(inp, output_info)
                if not isinstance(output, resources_pb2.Output):
                    raise TypeError(f"run_input returned {type(output).__name__}, not an Output")
                if not output.status.code:
                    output.status.code = codes.SUCCESS
            except Exception as exc:  # one input's failure must not sink the batch
                log.warning("runner '%s': input '%s' failed: %s", self.id, inp.id, exc)
                output = resources_pb2.Output(status=status_pb2.Status(
                    code=codes.MODEL_PREDICTION_FAILED, description="Model prediction failed",
                    details=f"{type(exc).__name__}: {exc}"))
            output.input.id = inp.id
            outputs.append(output)
        ok = sum(o.status.code == codes.SUCCESS for o in outputs)
        code = codes.SUCCESS if ok == len(outputs) else \
            codes.MIXED_STATUS if ok else codes.FAILURE
        return service_pb2.MultiOutputResponse(status=status_pb2.Status(code=code),
                                               outputs=outputs)

    def __str__(self) -> str:
        return f"Runner(user_id={self.user_id!r}, runner_id={self.id!r})"


class UserRunners:
    """The runner methods of :class:`~clarifai_connect.client.user.User` (mixed into it)."""

    def create_runner(self, runner_id: str, labels: list[str] | None = None,
                      description: str = "", **kwargs: Any) -> Runner:
        """Creates a runner for the user and returns it.

        Args:
            runner_id: The id of the runner to create.
            labels: Labels to match the runner: on the local server a label that is a
                model's id (or ``<model id>/<version id>``) makes it serve that model.
            description: Description of the runner.
            **kwargs: Further Runner fields (``worker`` naming the model it serves …).
        """
        if not runner_id:
            raise UserError("create_runner needs a runner_id.")
        proto = make_proto(resources_pb2.Runner, "create_runner()",
                           **{**kwargs, "id": runner_id, "labels": list(labels or []),
                              "description": description})
        response = self._call("PostRunners", service_pb2.PostRunnersRequest(
            user_app_id=resources_pb2.UserAppIDSet(user_id=self.user_id), runners=[proto]))
        log.info("runner '%s' created", runner_id)
        return self._wrap_runner(response.runners[0])

    def runner(self, runner_id: str) -> Runner:
        """Returns a Runner object for the existing runner ``runner_id`` (ApiError when it
        does not exist)."""
        if not runner_id:
            raise UserError("runner() needs a runner_id.")
        response = self._call("GetRunner", service_pb2.GetRunnerRequest(
            user_app_id=resources_pb2.UserAppIDSet(user_id=self.user_id), runner_id=runner_id))
        return self._wrap_runner(response.runner)

    def list_runners(self, filter_by: dict[str, Any] | None = None, page_no: int | None = None,
                     per_page: int | None = None) -> Iterator[Runner]:
        """Yields the user's runners, lazily; ``filter_by`` takes ListRunnersRequest fields
        (``nodepool_id``, ``compute_cluster_id``, ``model_version_ids``)."""
        filter_by = dict(filter_by or {})
        make_proto(service_pb2.ListRunnersRequest, "list_runners(filter_by=…)", **filter_by)
        pages = self.list_pages_generator(
            "ListRunners", service_pb2.ListRunnersRequest,
            {**filter_by, "user_app_id": resources_pb2.UserAppIDSet(user_id=self.user_id)},
            page_no, per_page)
        return (self._wrap_runner(proto) for proto in pages)

    def delete_runner(self, runner_id: str | Sequence[str]) -> None:
        """Deletes the runner ``runner_id`` (or every runner of a list of ids)."""
        ids = [runner_id] if isinstance(runner_id, str) else list(runner_id)
        if not ids or not all(ids):
            raise UserError("delete_runner needs a runner_id.")
        self._call("DeleteRunners", service_pb2.DeleteRunnersRequest(
            user_app_id=resources_pb2.UserAppIDSet(user_id=self.user_id), ids=ids))
        log.info("runner(s) %s deleted", ", ".join(ids))

    def _wrap_runner(self, proto: resources_pb2.Runner) -> Runner:
        runner = Runner(proto.id, check_runner_exists=False,
                        auth=self.auth.with_ids(self.user_id, ""))
        runner._info.CopyFrom(proto)
        return runner
