"""--enable_profiler: TensorFlow's ProfilerService on the gRPC port, for on-demand traces.

TensorFlow Serving registers TensorFlow's C++ ProfilerService on its gRPC server, so
`tensorflow.python.profiler.profiler_client.trace('grpc://host:port', logdir, ms)` (and
TensorBoard's "capture profile") records what the server does. The pip TensorFlow
offers that service only as its own C++ gRPC server on its own port (listening on all
interfaces), which cannot share grpcio's port; this module therefore serves
tensorflow.ProfilerService/Profile itself, with the pip TensorFlow's profiler: it runs
a profiler session in this process for the requested duration (session runs of every
model show up as TensorFlow op events) and then, as TensorFlow's service does, writes
the XSpace to REPOSITORY_ROOT/SESSION_ID/HOST.xplane.pb, or returns it in the reply
when the client asks for emit_xspace. One trace runs at a time; a trace lasts at most
MAX_DURATION_MS.
"""

import os
import shutil
import tempfile
import threading

from absl import logging
import grpc

from tensorflow.python.profiler.internal import _pywrap_profiler
from tensorflow_serving.model_servers import config_protos

SERVICE = "tensorflow.ProfilerService"
MAX_DURATION_MS = 60 * 1000


class ProfilerService:
  """tensorflow.ProfilerService/Profile for one gRPC server."""

  def __init__(self, stopping: threading.Event):
    self._stopping = stopping
    self._busy = threading.Lock()

  def handler(self) -> grpc.GenericRpcHandler:
    return grpc.method_handlers_generic_handler(SERVICE, {
        "Profile": grpc.unary_unary_rpc_method_handler(
            self.profile, request_deserializer=config_protos.ProfileRequest.FromString,
            response_serializer=config_protos.ProfileResponse.SerializeToString),
    })

  def profile(self, request, context):
    if not self._busy.acquire(blocking=False):
      context.abort(grpc.StatusCode.UNAVAILABLE,
                    "another profiling session is running on this server; retry when it ends")
    try:
      return self._profile(request, context)
    finally:
      self._busy.release()

  def _profile(self, request, context):
    write_to = None
    if not request.emit_xspace:
      session_id = request.session_id
      if (not os.path.isabs(request.repository_root) or not session_id or
          session_id in (".", "..") or "/" in session_id):
        context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                      "ProfileRequest needs an absolute repository_root and a session_id that "
                      f"is one path component; got '{request.repository_root}' and "
                      f"'{session_id}'")
      write_to = os.path.join(request.repository_root, session_id)
    duration_ms = min(request.duration_ms or 1000, MAX_DURATION_MS)
    options = {"host_tracer_level": request.opts.host_tracer_level or 2,
               "device_tracer_level": request.opts.device_tracer_level,
               "python_tracer_level": request.opts.python_tracer_level}
    scratch = tempfile.mkdtemp(prefix="tfms_profile_")
    try:
      session = _pywrap_profiler.ProfilerSession()
      try:
        session.start(scratch, options)
      except Exception as e:  # pylint: disable=broad-except
        context.abort(grpc.StatusCode.UNAVAILABLE, f"cannot start the profiler: {e}")
      logging.info("Profiling for %d ms", duration_ms)
      self._stopping.wait(duration_ms / 1000.0)  # A server shutdown ends the trace early.
      session.export_to_tb()
      traces = [os.path.join(root, name) for root, _, names in os.walk(scratch)
                for name in names if name.endswith(".xplane.pb")]
      response = config_protos.ProfileResponse(empty_trace=not traces)
      if not traces:
        return response
      if write_to is None:
        with open(traces[0], "rb") as f:
          response.xspace = f.read()
        return response
      try:
        os.makedirs(write_to, exist_ok=True)
        for trace in traces:
          shutil.copyfile(trace, os.path.join(write_to, os.path.basename(trace)))
      except OSError as e:
        context.abort(grpc.StatusCode.INTERNAL,
                      f"cannot write the trace to {write_to}: {e.strerror}")
      logging.info("Wrote the profile to %s", write_to)
      return response
    finally:
      shutil.rmtree(scratch, ignore_errors=True)
