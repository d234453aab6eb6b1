"""The TensorFlow RPC peer: a `tf.distribute.experimental.rpc` server in its own process.

It registers `half_plus_two`, a tf.function computing 0.5 * x + 2 on a float32 vector,
the computation of the half_plus_two model the model server serves, so the benchmark
can set TensorFlow's own in-graph RPC beside the Remote Predict Op calling the model
server. The server cannot report a port it picked itself, so the parent passes a free
one.

  python -m tensorflow_serving.experimental.benchmarks.tf_rpc_server --port=PORT

prints `READY <port>` once it serves, and runs until SIGTERM.
"""

import signal
import threading

from absl import app
from absl import flags
import tensorflow as tf

from tensorflow_serving.experimental.benchmarks import helper_process

METHOD = "half_plus_two"
INPUT_SPEC = tf.TensorSpec([None], tf.float32)
OUTPUT_SPEC = tf.TensorSpec([None], tf.float32)



@tf.function(input_signature=[INPUT_SPEC])
def half_plus_two(x):
  return 0.5 * x + 2.0


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  stopped = threading.Event()
  signal.signal(signal.SIGTERM, lambda *_: stopped.set())
  server = tf.distribute.experimental.rpc.Server.create("grpc", f"127.0.0.1:{flags.FLAGS.port}")
  server.register(METHOD, half_plus_two)
  server.start()
  helper_process.announce_ready(flags.FLAGS.port)
  stopped.wait()


if __name__ == "__main__":
  # Defined here, not on import: the benchmark imports this module for its constants.
  flags.DEFINE_integer("port", None, "Port on 127.0.0.1 to serve on.", lower_bound=1)
  flags.mark_flag_as_required("port")
  app.run(main)
