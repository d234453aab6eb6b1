"""TensorFlow Serving's REST API, independent of the HTTP server carrying it.

  GET  /v1/models/{model}[/versions/{v} | /labels/{label}]            model status
  GET  /v1/models/{model}[/versions/{v} | /labels/{label}]/metadata   model metadata
  POST /v1/models/{model}[/versions/{v} | /labels/{label}]:predict|:classify|:regress

`RestApi.handle()` is synchronous (it runs the model), so the HTTP server calls it on a
worker thread. Errors come back as {"error": "..."} with TF Serving's HTTP status for
the error's canonical code (400, 404, 409, 429, 499, 500, 501, 503, 504).
"""

import json
import re
import time
import urllib.parse
from typing import Optional, Tuple

from absl import logging
from google.protobuf import json_format
import grpc

from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import model_pb2
from tensorflow_serving.model_servers import classify_regress_impl
from tensorflow_serving.model_servers import example_input
from tensorflow_serving.model_servers import json_tensor
from tensorflow_serving.model_servers import model_manager as model_manager_lib
from tensorflow_serving.model_servers import model_metadata
from tensorflow_serving.model_servers import monitoring
from tensorflow_serving.model_servers import predict_impl
from tensorflow_serving.model_servers import request_deadline
from tensorflow_serving.model_servers import servable as servable_lib
from tensorflow_serving.model_servers import serving_errors
from tensorflow_serving.model_servers import tensor_limits

ENTRYPOINT = "REST"
_VERSION_PART = r"(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?"
_POST_PATH = re.compile(r"/v1/models/([^/:]+)" + _VERSION_PART + r":(classify|regress|predict)",
                        re.IGNORECASE)
_GET_PATH = re.compile(r"/v1/models(?:/([^/:]+))?" + _VERSION_PART + r"(?:/(metadata))?",
                       re.IGNORECASE)


def _model_spec(name: str, version: Optional[str], label: Optional[str]) -> model_pb2.ModelSpec:
  spec = model_pb2.ModelSpec(name=urllib.parse.unquote(name))
  if version is not None:
    try:
      spec.version.value = int(version)
    except ValueError as e:
      raise serving_errors.invalid_argument(f"Failed to convert version: {version} to numeric.") from e
  if label is not None:
    spec.version_label = urllib.parse.unquote(label)
  return spec


def _status_json(response: get_model_status_pb2.GetModelStatusResponse) -> str:
  return json_format.MessageToJson(response, always_print_fields_with_no_presence=True, indent=1)


def _metadata_json(response: get_model_metadata_pb2.GetModelMetadataResponse) -> str:
  options = dict(always_print_fields_with_no_presence=True, preserving_proto_field_name=True)
  signature_map = get_model_metadata_pb2.SignatureDefMap()
  response.metadata[model_metadata.SIGNATURE_DEF].Unpack(signature_map)
  document = {
      "model_spec": json_format.MessageToDict(response.model_spec, **options),
      "metadata": {model_metadata.SIGNATURE_DEF: json_format.MessageToDict(signature_map, **options)},
  }
  return json.dumps(document, indent=1)


class RestApi:
  """Routes and serves REST requests; thread-safe."""

  def __init__(self, manager: model_manager_lib.ModelManager, metrics: monitoring.Metrics,
               timeout_in_ms: int):
    self._manager = manager
    self._metrics = metrics
    self._timeout_seconds = timeout_in_ms / 1000.0 if timeout_in_ms > 0 else None

  def handle(self, method: str, path: str, body: bytes) -> Tuple[int, str]:
    """Serves one request; returns (HTTP status, JSON body). `path` is still %-encoded."""
    started = time.monotonic()
    api, model_name, code = "unknown", "", grpc.StatusCode.OK
    try:
      api, model_name, work = self._route(method, path, body)
      return 200, work()
    except serving_errors.ServingError as e:
      code = e.code
      return e.http_status(), json_tensor.error_response(e.message)
    except Exception as e:  # pylint: disable=broad-except
      code = grpc.StatusCode.INTERNAL
      logging.exception("REST %s %s failed unexpectedly", method, path)
      return 500, json_tensor.error_response(f"{type(e).__name__}: {e}")
    finally:
      if model_name:
        self._metrics.record_request(model_name, api, ENTRYPOINT, code.name,
                                     time.monotonic() - started)

  def _route(self, method: str, path: str, body: bytes):
    malformed = serving_errors.invalid_argument(f"Malformed request: {method} {path}")
    if method == "POST":
      match = _POST_PATH.fullmatch(path)
      if not match:
        raise malformed
      name, version, label, verb = match.groups()
      spec = _model_spec(name, version, label)
      verb = verb.lower()
      if verb == "predict":
        return "predict", spec.name, lambda: self._predict(spec, body)
      return verb, spec.name, lambda: self._classify_or_regress(verb, spec, body)
    if method == "GET":
      match = _GET_PATH.fullmatch(path)
      if not match:
        raise malformed
      name, version, label, metadata = match.groups()
      if not name:
        raise serving_errors.invalid_argument("Missing model name in request.")
      spec = _model_spec(name, version, label)
      if metadata:
        return "get_model_metadata", spec.name, lambda: self._metadata(spec)
      return "get_model_status", spec.name, lambda: self._status(spec)
    raise malformed

  def _deadline(self) -> request_deadline.Deadline:
    return request_deadline.Deadline.after_seconds(self._timeout_seconds)

  def _predict(self, spec: model_pb2.ModelSpec, body: bytes) -> str:
    deadline = self._deadline()
    document = json_tensor.parse_request(body)
    signature_name = json_tensor.signature_name(document)
    with self._manager.servable(spec) as servable:
      key = signature_name or servable_lib.DEFAULT_SIGNATURE
      try:
        signature = servable.signature(key)
      except serving_errors.ServingError as e:
        raise serving_errors.invalid_argument(e.message) from e
      inputs, request_format = json_tensor.predict_inputs(
          document, signature, tensor_limits.Budget(),
          may_hold_bools=b"true" in body or b"false" in body)
      _, outputs = predict_impl.predict(servable, key, inputs, [], deadline)
    return json_tensor.predict_response(outputs, request_format)

  def _classify_or_regress(self, verb: str, spec: model_pb2.ModelSpec, body: bytes) -> str:
    deadline = self._deadline()
    document = json_tensor.parse_request(body)
    signature_name = json_tensor.signature_name(document)
    examples = example_input.serialized_examples(json_tensor.examples_input(document))
    with self._manager.servable(spec) as servable:
      if verb == "classify":
        result = classify_regress_impl.classify(servable, signature_name, examples, deadline)
        return json_tensor.classification_response(result)
      result = classify_regress_impl.regress(servable, signature_name, examples, deadline)
      return json_tensor.regression_response(result)

  def _metadata(self, spec: model_pb2.ModelSpec) -> str:
    with self._manager.servable(spec) as servable:
      response = get_model_metadata_pb2.GetModelMetadataResponse()
      model_metadata.fill_metadata(servable, [model_metadata.SIGNATURE_DEF], response)
    return _metadata_json(response)

  def _status(self, spec: model_pb2.ModelSpec) -> str:
    response = get_model_status_pb2.GetModelStatusResponse()
    response.model_version_status.extend(self._manager.version_statuses(spec))
    return _status_json(response)
