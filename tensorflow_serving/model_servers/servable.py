"""One loaded model version: a SavedModel in its own graph and TF1 session.

Why a TF1 session for every SavedModel: `tf.compat.v1.saved_model.loader.load` reads
TF1 (SavedModelBuilder) and TF2 (`tf.saved_model.save`) SavedModels alike and exposes
every SignatureDef with its method name (predict, classify, regress), as TensorFlow
Serving's C++ loader does, and a session run takes RunOptions.timeout_in_ms, which is
how a request's deadline bounds the model's work.

Runs go through the session's C API entry point rather than `Session.run`:
`Session.run` refuses feeds whose shape differs from the tensor's static shape, while
TensorFlow Serving (the C++ Session::Run) feeds any shape the kernels accept; e.g.
half_plus_two's `x` is [?, 1] statically and clients feed [3]. The C API call releases
the GIL, so models run in parallel with the server's threads, including a nested call
back into this server made by the model's own TfServingRemotePredict op.
"""

import threading
from typing import Dict, List, Mapping, Optional, Sequence

from google.protobuf import message
from google.protobuf import text_format
import grpc
import numpy as np
import tensorflow as tf

from tensorflow.core.protobuf import config_pb2
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow.python.client import pywrap_tf_session
from tensorflow_serving.model_servers import request_deadline
from tensorflow_serving.model_servers import serving_errors

DEFAULT_SIGNATURE = tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY


class Servable:
  """A loaded SavedModel version; thread-safe; closed once unloaded and drained."""

  def __init__(self, name: str, version: int, path: str, graph: tf.Graph,
               session: tf.compat.v1.Session, meta_graph: meta_graph_pb2.MetaGraphDef):
    self.name = name
    self.version = version
    self.path = path
    self._graph = graph
    self._session = session
    self._meta_graph = meta_graph
    self._outputs_by_name: Dict[str, object] = {}
    self._lock = threading.Condition()
    self._in_flight = 0
    self._closing = False
    # A batching.ServableBatcher when --enable_batching batches this version's runs.
    self.batcher = None
    self._cancelled = False

  @property
  def signatures(self) -> Mapping[str, meta_graph_pb2.SignatureDef]:
    return self._meta_graph.signature_def

  def signature(self, signature_name: str) -> meta_graph_pb2.SignatureDef:
    """The named signature ("" means serving_default); FAILED_PRECONDITION if absent."""
    key = signature_name or DEFAULT_SIGNATURE
    if key not in self._meta_graph.signature_def:
      raise serving_errors.failed_precondition(
          f'Serving signature key "{key}" not found in model {self.name} version '
          f"{self.version}; its signatures are: {', '.join(sorted(self.signatures)) or 'none'}")
    return self._meta_graph.signature_def[key]

  # Reference counting, so an unload waits for the requests still using the version.
  def acquire(self) -> None:
    with self._lock:
      if self._closing:
        raise serving_errors.unavailable(
            f"model {self.name} version {self.version} is being unloaded; retry the request")
      self._in_flight += 1

  def release(self) -> None:
    with self._lock:
      self._in_flight -= 1
      if self._in_flight == 0:
        self._lock.notify_all()

  def close(self) -> None:
    """Refuses new requests, waits for running ones, then frees the session."""
    with self._lock:
      self._closing = True
      while self._in_flight:
        self._lock.wait()
    if self.batcher is not None:
      self.batcher.close()
    self._session.close()

  def cancel(self) -> bool:
    """At shutdown: aborts running model work now; runs after this fail UNAVAILABLE.

    Returns whether any request was still using the version.
    """
    with self._lock:
      if self._cancelled:
        return False
      self._cancelled = True
      busy = self._in_flight > 0
    # Closing a TensorFlow session cancels the steps running in it.
    self._session.close()
    return busy

  def _refuse_if_cancelled(self) -> None:
    if self._cancelled:
      raise serving_errors.unavailable(
          f"model {self.name} version {self.version}: the server is shutting down")

  def _tf_output(self, tensor_name: str):
    output = self._outputs_by_name.get(tensor_name)
    if output is None:
      try:
        tensor = self._graph.get_tensor_by_name(tensor_name)
      except (KeyError, ValueError) as e:
        raise serving_errors.internal(
            f"model {self.name} version {self.version}: signature tensor '{tensor_name}' is "
            f"not in the graph: {e}") from e
      output = tensor._as_tf_output()  # pylint: disable=protected-access
      self._outputs_by_name[tensor_name] = output
    return output

  def run(self, feeds: Mapping[str, np.ndarray], fetches: Sequence[str],
          deadline: Optional[request_deadline.Deadline]) -> List[np.ndarray]:
    """Runs the graph: feeds/fetches are tensor names ("x:0"); batched if batching is on."""
    self._refuse_if_cancelled()
    if self.batcher is not None:
      return self.batcher.run(feeds, fetches, deadline, self.run_alone)
    return self.run_alone(feeds, fetches, deadline)

  def run_alone(self, feeds: Mapping[str, np.ndarray], fetches: Sequence[str],
                deadline: Optional[request_deadline.Deadline]) -> List[np.ndarray]:
    """One session run of exactly these feeds."""
    self._refuse_if_cancelled()
    options = config_pb2.RunOptions()
    if deadline is not None:
      options.timeout_in_ms = deadline.remaining_ms_or_raise(
          f"model {self.name} version {self.version}")
    feed_outputs = {self._tf_output(name): value for name, value in feeds.items()}
    fetch_outputs = [self._tf_output(name) for name in fetches]
    buffer = pywrap_tf_session.TF_NewBufferFromString(options.SerializeToString())
    try:
      return self._session._call_tf_sessionrun(  # pylint: disable=protected-access
          buffer, feed_outputs, fetch_outputs, [], None)
    except tf.errors.DeadlineExceededError as e:
      raise serving_errors.deadline_exceeded(
          f"model {self.name} version {self.version} did not finish before the request's "
          f"deadline ({options.timeout_in_ms} ms): {e.message}") from e
    except tf.errors.OpError as e:
      raise serving_errors.ServingError(serving_errors.code_from_number(e.error_code),
                                        e.message) from e
    except UnicodeDecodeError as e:
      # TensorFlow quotes the input in some errors (e.g. an unparseable tf.Example);
      # when those bytes are not UTF-8, the error itself cannot become a Python str.
      quoted = e.object.decode("utf-8", "backslashreplace") if isinstance(
          e.object, (bytes, bytearray)) else ""
      raise serving_errors.invalid_argument(
          f"model {self.name} version {self.version} rejected the request's input: "
          f"{quoted or e}") from e
    finally:
      pywrap_tf_session.TF_DeleteBuffer(buffer)


def _load_error_code(error: Exception) -> grpc.StatusCode:
  """TensorFlow Serving's code for a failure the Python loader reports as an exception.

  The C++ loader says DATA_LOSS for a saved_model.pb(txt) that does not parse and
  NOT_FOUND for a missing file or tag set; the Python loader raises OSError (parse
  error as its cause) and RuntimeError instead.
  """
  cause = error.__cause__
  if isinstance(error, UnicodeDecodeError) or isinstance(
      cause, (message.DecodeError, text_format.ParseError, UnicodeDecodeError)):
    return grpc.StatusCode.DATA_LOSS
  if isinstance(error, OSError) or "could not be found in SavedModel" in str(error):
    return grpc.StatusCode.NOT_FOUND
  return grpc.StatusCode.INVALID_ARGUMENT


def load(name: str, version: int, export_dir: str, tags: Sequence[str],
         session_config: Optional[config_pb2.ConfigProto] = None) -> Servable:
  """Loads the SavedModel in `export_dir`; raises ServingError on failure."""
  graph = tf.Graph()
  session = tf.compat.v1.Session(graph=graph, config=session_config)
  try:
    with graph.as_default():
      meta_graph = tf.compat.v1.saved_model.loader.load(session, list(tags), export_dir)
    # Requests must never add nodes to a shared graph.
    graph.finalize()
  except tf.errors.OpError as e:
    session.close()
    raise serving_errors.ServingError(
        serving_errors.code_from_number(e.error_code),
        f"loading SavedModel {export_dir} failed: {e.message}") from e
  except (OSError, RuntimeError, ValueError, TypeError, KeyError) as e:
    session.close()
    raise serving_errors.ServingError(
        _load_error_code(e), f"loading SavedModel {export_dir} failed: {e}") from e
  return Servable(name, version, export_dir, graph, session, meta_graph)
