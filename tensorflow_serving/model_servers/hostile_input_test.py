"""Hostile and malformed requests against a real server: exact codes, named problems.

Each corpus case asserts the HTTP status or gRPC code and a fragment of the error
that names what was wrong; after each corpus the server must still answer a good
request. The memory case sends requests whose declared shapes would take gigabytes
and asserts the server's peak RSS (VmHWM) barely moves.
"""

import json
import os
import subprocess
import threading

import grpc
import numpy as np
import tensorflow as tf

from tensorflow.core.framework import tensor_pb2
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import classification_pb2
from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import inference_pb2
from tensorflow_serving.apis import model_management_pb2
from tensorflow_serving.apis import model_service_pb2_grpc
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc
from tensorflow_serving.model_servers import model_server_test_util as util

MAX_REST_BYTES = 1 << 20
INVALID = grpc.StatusCode.INVALID_ARGUMENT
EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED
HPT = "/v1/models/half_plus_two"


def _curl_bytes(method, url, body=None):
  """curl with a body of arbitrary bytes; returns (HTTP status, parsed JSON body)."""
  command = ["curl", "-sS", "-X", method, "-o", "-", "-w", "\n%{http_code}"]
  if body is not None:
    command += ["-H", "Content-Type: application/json", "--data-binary", "@-"]
  command.append(url)
  result = subprocess.run(command, input=body or b"", capture_output=True, timeout=120,
                          check=False)
  if result.returncode != 0:
    raise AssertionError(f"curl {method} {url}: {result.stderr.decode('utf-8', 'replace')}")
  payload, _, status = result.stdout.decode("utf-8").rpartition("\n")
  return int(status), payload


def _vm_hwm_bytes(pid):
  with open(f"/proc/{pid}/status") as f:
    for line in f:
      if line.startswith("VmHWM:"):
        return int(line.split()[1]) * 1024
  raise AssertionError(f"no VmHWM in /proc/{pid}/status")


class HostileInputTest(util.ServerTestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    root = tf.compat.v1.test.get_temp_dir()
    half_plus_two = os.path.join(root, "half_plus_two")
    template = util.export_half_plus_two(half_plus_two, 123)
    versions = os.path.join(root, "versions")
    util.copy_version(template, versions, 1)
    counter = os.path.join(root, "counter")
    util.export_counting_model(counter, 1)
    config_path = util.write_config(os.path.join(root, "models.config"), util.server_config(
        util.model_config("half_plus_two", half_plus_two),
        util.model_config("versions", versions, "all {}", {"stable": 1}),
        util.model_config("counter", counter)))
    cls.start_server(root, [
        f"--model_config_file={config_path}",
        f"--rest_api_max_request_bytes={MAX_REST_BYTES}",
        "--rest_api_timeout_in_ms=20000",
    ], ["half_plus_two", "versions", "counter"])
    cls.channel = grpc.insecure_channel(cls.server.grpc_address)
    cls.predictions = prediction_service_pb2_grpc.PredictionServiceStub(cls.channel)
    cls.models = model_service_pb2_grpc.ModelServiceStub(cls.channel)

  @classmethod
  def tearDownClass(cls):
    cls.channel.close()
    super().tearDownClass()

  def _assert_still_serving(self):
    status, body = util.curl("POST", self.server.rest_url + HPT + ":predict",
                             '{"instances": [1.0, 2.0]}')
    self.assertEqual((status, body), (200, '{"predictions": [2.5, 3.0]}'))
    response = self.predictions.Predict(self._predict(np.array([1.0], np.float32)), timeout=30)
    self.assertAllClose(tf.make_ndarray(response.outputs["y"]), [2.5])

  # ------------------------------------------------------------------ REST

  def test_rest_corpus(self):
    predict, classify, regress = HPT + ":predict", HPT + ":classify", HPT + ":regress"
    counter = "/v1/models/counter:predict"
    over_limit = b'{"instances": [' + b", ".join([b"1.0"] * (MAX_REST_BYTES // 4)) + b"]}"
    cases = [
        # Bodies that are not JSON, or JSON no tensor can hold.
        ("POST", predict, b"{", 400, "JSON Parse error"),
        ("POST", predict, b"", 400, "The document is empty"),
        ("POST", predict, b"[1]", 400, "Is not object"),
        ("POST", predict, b"\xff\xfe{}", 400, "UTF-8"),
        ("POST", predict, b'{"instances": ["\xff"]}', 400, "UTF-8"),
        ("POST", predict, b'{"instances": [1e400]}', 400, "infinity"),
        ("POST", predict, b'{"instances": [NaN, 1e400]}', 400, "too big"),
        ("POST", predict, b'{"instances": [' + b"9" * 5000 + b"]}", 400, "JSON Parse error"),
        ("POST", predict, b"[" * 5000, 400, "JSON Parse error"),
        ("POST", predict, b'{"inputs": ' + b"[" * 100 + b"1.0" + b"]" * 100 + b"}", 400,
         "rank 100"),
        ("POST", predict, over_limit, 413, "--rest_api_max_request_bytes"),
        # Values of the wrong type, shape or range.
        ("POST", predict, b'{"instances": ["a"]}', 400, "is not of expected type: float"),
        ("POST", predict, b'{"instances": [true]}', 400, "Type: Bool"),
        ("POST", predict, b'{"instances": [1.0, false]}', 400, "Type: Bool"),
        ("POST", predict, b'{"instances": [null]}', 400, "Type: Null"),
        ("POST", predict, b'{"instances": [{"b64": "AAAA"}]}', 400, "Type: Object"),
        ("POST", predict, b'{"instances": [16777217]}', 400, "without loss of precision"),
        ("POST", predict, b'{"instances": [3.5e38]}', 400, "without loss of precision"),
        ("POST", predict, b'{"instances": [[1.0], [1.0, 2.0]]}', 400, "Expecting shape"),
        ("POST", predict, b'{"inputs": [[1.0], [1.0, 2.0]]}', 400, "unexpected size"),
        ("POST", predict, b'{"inputs": [[1.0], 2.0]}', 400, "incorrect level"),
        ("POST", predict, b'{"instances": [{"x": 1.0}, 2.0]}', 400, "Expecting object"),
        ("POST", predict, b'{"instances": [{"x": 1.0}, {"z": 2.0}]}', 400,
         "keys must be equal to: x"),
        ("POST", counter, b'{"inputs": {"n": 1.5}}', 400, "is not of expected type: int64"),
        ("POST", counter, b'{"inputs": {"n": 9223372036854775808}}', 400,
         "out of range for type: int64"),
        ("POST", counter, b'{"inputs": {"n": 99999999999999999999}}', 400,
         "is not of expected type: int64"),
        # Request structure.
        ("POST", predict, b'{"inputs": {"z": [1.0]}}', 400, "Missing named input: x"),
        ("POST", predict, b'{"inputs": {"x": [1.0], "z": [1.0]}}', 400, "unknown input(s)"),
        ("POST", predict, b'{"inputs": [1.0], "instances": [1.0]}', 400, "only one of"),
        ("POST", predict, b'{"nothing": 1}', 400, "Missing 'inputs' or 'instances' key"),
        ("POST", predict, b'{"instances": 3}', 400, "to be an list/array"),
        ("POST", predict, b'{"instances": []}', 400, "No values in 'instances' array"),
        ("POST", predict, b'{"signature_name": 5, "instances": [1.0]}', 400,
         "'signature_name' must be a string"),
        ("POST", predict, b'{"signature_name": "nope", "instances": [1.0]}', 400, "nope"),
        # Strings and base64 for a signature taking serialized tf.Examples.
        ("POST", predict,
         b'{"signature_name": "classify_x_to_y", "instances": [{"b64": "3q2+7w=="}]}', 400,
         "Could not parse example input"),
        ("POST", predict, b'{"signature_name": "classify_x_to_y", "instances": [{"b64": "!"}]}',
         400, "not valid base64"),
        # Classify and regress.
        ("POST", regress, b'{"examples": [{"x": 1.0}]}', 400,
         "regression signature \"serving_default\" must have exactly one input named 'inputs'"),
        ("POST", classify, b'{"examples": [{"x": [1, 1.5]}]}', 400,
         "Unexpected element type in feature: x"),
        ("POST", classify, b'{"examples": 3}', 400, "to be an list/array"),
        ("POST", classify, b'{"examples": []}', 400, "empty array"),
        ("POST", classify, b'{"signature_name": "classify_x_to_y", "examples": [7]}', 400,
         "must be JSON object"),
        ("POST", classify, b'{"context": {"x": 1}}', 400, "'examples' is expected"),
        # Models, versions, labels, paths and verbs.
        ("POST", "/v1/models/unknown:predict", b'{"instances": [1.0]}', 404, "unknown"),
        ("POST", HPT + "/versions/7:predict", b'{"instances": [1.0]}', 404,
         "Specific(half_plus_two, 7)"),
        ("POST", HPT + "/versions/99999999999999999999:predict", b'{"instances": [1.0]}', 400,
         "Failed to convert version"),
        ("POST", "/v1/models/versions/labels/beta:predict", b'{"instances": [1.0]}', 400,
         "beta"),
        ("POST", HPT + ":explain", b"{}", 400, "Malformed request"),
        ("PUT", HPT, b"{}", 400, "Malformed request"),
        ("DELETE", HPT, None, 400, "Malformed request"),
        ("GET", "/v1/models", None, 400, "Missing model name"),
        ("GET", "/v1/models/unknown", None, 404, "unknown"),
        ("GET", HPT + "/versions/7/metadata", None, 404, "7"),
        ("GET", "/no/such/path", None, 404, "/v1/models/"),
    ]
    self.assertGreaterEqual(len(cases), 40)
    for method, path, body, expected_status, fragment in cases:
      status, text = _curl_bytes(method, self.server.rest_url + path, body)
      what = f"{method} {path} {(body or b'')[:60]!r}: {text[:300]}"
      self.assertEqual(status, expected_status, what)
      self.assertIn(fragment, json.loads(text)["error"], what)
    self._assert_still_serving()

  # ------------------------------------------------------------------ gRPC

  def _predict(self, x=None, model="half_plus_two", **spec):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    for key, value in spec.items():
      if key == "version":
        request.model_spec.version.value = value
      else:
        setattr(request.model_spec, key, value)
    if x is not None:
      request.inputs["x"].CopyFrom(x if isinstance(x, tensor_pb2.TensorProto)
                                   else tf.make_tensor_proto(x))
    return request

  @staticmethod
  def _tensor(dtype, dims, **values):
    proto = tensor_pb2.TensorProto(dtype=dtype, **values)
    for size in dims:
      proto.tensor_shape.dim.add().size = size
    return proto

  def test_grpc_corpus(self):
    raw_predict = self.channel.unary_unary(
        "/tensorflow.serving.PredictionService/Predict")
    raw_classify = self.channel.unary_unary(
        "/tensorflow.serving.PredictionService/Classify")
    raw_status = self.channel.unary_unary("/tensorflow.serving.ModelService/GetModelStatus")
    float_ = types_pb2.DT_FLOAT
    unknown_rank = self._tensor(float_, [], float_val=[1.0])
    unknown_rank.tensor_shape.unknown_rank = True
    short_content = self._tensor(float_, [4], tensor_content=b"\0" * 12)
    extra_input = self._predict(np.array([1.0], np.float32))
    extra_input.inputs["z"].CopyFrom(tf.make_tensor_proto(np.array([1.0], np.float32)))
    unknown_output = self._predict(np.array([1.0], np.float32))
    unknown_output.output_filter.append("nope")
    twice_output = self._predict(np.array([1.0], np.float32))
    twice_output.output_filter.extend(["y", "y"])
    bad_example = self._predict(signature_name="classify_x_to_y")
    bad_example.inputs["inputs"].CopyFrom(
        tf.make_tensor_proto(np.array([b"\xde\xad\xbe\xef"], object)))
    classify_on_predict = classification_pb2.ClassificationRequest()
    classify_on_predict.model_spec.name = "half_plus_two"
    classify_on_predict.input.example_list.examples.add()
    classify_no_input = classification_pb2.ClassificationRequest()
    classify_no_input.model_spec.name = "half_plus_two"
    classify_no_input.model_spec.signature_name = "classify_x_to_y"
    counter_bytes = self._predict(model="counter")
    counter_bytes.inputs["n"].CopyFrom(
        self._tensor(types_pb2.DT_INT64, [], tensor_content=b"\0" * 7))
    rank_65 = self._tensor(float_, [1] * 65, float_val=[1.0])
    p = self.predictions
    cases = [
        # Bytes that are not the request message.
        (raw_predict, b"\xff\xff\xff", INVALID, "not a valid tensorflow.serving.PredictRequest"),
        (raw_classify, b"\x0a\xff", INVALID, "ClassificationRequest"),
        (raw_status, b"\x0a\x05ab", INVALID, "GetModelStatusRequest"),
        # Shapes that would take more memory than the limit, or are no shape at all.
        (p.Predict, self._predict(self._tensor(float_, [1 << 31], float_val=[1.0])), EXHAUSTED,
         "--max_request_tensor_bytes"),
        (p.Predict, self._predict(self._tensor(float_, [1 << 40])), EXHAUSTED, "[1099511627776]"),
        (p.Predict, self._predict(self._tensor(float_, [1 << 20, 1 << 20, 1 << 20])), EXHAUSTED,
         "input 'x'"),
        (p.Predict, self._predict(self._tensor(float_, [1 << 31, 1 << 31, 1 << 31])), INVALID,
         "overflow int64"),
        (p.Predict, self._predict(self._tensor(float_, [-1], float_val=[1.0])), INVALID,
         "negative dimension"),
        (p.Predict, self._predict(self._tensor(float_, [3, -2])), INVALID, "[3, -2]"),
        (p.Predict, self._predict(rank_65), INVALID, "rank 65"),
        (p.Predict, self._predict(unknown_rank), INVALID, "unknown rank"),
        (p.Predict, self._predict(short_content), INVALID, "needs exactly 16"),
        (p.Predict, counter_bytes, INVALID, "input 'n'"),
        # Types and names that do not match the signature.
        (p.Predict, self._predict(np.array([b"a"], object)), INVALID, "DT_STRING"),
        (p.Predict, self._predict(self._tensor(types_pb2.DT_INVALID, [1])), INVALID,
         "DT_INVALID"),
        (p.Predict, self._predict(self._tensor(999, [1])), INVALID, "999"),
        (p.Predict, self._predict(), INVALID, "missing input(s) ['x']"),
        (p.Predict, extra_input, INVALID, "unknown input(s) ['z']"),
        (p.Predict, unknown_output, INVALID, "output tensor alias not found in signature: nope"),
        (p.Predict, twice_output, INVALID, "duplicate output tensor alias: y"),
        (p.Predict, bad_example, INVALID, "Could not parse example input"),
        # Models, versions, labels, signatures.
        (p.Predict, self._predict(np.array([1.0], np.float32), model="nope"),
         grpc.StatusCode.NOT_FOUND, "nope"),
        (p.Predict, self._predict(np.array([1.0], np.float32), model=""), INVALID,
         "Missing model name"),
        (p.Predict, self._predict(np.array([1.0], np.float32), version=999),
         grpc.StatusCode.NOT_FOUND, "999"),
        (p.Predict, self._predict(np.array([1.0], np.float32), model="versions",
                                  version_label="beta"), INVALID, "beta"),
        (p.Predict, self._predict(np.array([1.0], np.float32), signature_name="nope"),
         grpc.StatusCode.FAILED_PRECONDITION, "nope"),
        (p.Classify, classify_on_predict, INVALID, "must have exactly one input named 'inputs'"),
        (p.Classify, classify_no_input, INVALID, "Input"),
        (p.MultiInference, inference_pb2.MultiInferenceRequest(), INVALID, "no tasks"),
        (p.GetModelMetadata, get_model_metadata_pb2.GetModelMetadataRequest(), INVALID,
         "model"),
        (self.models.GetModelStatus, get_model_status_pb2.GetModelStatusRequest(), INVALID,
         "Missing model name"),
        (self.models.HandleReloadConfigRequest, model_management_pb2.ReloadConfigRequest(),
         INVALID, "model_config_list"),
    ]
    self.assertGreaterEqual(len(cases), 25)
    for method, request, code, fragment in cases:
      with self.assertRaises(grpc.RpcError, msg=f"{fragment}: no error") as raised:
        method(request, timeout=60)
      details = raised.exception.details() or ""
      self.assertEqual(raised.exception.code(), code, f"{fragment}: {details}")
      self.assertIn(fragment, details)
    self._assert_still_serving()

  def test_amplifying_requests_allocate_nothing(self):
    pid = self.server.process.pid
    self._assert_still_serving()
    before = _vm_hwm_bytes(pid)
    float_, int64, string = types_pb2.DT_FLOAT, types_pb2.DT_INT64, types_pb2.DT_STRING

    def request(tensor, model="half_plus_two", alias="x", signature=""):
      built = self._predict(model=model, signature_name=signature)
      built.inputs[alias].CopyFrom(tensor)
      return built

    requests = [
        request(self._tensor(float_, [1 << 30], float_val=[1.0])),   # 42 bytes -> 4 GiB
        request(self._tensor(float_, [1 << 30])),                    # no values at all
        request(self._tensor(float_, [1 << 40], float_val=[1.0])),
        request(self._tensor(float_, [1 << 16, 1 << 16], float_val=[1.0, 2.0])),
        request(self._tensor(int64, [1 << 29], int64_val=[7]), model="counter", alias="n"),
        request(self._tensor(string, [1 << 29], string_val=[b"x" * 100]), alias="inputs",
                signature="classify_x_to_y"),
    ]
    errors = []

    def send(request):
      try:
        self.predictions.Predict(request, timeout=120)
        errors.append("accepted")
      except grpc.RpcError as e:
        errors.append(e.code())

    # All at once, as a hostile client would.
    threads = [threading.Thread(target=send, args=(r,)) for r in requests * 2]
    for thread in threads:
      thread.start()
    for thread in threads:
      thread.join()
    self.assertEqual(errors, [EXHAUSTED] * len(threads))
    grown = _vm_hwm_bytes(pid) - before
    self.assertLess(grown, 64 << 20, f"peak RSS grew by {grown} bytes")
    self._assert_still_serving()


if __name__ == "__main__":
  tf.test.main()
