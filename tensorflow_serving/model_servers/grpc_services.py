"""The gRPC services: PredictionService and ModelService, as TensorFlow Serving defines them.

Each call resolves its ModelSpec through the ModelManager, holds that model version
for the duration of the call, and answers with the version that served it in the
response's model_spec. The client's deadline bounds the work: a call whose deadline
has passed is refused with DEADLINE_EXCEEDED, and the remaining time is the model
run's timeout. Failures abort the call with TF Serving's canonical codes.
"""

import math
import time
from typing import Callable, Dict, Optional

from absl import logging
import grpc
import numpy as np

from tensorflow_serving.apis import classification_pb2
from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import inference_pb2
from tensorflow_serving.apis import model_management_pb2
from tensorflow_serving.apis import model_service_pb2_grpc
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc
from tensorflow_serving.apis import regression_pb2
from tensorflow_serving.model_servers import classify_regress_impl
from tensorflow_serving.model_servers import example_input
from tensorflow_serving.model_servers import grpc_handlers
from tensorflow_serving.model_servers import model_manager as model_manager_lib
from tensorflow_serving.model_servers import model_metadata
from tensorflow_serving.model_servers import monitoring
from tensorflow_serving.model_servers import predict_impl
from tensorflow_serving.model_servers import proto_wire
from tensorflow_serving.model_servers import request_deadline
from tensorflow_serving.model_servers import servable as servable_lib
from tensorflow_serving.model_servers import serving_errors
from tensorflow_serving.model_servers import tensor_protos

ENTRYPOINT = "GRPC"
# A reload waits this long for the new config's versions when the client sets no deadline.
DEFAULT_RELOAD_TIMEOUT_SECONDS = 600.0


def _deadline(context: grpc.ServicerContext) -> request_deadline.Deadline:
  remaining: Optional[float] = context.time_remaining()
  if remaining is None or remaining > 1e9 or math.isinf(remaining):
    return request_deadline.Deadline.never()
  return request_deadline.Deadline.after_seconds(remaining)


def _call(metrics: monitoring.Metrics, api: str, model_name: str,
          context: grpc.ServicerContext, work: Callable[[request_deadline.Deadline], object]):
  """Runs `work`, mapping ServingError to the call's status and recording metrics."""
  started = time.monotonic()
  code = grpc.StatusCode.OK
  try:
    deadline = _deadline(context)
    deadline.check(api)
    return work(deadline)
  except serving_errors.ServingError as e:
    code = e.code
    logging.debug("%s failed: %s", api, e)
    context.abort(e.code, e.message)
  except Exception as e:  # pylint: disable=broad-except
    code = grpc.StatusCode.INTERNAL
    logging.exception("%s failed unexpectedly", api)
    context.abort(code, f"{type(e).__name__}: {e}")
  finally:
    metrics.record_request(model_name, api, ENTRYPOINT, code.name, time.monotonic() - started)


def _fill_spec(spec, servable, signature_key: Optional[str]) -> None:
  spec.name = servable.name
  spec.version.value = servable.version
  if signature_key is not None:
    spec.signature_name = signature_key


def _predict_reply(response: predict_pb2.PredictResponse, outputs: Dict[str, np.ndarray],
                   tensor_content: bool) -> bytes:
  """The serialized PredictResponse: `response` plus an `outputs` entry per output.

  Built as wire bytes so that a large output is copied once (into the reply) rather
  than into a message and again by its serialisation; each output is dropped from
  `outputs` as soon as its bytes are taken.
  """
  chunks = [response.SerializeToString()]
  outputs_field = predict_pb2.PredictResponse.DESCRIPTOR.fields_by_name["outputs"].number
  for alias in sorted(outputs):
    tensor = tensor_protos.tensor_proto_chunks(outputs.pop(alias),
                                               as_tensor_content=tensor_content)
    key = alias.encode("utf-8")
    tensor_size = sum(memoryview(chunk).nbytes for chunk in tensor)
    # A map entry is a message of the key (field 1) and the value (field 2).
    entry = [proto_wire.length_delimited_head(1, len(key)), key,
             proto_wire.length_delimited_head(2, tensor_size)]
    entry_size = sum(len(chunk) for chunk in entry) + tensor_size
    chunks += [proto_wire.length_delimited_head(outputs_field, entry_size)] + entry + tensor
  return b"".join(chunks)


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
  """tensorflow.serving.PredictionService.

  Predict replies carry numbers in the typed repeated fields (float_val, ...), or in
  tensor_content with `tensor_content` (--enable_serialization_as_tensor_content).
  """

  def __init__(self, manager: model_manager_lib.ModelManager, metrics: monitoring.Metrics,
               *, tensor_content: bool = False):
    self._manager = manager
    self._metrics = metrics
    self._tensor_content = tensor_content

  def Predict(self, request: predict_pb2.PredictRequest, context):

    def work(deadline):
      spec = request.model_spec
      with self._manager.servable(spec) as servable:
        key = spec.signature_name or servable_lib.DEFAULT_SIGNATURE
        signature = servable.signature(key)
        inputs = predict_impl.arrays_from_tensor_protos(key, signature, request.inputs)
        key, outputs = predict_impl.predict(servable, key, inputs, request.output_filter,
                                            deadline, grpc_handlers.MAX_REPLY_BYTES)
        del inputs  # Large inputs need not live while the reply is built.
        response = predict_pb2.PredictResponse()
        _fill_spec(response.model_spec, servable, key)
        return _predict_reply(response, outputs, self._tensor_content)

    return _call(self._metrics, "predict", request.model_spec.name, context, work)

  def Classify(self, request: classification_pb2.ClassificationRequest, context):

    def work(deadline):
      examples = example_input.serialized_examples(request.input)
      with self._manager.servable(request.model_spec) as servable:
        key = request.model_spec.signature_name or servable_lib.DEFAULT_SIGNATURE
        response = classification_pb2.ClassificationResponse()
        response.result.CopyFrom(classify_regress_impl.classify(servable, key, examples, deadline))
        _fill_spec(response.model_spec, servable, key)
        return response

    return _call(self._metrics, "classify", request.model_spec.name, context, work)

  def Regress(self, request: regression_pb2.RegressionRequest, context):

    def work(deadline):
      examples = example_input.serialized_examples(request.input)
      with self._manager.servable(request.model_spec) as servable:
        key = request.model_spec.signature_name or servable_lib.DEFAULT_SIGNATURE
        response = regression_pb2.RegressionResponse()
        response.result.CopyFrom(classify_regress_impl.regress(servable, key, examples, deadline))
        _fill_spec(response.model_spec, servable, key)
        return response

    return _call(self._metrics, "regress", request.model_spec.name, context, work)

  def MultiInference(self, request: inference_pb2.MultiInferenceRequest, context):
    model_name = request.tasks[0].model_spec.name if request.tasks else ""

    def work(deadline):
      if not request.tasks:
        raise serving_errors.invalid_argument("MultiInferenceRequest has no tasks")
      first = request.tasks[0].model_spec
      for task in request.tasks[1:]:
        same_version = (task.model_spec.WhichOneof("version_choice") == first.WhichOneof("version_choice")
                        and task.model_spec.version == first.version
                        and task.model_spec.version_label == first.version_label)
        if task.model_spec.name != first.name or not same_version:
          raise serving_errors.invalid_argument(
              "All ModelSpecs in a MultiInferenceRequest must access the same model name and "
              f"version; got {first.name!r} and {task.model_spec.name!r}")
      examples = example_input.serialized_examples(request.input)
      tasks = [(t.model_spec.signature_name, t.method_name) for t in request.tasks]
      with self._manager.servable(first) as servable:
        results = classify_regress_impl.run_tasks(servable, tasks, examples, deadline)
        response = inference_pb2.MultiInferenceResponse()
        for (signature_name, _), result in zip(tasks, results):
          inference = response.results.add()
          _fill_spec(inference.model_spec, servable,
                     signature_name or servable_lib.DEFAULT_SIGNATURE)
          if isinstance(result, classification_pb2.ClassificationResult):
            inference.classification_result.CopyFrom(result)
          else:
            inference.regression_result.CopyFrom(result)
        return response

    return _call(self._metrics, "multi_inference", model_name, context, work)

  def GetModelMetadata(self, request: get_model_metadata_pb2.GetModelMetadataRequest, context):

    def work(unused_deadline):
      with self._manager.servable(request.model_spec) as servable:
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        model_metadata.fill_metadata(servable, request.metadata_field, response)
        return response

    return _call(self._metrics, "get_model_metadata", request.model_spec.name, context, work)


class ModelServicer(model_service_pb2_grpc.ModelServiceServicer):
  """tensorflow.serving.ModelService: status and config reload."""

  def __init__(self, manager: model_manager_lib.ModelManager, metrics: monitoring.Metrics,
               reload_config: Callable[[object, float], None]):
    self._manager = manager
    self._metrics = metrics
    self._reload_config = reload_config

  def GetModelStatus(self, request: get_model_status_pb2.GetModelStatusRequest, context):

    def work(unused_deadline):
      response = get_model_status_pb2.GetModelStatusResponse()
      response.model_version_status.extend(self._manager.version_statuses(request.model_spec))
      return response

    return _call(self._metrics, "get_model_status", request.model_spec.name, context, work)

  def HandleReloadConfigRequest(self, request: model_management_pb2.ReloadConfigRequest, context):

    def work(deadline):
      remaining = deadline.remaining_seconds()
      timeout = DEFAULT_RELOAD_TIMEOUT_SECONDS if math.isinf(remaining) else remaining
      self._reload_config(request.config, timeout)
      response = model_management_pb2.ReloadConfigResponse()
      response.status.CopyFrom(serving_errors.ok_status_proto())
      return response

    return _call(self._metrics, "reload_config", "", context, work)
