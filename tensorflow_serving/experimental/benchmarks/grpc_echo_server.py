"""The gRPC floors: bare grpcio unary methods with no TensorFlow and no protobuf parsing.

  Echo     returns each request's bytes unchanged
  Predict  (PredictionService/Predict) answers every request with the same response
           bytes, read from --predict_response_file at start-up

What is left is the cost of grpcio itself, set up the way the model server sets up its
gRPC front end (a synchronous `grpc.server` on a thread pool of the same size, unlimited
message sizes), so the model server's figures can be read as multiples of these. The
canned Predict lets the op and the Python client be timed against a server that costs
(almost) nothing, which separates client-side costs from the model server's.

  python -m tensorflow_serving.experimental.benchmarks.grpc_echo_server --port=0 \\
      [--predict_response_file=PATH]

prints `READY <port>` once it serves, and runs until SIGTERM.
"""

import concurrent.futures
import os
import signal
import threading
from typing import Optional, Tuple

from absl import app
from absl import flags
import grpc

from tensorflow_serving.experimental.benchmarks import helper_process

SERVICE = "tensorflow_serving.benchmarks.Echo"
METHOD = "Echo"
METHOD_PATH = f"/{SERVICE}/{METHOD}"
_PREDICTION_SERVICE = "tensorflow.serving.PredictionService"


def default_max_workers() -> int:
  # The model server's default --grpc_max_threads.
  return max(32, 4 * (os.cpu_count() or 1))


def create_server(port: int, max_workers: int,
                  predict_response: Optional[bytes] = None) -> Tuple[grpc.Server, int]:
  """A started server on 127.0.0.1:`port`; returns it and the bound port.

  Serves Predict only when `predict_response` (serialized PredictResponse) is given.
  """
  server = grpc.server(
      concurrent.futures.ThreadPoolExecutor(max_workers, thread_name_prefix="echo"),
      options=[("grpc.max_send_message_length", -1),
               ("grpc.max_receive_message_length", -1)])
  # No (de)serializers: requests and responses are the raw message bytes.
  echo = grpc.unary_unary_rpc_method_handler(lambda request, context: request)
  handlers = [grpc.method_handlers_generic_handler(SERVICE, {METHOD: echo})]
  if predict_response is not None:
    canned = grpc.unary_unary_rpc_method_handler(lambda request, context: predict_response)
    handlers.append(grpc.method_handlers_generic_handler(_PREDICTION_SERVICE,
                                                         {"Predict": canned}))
  server.add_generic_rpc_handlers(handlers)
  bound = server.add_insecure_port(f"127.0.0.1:{port}")
  if not bound:
    raise OSError(f"cannot listen for gRPC on 127.0.0.1:{port}")
  server.start()
  return server, bound


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  predict_response = None
  if flags.FLAGS.predict_response_file:
    with open(flags.FLAGS.predict_response_file, "rb") as f:
      predict_response = f.read()
  server, port = create_server(flags.FLAGS.port, default_max_workers(), predict_response)
  stopped = threading.Event()
  signal.signal(signal.SIGTERM, lambda *_: stopped.set())
  helper_process.announce_ready(port)
  stopped.wait()
  server.stop(grace=1.0).wait()


if __name__ == "__main__":
  # Defined here, not on import: the benchmark imports this module for its constants.
  flags.DEFINE_integer("port", 0, "Port on 127.0.0.1; 0 picks a free one.")
  flags.DEFINE_string("predict_response_file", "",
                      "Serialized PredictResponse to answer every Predict with; without it "
                      "only Echo is served.")
  app.run(main)
