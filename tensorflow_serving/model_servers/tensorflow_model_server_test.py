"""The model server's APIs, end to end: one server process, gRPC stubs and curl.

The server serves three models from a config file:
  half_plus_two  upstream's test model, version 123;
  versions       half_plus_two as versions 1 and 2 (policy all, labels stable=1, canary=2);
  counter        counts to its input n: a request as slow as the test wants.
"""

import json
import os
import re
import shutil
import tempfile
import time

import grpc
import numpy as np
import tensorflow as tf

from tensorflow_serving.apis import classification_pb2
from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import inference_pb2
from tensorflow_serving.apis import model_service_pb2_grpc
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc
from tensorflow_serving.apis import regression_pb2
from tensorflow_serving.model_servers import model_server_test_util as util

REST_TIMEOUT_MS = 4000
MAX_REST_BYTES = 2 << 20


def _example(**features):
  feature = {}
  for name, value in features.items():
    feature[name] = tf.train.Feature(float_list=tf.train.FloatList(value=[value]))
  return tf.train.Example(features=tf.train.Features(feature=feature))


class TensorflowModelServerTest(util.ServerTestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    root = tf.compat.v1.test.get_temp_dir()
    half_plus_two = os.path.join(root, "half_plus_two")
    template = util.export_half_plus_two(half_plus_two, 123)
    versions = os.path.join(root, "versions")
    util.copy_version(template, versions, 1)
    util.copy_version(template, versions, 2)
    counter = os.path.join(root, "counter")
    util.export_counting_model(counter, 1)
    config_path = util.write_config(os.path.join(root, "models.config"), util.server_config(
        util.model_config("half_plus_two", half_plus_two),
        util.model_config("versions", versions, "all {}", {"stable": 1, "canary": 2}),
        util.model_config("counter", counter)))
    # UNIX socket paths are short (107 bytes); the test's temp dir may be deeper.
    cls.socket_dir = tempfile.mkdtemp(prefix="tfms_", dir="/tmp")
    cls.socket_path = os.path.join(cls.socket_dir, "grpc.sock")
    monitoring_path = os.path.join(root, "monitoring.config")
    with open(monitoring_path, "w") as f:
      f.write("prometheus_config { enable: true path: '/monitoring/prometheus/metrics' }")
    cls.server = util.ServerProcess.start(root, [
        f"--model_config_file={config_path}",
        f"--monitoring_config_file={monitoring_path}",
        f"--rest_api_timeout_in_ms={REST_TIMEOUT_MS}",
        f"--rest_api_max_request_bytes={MAX_REST_BYTES}",
        f"--grpc_socket_path={cls.socket_path}",
        "--rest_api_enable_cors_support",
    ])
    try:
      cls.server.wait_until_available("half_plus_two")
      cls.server.wait_until_available("versions", [1, 2])
      cls.server.wait_until_available("counter")
    except BaseException:
      cls.server.stop()
      shutil.rmtree(cls.socket_dir, ignore_errors=True)
      raise
    cls.channel = grpc.insecure_channel(cls.server.grpc_address, options=[
        ("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)])
    cls.predictions = prediction_service_pb2_grpc.PredictionServiceStub(cls.channel)
    cls.models = model_service_pb2_grpc.ModelServiceStub(cls.channel)

  @classmethod
  def tearDownClass(cls):
    cls.channel.close()
    shutil.rmtree(cls.socket_dir, ignore_errors=True)
    super().tearDownClass()

  def _predict_request(self, x, model="half_plus_two", **spec):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    for key, value in spec.items():
      if key == "version":
        request.model_spec.version.value = value
      else:
        setattr(request.model_spec, key, value)
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array(x, np.float32)))
    return request

  def _rpc_error(self, method, request, code, *fragments):
    with self.assertRaises(grpc.RpcError) as raised:
      method(request, timeout=30)
    self.assertEqual(raised.exception.code(), code, raised.exception.details())
    for fragment in fragments:
      self.assertIn(fragment, raised.exception.details())
    return raised.exception

  def _rest(self, method, path, body=None):
    return util.curl(method, self.server.rest_url + path, body)

  # ------------------------------------------------------------------ gRPC

  def test_grpc_predict(self):
    response = self.predictions.Predict(self._predict_request([1.0, 2.0, 5.0]), timeout=30)
    self.assertAllClose(tf.make_ndarray(response.outputs["y"]), [2.5, 3.0, 4.5])
    self.assertEqual(list(response.outputs["y"].float_val), [2.5, 3.0, 4.5])
    self.assertEqual(response.model_spec.name, "half_plus_two")
    self.assertEqual(response.model_spec.version.value, 123)
    self.assertEqual(response.model_spec.signature_name, "serving_default")

  def test_grpc_predict_output_filter(self):
    request = self._predict_request([[1.0]])
    request.output_filter.append("y")
    response = self.predictions.Predict(request, timeout=30)
    self.assertEqual(list(response.outputs), ["y"])
    request.output_filter[0] = "z"
    self._rpc_error(self.predictions.Predict, request, grpc.StatusCode.INVALID_ARGUMENT,
                    "output tensor alias not found in signature: z")

  def test_grpc_predict_errors(self):
    missing_input = predict_pb2.PredictRequest()
    missing_input.model_spec.name = "half_plus_two"
    self._rpc_error(self.predictions.Predict, missing_input, grpc.StatusCode.INVALID_ARGUMENT,
                    "missing input(s) ['x']")
    wrong_type = self._predict_request([1.0])
    wrong_type.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array([b"a"], object)))
    self._rpc_error(self.predictions.Predict, wrong_type, grpc.StatusCode.INVALID_ARGUMENT,
                    "input 'x'", "DT_STRING")
    self._rpc_error(self.predictions.Predict, self._predict_request([1.0], model="nope"),
                    grpc.StatusCode.NOT_FOUND, "nope")
    self._rpc_error(self.predictions.Predict, self._predict_request([1.0], version=999),
                    grpc.StatusCode.NOT_FOUND, "999")
    self._rpc_error(self.predictions.Predict,
                    self._predict_request([1.0], signature_name="no_such_signature"),
                    grpc.StatusCode.FAILED_PRECONDITION, "no_such_signature")
    self._rpc_error(self.predictions.Predict,
                    self._predict_request([1.0], model="versions", version_label="beta"),
                    grpc.StatusCode.INVALID_ARGUMENT, "beta")

  def test_grpc_versions_and_labels(self):
    for spec, served in [({}, 2), ({"version": 1}, 1), ({"version_label": "stable"}, 1),
                         ({"version_label": "canary"}, 2)]:
      response = self.predictions.Predict(self._predict_request([2.0], "versions", **spec),
                                          timeout=30)
      self.assertEqual(response.model_spec.version.value, served, spec)
      self.assertAllClose(tf.make_ndarray(response.outputs["y"]), [3.0])

  def test_grpc_classify_and_regress(self):
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = "half_plus_two"
    request.model_spec.signature_name = "classify_x_to_y"
    request.input.example_list.examples.extend([_example(x=2.0), _example(x=4.0)])
    response = self.predictions.Classify(request, timeout=30)
    scores = [[c.score for c in cs.classes] for cs in response.result.classifications]
    self.assertEqual(scores, [[3.0], [4.0]])
    self.assertEqual(response.model_spec.version.value, 123)

    request = regression_pb2.RegressionRequest()
    request.model_spec.name = "half_plus_two"
    request.model_spec.signature_name = "regress_x_to_y2"
    context = request.input.example_list_with_context
    context.context.CopyFrom(_example(x=100.0))
    context.examples.extend([_example(x=2.0), _example()])
    response = self.predictions.Regress(request, timeout=30)
    # An example's own x wins over the context's; the second takes x from the context.
    self.assertEqual([r.value for r in response.result.regressions], [4.0, 53.0])
    self.assertEqual(response.model_spec.signature_name, "regress_x_to_y2")

  def test_grpc_classify_needs_a_classify_signature(self):
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = "half_plus_two"
    request.input.example_list.examples.append(_example(x=1.0))
    # serving_default takes x, not serialized Examples (its method name is not checked
    # without --enable_signature_method_name_check).
    self._rpc_error(self.predictions.Classify, request, grpc.StatusCode.INVALID_ARGUMENT,
                    "exactly one input named 'inputs'")
    request.model_spec.signature_name = "classify_x2_to_y3"
    self._rpc_error(self.predictions.Classify, request, grpc.StatusCode.INVALID_ARGUMENT,
                    "DT_FLOAT")

  def test_grpc_multi_inference(self):
    request = inference_pb2.MultiInferenceRequest()
    for signature, method in [("classify_x_to_y", "tensorflow/serving/classify"),
                              ("regress_x_to_y2", "tensorflow/serving/regress")]:
      task = request.tasks.add()
      task.model_spec.name = "half_plus_two"
      task.model_spec.signature_name = signature
      task.method_name = method
    request.input.example_list.examples.append(_example(x=2.0))
    response = self.predictions.MultiInference(request, timeout=30)
    classification, regression = response.results
    self.assertEqual(classification.classification_result.classifications[0].classes[0].score, 3.0)
    self.assertEqual(regression.regression_result.regressions[0].value, 4.0)
    self.assertEqual(regression.model_spec.signature_name, "regress_x_to_y2")
    self.assertEqual(regression.model_spec.version.value, 123)

    request.tasks[1].model_spec.signature_name = "classify_x_to_y"
    request.tasks[1].method_name = "tensorflow/serving/classify"
    self._rpc_error(self.predictions.MultiInference, request, grpc.StatusCode.INVALID_ARGUMENT,
                    "Duplicate evaluation of signature: classify_x_to_y")

  def test_grpc_metadata(self):
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = "half_plus_two"
    request.metadata_field.append("signature_def")
    response = self.predictions.GetModelMetadata(request, timeout=30)
    signatures = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signatures)
    self.assertCountEqual(signatures.signature_def, [
        "serving_default", "classify_x_to_y", "classify_x2_to_y3", "regress_x_to_y",
        "regress_x_to_y2", "regress_x2_to_y3"])
    self.assertEqual(response.model_spec.version.value, 123)
    request.metadata_field[0] = "graph"
    self._rpc_error(self.predictions.GetModelMetadata, request, grpc.StatusCode.INVALID_ARGUMENT,
                    "Metadata field graph is not supported")

  def test_grpc_model_status(self):
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "versions"
    response = self.models.GetModelStatus(request, timeout=30)
    self.assertEqual([(s.version, s.state, s.status.error_code) for s in response.model_version_status],
                     [(2, util.State.AVAILABLE, 0), (1, util.State.AVAILABLE, 0)])
    request.model_spec.version.value = 5
    self._rpc_error(self.models.GetModelStatus, request, grpc.StatusCode.NOT_FOUND,
                    "Could not find version 5 of model versions")
    request.model_spec.name = "nope"
    self._rpc_error(self.models.GetModelStatus, request, grpc.StatusCode.NOT_FOUND, "nope")

  def test_grpc_deadline_bounds_the_model_run(self):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "counter"
    request.inputs["n"].CopyFrom(tf.make_tensor_proto(np.int64(10**15)))
    with self.assertRaises(grpc.RpcError) as raised:
      self.predictions.Predict(request, timeout=1.0)
    self.assertEqual(raised.exception.code(), grpc.StatusCode.DEADLINE_EXCEEDED)
    # The server stopped the run itself (the client gave up at the same moment) and
    # records it once the run has ended.
    pattern = re.compile(r':tensorflow:serving:request_count\{model_name="counter",API="predict",'
                         r'entrypoint="GRPC",status="DEADLINE_EXCEEDED"\} [1-9]')
    deadline = time.monotonic() + 60
    while not pattern.search(self._rest("GET", "/monitoring/prometheus/metrics")[1]):
      self.assertLess(time.monotonic(), deadline, "the server never recorded the timeout")
      time.sleep(0.1)  # Bounded poll for the server-side run to end.
    request.inputs["n"].CopyFrom(tf.make_tensor_proto(np.int64(4)))
    response = self.predictions.Predict(request, timeout=30)
    self.assertEqual(tf.make_ndarray(response.outputs["total"]), 6.0)

  def test_grpc_large_messages(self):
    x = np.arange(8 << 20, dtype=np.float32)  # 32 MiB, beyond gRPC's 4 MiB default.
    response = self.predictions.Predict(self._predict_request(x), timeout=120)
    y = tf.make_ndarray(response.outputs["y"])
    self.assertEqual(y.shape, x.shape)
    self.assertEqual(y[-1], x[-1] * 0.5 + 2)

  def test_grpc_on_unix_socket(self):
    with grpc.insecure_channel(f"unix:{self.socket_path}") as channel:
      stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
      response = stub.Predict(self._predict_request([4.0]), timeout=30)
    self.assertAllClose(tf.make_ndarray(response.outputs["y"]), [4.0])

  # ------------------------------------------------------------------ REST

  def test_rest_cors_headers(self):
    status, text = util.curl("POST", self.server.rest_url + "/v1/models/half_plus_two:predict",
                             '{"instances": [1.0]}', extra_args=["-i"])
    self.assertEqual(status, 200)
    headers, _, body = text.partition("\r\n\r\n")
    self.assertIn("Access-Control-Allow-Origin: *", headers)
    self.assertIn("Content-Type: application/json", headers)
    self.assertEqual(body, '{"predictions": [2.5]}')

  def test_rest_predict_row_format(self):
    status, body = self._rest("POST", "/v1/models/half_plus_two:predict",
                              '{"instances": [1.0, 2.0, 5.0]}')
    self.assertEqual((status, body), (200, '{"predictions": [2.5, 3.0, 4.5]}'))

  def test_rest_predict_columnar_format_and_versions(self):
    status, body = self._rest("POST", "/v1/models/versions/versions/1:predict",
                              '{"signature_name": "serving_default", "inputs": {"x": [[1.0], [3.0]]}}')
    self.assertEqual((status, json.loads(body)), (200, {"outputs": [[2.5], [3.5]]}))
    status, body = self._rest("POST", "/v1/models/versions/labels/canary:predict",
                              '{"instances": [{"x": 4.0}]}')
    self.assertEqual((status, json.loads(body)), (200, {"predictions": [4.0]}))

  def test_rest_classify_and_regress(self):
    status, body = self._rest("POST", "/v1/models/half_plus_two:classify", json.dumps(
        {"signature_name": "classify_x_to_y", "examples": [{"x": 2.0}, {"x": 4.0}]}))
    self.assertEqual((status, json.loads(body)), (200, {"results": [[["", 3.0]], [["", 4.0]]]}))
    status, body = self._rest("POST", "/v1/models/half_plus_two:regress", json.dumps(
        {"signature_name": "regress_x_to_y2", "context": {"x": 100.0},
         "examples": [{"x": 2.0}, {}]}))
    self.assertEqual((status, json.loads(body)), (200, {"results": [4.0, 53.0]}))

  def test_rest_status_and_metadata(self):
    status, body = self._rest("GET", "/v1/models/half_plus_two")
    self.assertEqual(status, 200)
    self.assertEqual(json.loads(body), {"model_version_status": [{
        "version": "123", "state": "AVAILABLE",
        "status": {"error_code": "OK", "error_message": ""}}]})
    status, body = self._rest("GET", "/v1/models/versions/labels/stable")
    self.assertEqual([s["version"] for s in json.loads(body)["model_version_status"]], ["1"])
    status, body = self._rest("GET", "/v1/models/half_plus_two/versions/123/metadata")
    self.assertEqual(status, 200)
    metadata = json.loads(body)
    self.assertEqual(metadata["model_spec"]["name"], "half_plus_two")
    self.assertEqual(metadata["model_spec"]["version"], "123")
    predict = metadata["metadata"]["signature_def"]["signature_def"]["serving_default"]
    self.assertEqual(predict["method_name"], "tensorflow/serving/predict")
    self.assertEqual(predict["inputs"]["x"]["name"], "x:0")
    self.assertEqual(predict["inputs"]["x"]["dtype"], "DT_FLOAT")

  def test_rest_error_corpus(self):
    big = '{"instances": [' + ", ".join(["1.0"] * (MAX_REST_BYTES // 4)) + "]}"
    cases = [
        ("POST", "/v1/models/half_plus_two:predict", "{", 400, "JSON Parse error"),
        ("POST", "/v1/models/half_plus_two:predict", "", 400, "The document is empty"),
        ("POST", "/v1/models/half_plus_two:predict", "[1]", 400, "Is not object"),
        ("POST", "/v1/models/half_plus_two:predict", '{"instances": ["a"]}', 400,
         "is not of expected type: float"),
        ("POST", "/v1/models/half_plus_two:predict", '{"instances": [[1], [1, 2]]}', 400,
         "Expecting shape"),
        ("POST", "/v1/models/half_plus_two:predict", '{"inputs": {"z": [1]}}', 400,
         "Missing named input: x"),
        ("POST", "/v1/models/half_plus_two:predict", '{"nothing": 1}', 400,
         "Missing 'inputs' or 'instances' key"),
        ("POST", "/v1/models/half_plus_two:predict",
         '{"signature_name": "nope", "instances": [1]}', 400, "nope"),
        ("POST", "/v1/models/unknown:predict", '{"instances": [1.0]}', 404, "unknown"),
        ("POST", "/v1/models/half_plus_two/versions/7:predict", '{"instances": [1.0]}', 404,
         "Specific(half_plus_two, 7)"),
        ("POST", "/v1/models/versions/labels/beta:predict", '{"instances": [1.0]}', 400, "beta"),
        ("POST", "/v1/models/half_plus_two:explain", "{}", 400, "Malformed request"),
        ("PUT", "/v1/models/half_plus_two", "{}", 400, "Malformed request"),
        ("GET", "/v1/models", None, 400, "Missing model name"),
        ("GET", "/v1/models/unknown", None, 404, "unknown"),
        ("GET", "/no/such/path", None, 404, "/v1/models/"),
        ("POST", "/v1/models/half_plus_two:regress", '{"examples": [{"x": 1.0}]}', 400,
         "exactly one input named 'inputs'"),
        ("POST", "/v1/models/half_plus_two:classify", '{"examples": [{"x": [1, 1.5]}]}', 400,
         "Unexpected element type in feature: x"),
        ("POST", "/v1/models/half_plus_two:predict", big, 413, "--rest_api_max_request_bytes"),
        ("POST", "/v1/models/counter:predict", '{"inputs": {"n": 1000000000000000}}', 504,
         "deadline"),
    ]
    for method, path, body, expected_status, fragment in cases:
      status, text = self._rest(method, path, body)
      self.assertEqual(status, expected_status, f"{method} {path} {(body or '')[:80]}: {text}")
      self.assertIn(fragment, json.loads(text)["error"], f"{method} {path}")
    # The server is still up and well.
    status, body = self._rest("POST", "/v1/models/half_plus_two:predict", '{"instances": [1.0]}')
    self.assertEqual((status, body), (200, '{"predictions": [2.5]}'))

  def test_prometheus_metrics(self):
    self._rest("POST", "/v1/models/half_plus_two:predict", '{"instances": [1.0]}')
    self.predictions.Predict(self._predict_request([1.0]), timeout=30)
    status, text = self._rest("GET", "/monitoring/prometheus/metrics")
    self.assertEqual(status, 200)
    self.assertIn("# TYPE :tensorflow:serving:request_count counter", text)
    self.assertRegex(text, r':tensorflow:serving:request_count\{model_name="half_plus_two",'
                     r'API="predict",entrypoint="REST",status="OK"\} [1-9]')
    self.assertRegex(text, r':tensorflow:serving:request_count\{model_name="half_plus_two",'
                     r'API="predict",entrypoint="GRPC",status="OK"\} [1-9]')
    self.assertRegex(text, r':tensorflow:serving:request_latency_count\{model_name="half_plus_two",'
                     r'API="predict",entrypoint="GRPC"\} [1-9]')
    self.assertRegex(text, r':tensorflow:cc:saved_model:load_attempt_count\{model_path="[^"]*'
                     r'half_plus_two[^"]*",status="success"\} 1')


if __name__ == "__main__":
  tf.test.main()
