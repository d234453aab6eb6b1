"""Model warm-up (--enable_model_warmup): replay a version's recorded requests before serving.

A SavedModel version may carry assets.extra/tf_serving_warmup_requests, a TFRecord file
of tensorflow.serving.PredictionLog. As in TensorFlow Serving, each record's Predict,
Classify, Regress or MultiInference request is run against the freshly loaded version
(--num_request_iterations_for_warmup times, once when 0) before it becomes AVAILABLE,
so the first real request does not pay for lazy initialisation. At most 1000 records
are read. A file that cannot be read or parsed, an unsupported log type or a failing
request fails the version's load, with the file and the record number in the message.
"""

import os

from absl import logging
import tensorflow as tf

from tensorflow_serving.apis import prediction_log_pb2
from tensorflow_serving.model_servers import classify_regress_impl
from tensorflow_serving.model_servers import example_input
from tensorflow_serving.model_servers import predict_impl
from tensorflow_serving.model_servers import request_deadline
from tensorflow_serving.model_servers import servable as servable_lib
from tensorflow_serving.model_servers import serving_errors

REQUESTS_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
MAX_RECORDS = 1000


def _replay_one(servable: servable_lib.Servable, log: prediction_log_pb2.PredictionLog) -> None:
  deadline = request_deadline.Deadline.never()
  kind = log.WhichOneof("log_type")
  if kind == "predict_log":
    request = log.predict_log.request
    key = request.model_spec.signature_name or servable_lib.DEFAULT_SIGNATURE
    inputs = predict_impl.arrays_from_tensor_protos(key, servable.signature(key), request.inputs)
    predict_impl.predict(servable, key, inputs, request.output_filter, deadline)
  elif kind in ("classify_log", "regress_log"):
    request = getattr(log, kind).request
    method = classify_regress_impl.CLASSIFY if kind == "classify_log" else classify_regress_impl.REGRESS
    classify_regress_impl.run_tasks(servable, [(request.model_spec.signature_name, method)],
                                    example_input.serialized_examples(request.input), deadline)
  elif kind == "multi_inference_log":
    request = log.multi_inference_log.request
    tasks = [(t.model_spec.signature_name, t.method_name) for t in request.tasks]
    classify_regress_impl.run_tasks(servable, tasks,
                                    example_input.serialized_examples(request.input), deadline)
  else:
    raise serving_errors.unimplemented(f"Unsupported log_type for warmup: {kind or 'none'}")


def replay(servable: servable_lib.Servable, iterations: int = 0) -> int:
  """Replays the version's warm-up requests; returns how many records were read.

  Raises ServingError naming the file and record if the warm-up fails.
  """
  path = os.path.join(servable.path, REQUESTS_FILE)
  if not tf.io.gfile.exists(path):
    return 0
  iterations = iterations if iterations > 0 else 1
  logging.info("Warming up model %s version %d with %s", servable.name, servable.version, path)
  count = 0
  records = tf.compat.v1.io.tf_record_iterator(path)
  while True:
    try:
      record = next(records)
    except StopIteration:
      break
    except (tf.errors.OpError, OSError) as e:
      message = getattr(e, "message", str(e))
      raise serving_errors.invalid_argument(
          f"warm-up file {path}: cannot read record {count + 1}: {message}") from e
    count += 1
    if count > MAX_RECORDS:
      raise serving_errors.invalid_argument(
          f"warm-up file {path} has more than {MAX_RECORDS} records, the most TensorFlow "
          "Serving replays")
    log = prediction_log_pb2.PredictionLog()
    try:
      log.ParseFromString(record)
    except Exception as e:  # pylint: disable=broad-except
      raise serving_errors.invalid_argument(
          f"warm-up file {path}: record {count} is not a PredictionLog: {e}") from e
    for _ in range(iterations):
      try:
        _replay_one(servable, log)
      except serving_errors.ServingError as e:
        raise serving_errors.ServingError(
            e.code, f"warm-up file {path}: record {count} failed: {e.message}") from e
  logging.info("Model %s version %d warmed up with %d record(s)", servable.name,
               servable.version, count)
  return count
