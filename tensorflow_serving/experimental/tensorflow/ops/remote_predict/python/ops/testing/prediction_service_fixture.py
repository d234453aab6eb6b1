"""An in-process gRPC PredictionService for testing the Remote Predict Op.

This is a test fixture, not a model server: it runs no model. It records every
PredictRequest it receives (with the deadline the caller sent) and answers with
a behaviour the test picks:

  * `Echo`: returns request inputs as outputs, one per `output_filter` alias.
  * `Reply`: returns fixed outputs whatever the request asked for.
  * `Fail`: aborts the call with a given gRPC status code and message.
  * `HoldUntilInFlight`: blocks each call at a barrier until N calls are being
    handled at the same time, then delegates to another behaviour. N calls can
    only meet there if none of them waits for another to finish, which is how
    the tests prove that remote calls in one graph overlap.

The server listens on 127.0.0.1 on a port the OS picks, so tests never collide.
"""

import concurrent.futures
import dataclasses
import threading
from typing import Callable, Mapping, Optional

import grpc

from tensorflow.core.framework import tensor_pb2
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

# Calls a behaviour can block (HoldUntilInFlight) each hold a server thread, so
# the pool must exceed the largest fan-out a test holds at once.
DEFAULT_MAX_WORKERS = 32

# Lets the tests send and receive tensors far beyond gRPC's 4 MiB default.
_UNLIMITED_MESSAGE_SIZE = [
    ("grpc.max_send_message_length", -1),
    ("grpc.max_receive_message_length", -1),
]

Behaviour = Callable[[predict_pb2.PredictRequest, grpc.ServicerContext],
                     predict_pb2.PredictResponse]


@dataclasses.dataclass(frozen=True)
class RecordedCall:
  """One Predict call as the server saw it."""
  request: predict_pb2.PredictRequest
  # Seconds left until the caller's deadline when the call arrived.
  time_remaining: float
  invocation_metadata: tuple[tuple[str, str | bytes], ...]


class Echo:
  """Answers with the request's inputs under the requested output aliases.

  `output_to_input` maps an output alias to the input alias it copies; an alias
  it does not mention copies the input of the same name. With no output_filter
  the response carries every input.
  """

  def __init__(self, output_to_input: Optional[Mapping[str, str]] = None):
    self._output_to_input = dict(output_to_input or {})

  def __call__(self, request: predict_pb2.PredictRequest,
               context: grpc.ServicerContext) -> predict_pb2.PredictResponse:
    response = predict_pb2.PredictResponse()
    response.model_spec.CopyFrom(request.model_spec)
    aliases = list(request.output_filter) or list(request.inputs)
    for alias in aliases:
      source = self._output_to_input.get(alias, alias)
      if source not in request.inputs:
        context.abort(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"echo fixture: output alias '{alias}' needs input '{source}', "
            f"but the request has inputs {sorted(request.inputs)}")
      response.outputs[alias].CopyFrom(request.inputs[source])
    return response


class Reply:
  """Answers every call with the same outputs, whatever was asked for.

  Lets a test send responses a real model would not, e.g. one that lacks a
  requested alias.
  """

  def __init__(self, outputs: Mapping[str, tensor_pb2.TensorProto]):
    self._response = predict_pb2.PredictResponse()
    for alias, tensor in outputs.items():
      self._response.outputs[alias].CopyFrom(tensor)

  def __call__(self, request: predict_pb2.PredictRequest,
               context: grpc.ServicerContext) -> predict_pb2.PredictResponse:
    del request, context
    return self._response


class Fail:
  """Aborts every call with `code` and `message`."""

  def __init__(self, code: grpc.StatusCode, message: str):
    self._code = code
    self._message = message

  def __call__(self, request: predict_pb2.PredictRequest,
               context: grpc.ServicerContext) -> predict_pb2.PredictResponse:
    del request
    context.abort(self._code, self._message)


class HoldUntilInFlight:
  """Holds each call until `parties` calls are held together, then answers.

  If the group does not form within `timeout_seconds`, every waiting call (and
  every later one) fails with FAILED_PRECONDITION saying how many arrived, so a
  serialising caller produces a clear error instead of a hang.
  """

  def __init__(self, parties: int, timeout_seconds: float,
               then: Optional[Behaviour] = None):
    self._parties = parties
    self._barrier = threading.Barrier(parties, timeout=timeout_seconds)
    self._timeout_seconds = timeout_seconds
    self._then = then or Echo()
    self._lock = threading.Lock()
    self._arrived = 0
    self._max_waiting = 0

  @property
  def max_waiting(self) -> int:
    """The most calls that were held at the barrier at the same time."""
    with self._lock:
      return self._max_waiting

  def __call__(self, request: predict_pb2.PredictRequest,
               context: grpc.ServicerContext) -> predict_pb2.PredictResponse:
    with self._lock:
      self._arrived += 1
      self._max_waiting = max(self._max_waiting,
                              self._barrier.n_waiting + 1)
    try:
      self._barrier.wait()
    except threading.BrokenBarrierError:
      with self._lock:
        arrived = self._arrived
      context.abort(
          grpc.StatusCode.FAILED_PRECONDITION,
          f"hold fixture: {self._parties} calls were to be in flight at once, "
          f"but after {self._timeout_seconds}s only {self.max_waiting} were "
          f"({arrived} arrived in total): the caller serialised its calls")
    return self._then(request, context)


class HoldUntilCancelled:
  """Never answers: holds each call until the caller cancels it.

  `cancelled` is set once a held call has been cancelled (or has hit its own
  deadline), which shows the caller gave up on the RPC rather than leaving it
  open. After `timeout_seconds` a call still held fails with ABORTED.
  """

  def __init__(self, timeout_seconds: float):
    self._timeout_seconds = timeout_seconds
    self.cancelled = threading.Event()

  def __call__(self, request: predict_pb2.PredictRequest,
               context: grpc.ServicerContext) -> predict_pb2.PredictResponse:
    del request
    terminated = threading.Event()
    # The handler has not returned, so the RPC can only terminate early.
    if not context.add_callback(terminated.set):
      terminated.set()
    if terminated.wait(self._timeout_seconds):
      self.cancelled.set()
      context.abort(grpc.StatusCode.CANCELLED, "hold fixture: call cancelled")
    context.abort(
        grpc.StatusCode.ABORTED,
        f"hold fixture: the caller kept the call open for "
        f"{self._timeout_seconds}s without cancelling it")


class PredictionServiceFixture(
    prediction_service_pb2_grpc.PredictionServiceServicer):
  """A grpcio server whose Predict records calls and runs a behaviour.

  Use as a context manager:

    with PredictionServiceFixture() as server:
      ... target_address=server.address ...
      server.calls()[0].request.model_spec.name
  """

  def __init__(self, behaviour: Optional[Behaviour] = None,
               max_workers: int = DEFAULT_MAX_WORKERS):
    self._behaviour = behaviour or Echo()
    self._max_workers = max_workers
    self._calls: list[RecordedCall] = []
    self._calls_changed = threading.Condition()
    self._server: Optional[grpc.Server] = None
    self._port: Optional[int] = None

  def start(self) -> "PredictionServiceFixture":
    if self._server is not None:
      raise RuntimeError("the fixture server is already running")
    server = grpc.server(
        concurrent.futures.ThreadPoolExecutor(
            max_workers=self._max_workers,
            thread_name_prefix="prediction_service_fixture"),
        options=_UNLIMITED_MESSAGE_SIZE)
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        self, server)
    port = server.add_insecure_port("127.0.0.1:0")
    if port == 0:
      raise RuntimeError("the fixture could not bind a port on 127.0.0.1")
    server.start()
    self._server, self._port = server, port
    return self

  def stop(self) -> None:
    if self._server is not None:
      # A grace period of None cancels calls still held by a behaviour.
      self._server.stop(grace=None).wait()
      self._server = None

  def __enter__(self) -> "PredictionServiceFixture":
    return self.start()

  def __exit__(self, *unused_exc_info) -> None:
    self.stop()

  @property
  def port(self) -> int:
    if self._port is None:
      raise RuntimeError("start() the fixture server before asking its port")
    return self._port

  @property
  def address(self) -> str:
    """`host:port`, as the op's target_address takes it."""
    return f"127.0.0.1:{self.port}"

  def set_behaviour(self, behaviour: Behaviour) -> None:
    self._behaviour = behaviour

  def calls(self) -> list[RecordedCall]:
    with self._calls_changed:
      return list(self._calls)

  def clear_calls(self) -> None:
    with self._calls_changed:
      self._calls.clear()

  def wait_for_calls(self, count: int,
                     timeout_seconds: float) -> list[RecordedCall]:
    """Returns the calls once `count` have arrived; raises on timeout."""
    with self._calls_changed:
      if not self._calls_changed.wait_for(lambda: len(self._calls) >= count,
                                          timeout=timeout_seconds):
        raise TimeoutError(
            f"the fixture at {self.address} received {len(self._calls)} "
            f"Predict calls within {timeout_seconds}s; expected {count}")
      return list(self._calls)

  def Predict(self, request: predict_pb2.PredictRequest,
              context: grpc.ServicerContext) -> predict_pb2.PredictResponse:  # pylint: disable=invalid-name
    recorded = RecordedCall(
        request=request,
        time_remaining=context.time_remaining(),
        invocation_metadata=tuple(
            (m.key, m.value) for m in context.invocation_metadata()))
    with self._calls_changed:
      self._calls.append(recorded)
      self._calls_changed.notify_all()
    return self._behaviour(request, context)
