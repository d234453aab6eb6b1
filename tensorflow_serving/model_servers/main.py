"""tensorflow_model_server: serves SavedModels over TensorFlow Serving's gRPC and REST APIs.

The project's embedded model server, with the Remote Predict Op linked in. It takes
tensorflow_model_server's flags (see server_flags.py), so existing scripts and clients
work unchanged:

  tools/bazel run //tensorflow_serving/model_servers:tensorflow_model_server -- \\
      --port=8500 --rest_api_port=8501 \\
      --model_name=half_plus_two --model_base_path=/tmp/half_plus_two

  curl -d '{"instances": [1.0, 2.0, 5.0]}' \\
      http://localhost:8501/v1/models/half_plus_two:predict
  {"predictions": [2.5, 3.0, 4.5]}

As in TensorFlow Serving, the ports open once the configured models have loaded;
if one of them cannot load (after --max_num_load_retries), the server does not start.
SIGTERM or SIGINT stops accepting requests, lets running ones finish for
--shutdown_grace_period_in_ms, cancels what still runs and exits 0.
A server that cannot start prints "Failed to start server. Error: ..." naming the
culprit (flag, config file, model or port) and exits with status 255, as
tensorflow_model_server's main returning -1 does.
"""

import os
import signal
import sys
import threading

from absl import app
from absl import flags
from absl import logging

from tensorflow_serving.model_servers import server_flags

server_flags.define_flags()
FLAGS = flags.FLAGS
# After SIGTERM, the process exits at most this long after the grace period.
_EXIT_MARGIN_SECONDS = 4.0


def _exit_now() -> None:
  logging.error("Shutdown overran its grace period; exiting without waiting for the work "
                "still running")
  logging.flush()
  os._exit(0)  # pylint: disable=protected-access


def _print_version() -> None:
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from importlib import metadata  # pylint: disable=g-import-not-at-top
  try:
    api_version = metadata.version("tensorflow-serving-api")
  except metadata.PackageNotFoundError:
    api_version = "unknown"
  print(f"TensorFlow ModelServer: {api_version} (embedded Python server)")
  print(f"TensorFlow Library: {tf.__version__}")


# tensorflow_model_server's main returns -1 when the server cannot start.
START_FAILURE_EXIT_CODE = 255


def _start_failure(message: str) -> int:
  logging.error("Failed to start server. Error: %s", message)
  print(f"Failed to start server. Error: {message}", file=sys.stderr)
  return START_FAILURE_EXIT_CODE


def main(argv) -> int:
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}; every option is a --flag")
  if FLAGS.version:
    _print_version()
    return 0
  try:
    options = server_flags.options_from_flags(FLAGS)
  except server_flags.ConfigError as e:
    return _start_failure(str(e))

  # Imported only now, so that flag mistakes are reported before TensorFlow loads.
  from tensorflow_serving.model_servers import server as server_lib  # pylint: disable=g-import-not-at-top

  server = server_lib.ModelServer(options)

  def on_signal(signum, unused_frame):
    logging.info("Received %s", signal.Signals(signum).name)
    server.request_stop()

  signal.signal(signal.SIGTERM, on_signal)
  signal.signal(signal.SIGINT, on_signal)
  try:
    server.start()
  except (server_flags.ConfigError, server_lib.StartError, OSError) as e:
    return _start_failure(str(e))
  server.wait()
  # The last resort of a bounded shutdown: model work that ignores cancellation
  # (e.g. a custom op) must not keep the process past the grace period.
  watchdog = threading.Timer(options.shutdown_grace_period_in_ms / 1000.0 + _EXIT_MARGIN_SECONDS,
                             _exit_now)
  watchdog.daemon = True
  watchdog.start()
  server.stop()
  # Everything is drained and unloaded; skip the interpreter's teardown of TensorFlow
  # and gRPC, which can take seconds on a loaded machine and would stretch the
  # shutdown past its bound.
  logging.info("Exiting")
  logging.flush()
  sys.stdout.flush()
  sys.stderr.flush()
  os._exit(0)  # pylint: disable=protected-access


def _parse_flags(argv):
  try:
    return server_flags.parse_argv(argv, FLAGS)
  except flags.Error as e:
    print(f"tensorflow_model_server: error: {e}\nPass --helpfull to list the flags.",
          file=sys.stderr)
    sys.exit(START_FAILURE_EXIT_CODE)


def run() -> None:
  app.run(main, flags_parser=_parse_flags)


if __name__ == "__main__":
  run()
