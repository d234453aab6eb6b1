"""Behaviours TensorFlow Serving's clients, models and scripts rely on, end to end.

Real server processes driven by the tensorflow-serving-api stubs, grpc_health and curl:
  - Predict replies in the typed fields (float_val, ...) by default and in
    tensor_content with --enable_serialization_as_tensor_content;
  - a TF2 SavedModel (tf.saved_model.save, several signatures), a Keras model and a
    TF1 model serve Predict, Classify, Regress and MultiInference, the method-name check
    being on only with --enable_signature_method_name_check;
  - the ports open only once the models are AVAILABLE; a model that cannot load stops
    the start-up; a malformed config is reported in protobuf's words;
  - warm-up records (assets.extra/tf_serving_warmup_requests) are replayed before a
    version is AVAILABLE, --num_request_iterations_for_warmup times; a broken file fails
    the load, naming the file and record;
  - --prefer_tflite_model serves a model.tflite made with tf.lite.TFLiteConverter;
  - --enable_batching merges concurrent requests into one session run (seen in a model
    that counts its runs);
  - the profiler service (on by default) answers profiler_client.trace with a trace
    holding the model's ops;
  - --enable_grpc_healthcheck_service, --grpc_channel_arguments, UNIX sockets, and a
    config reload with --model_config_file_poll_wait_seconds=0.
"""

import concurrent.futures
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import grpc
from grpc_health.v1 import health_pb2
from grpc_health.v1 import health_pb2_grpc
import numpy as np
import tensorflow as tf

from tensorflow.python.profiler import profiler_client
from tensorflow.tsl.profiler.protobuf import xplane_pb2

from tensorflow_serving.apis import classification_pb2
from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import inference_pb2
from tensorflow_serving.apis import model_management_pb2
from tensorflow_serving.apis import model_service_pb2_grpc
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_log_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc
from tensorflow_serving.apis import regression_pb2
from tensorflow_serving.model_servers import model_server_test_util as util

State = util.State
CLASSIFY = "tensorflow/serving/classify"
REGRESS = "tensorflow/serving/regress"


def export_tf2_model(base_path: str, version: int = 1) -> str:
  """A tf.saved_model.save export of y = 0.5 x + 2 with three signatures.

  serving_default (x float [?, 1] -> y), classify_x_to_y (serialized Examples ->
  scores) and regress_x_to_y (serialized Examples -> outputs); tf.saved_model.save
  declares all three tensorflow/serving/predict, as every TF2 export does.
  """
  features = {"x": tf.io.FixedLenFeature([1], tf.float32)}

  class HalfPlusTwo(tf.Module):

    def __init__(self):
      super().__init__()
      self.a = tf.Variable(0.5)
      self.b = tf.Variable(2.0)

    def _y(self, x):
      return self.a * x + self.b

    @tf.function(input_signature=[tf.TensorSpec([None, 1], tf.float32)])
    def predict(self, x):
      return {"y": self._y(x)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def classify(self, inputs):
      return {"scores": self._y(tf.io.parse_example(inputs, features)["x"])}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def regress(self, inputs):
      return {"outputs": tf.squeeze(self._y(tf.io.parse_example(inputs, features)["x"]), 1)}

  module = HalfPlusTwo()
  export_dir = os.path.join(base_path, str(version))
  tf.saved_model.save(module, export_dir, signatures={
      "serving_default": module.predict, "classify_x_to_y": module.classify,
      "regress_x_to_y": module.regress})
  return export_dir


def export_keras_model(base_path: str, version: int = 1) -> str:
  """A Keras model y = x + 1 exported for serving with Model.export.

  Keras 3 models saved with tf.saved_model.save fail in TensorFlow Serving itself
  ("Could not find variable ...", tensorflow/serving#2226); Model.export is the
  documented way, and what is tested here.
  """
  model = tf.keras.Sequential([
      tf.keras.layers.Input(shape=(1,), name="x", dtype="float32"),
      tf.keras.layers.Dense(1, kernel_initializer="ones", bias_initializer="ones"),
  ])
  export_dir = os.path.join(base_path, str(version))
  model.export(export_dir, verbose=False)
  return export_dir


def export_call_counter(base_path: str, warmup_records, version: int = 1,
                        per_row: bool = False) -> str:
  """A TF1 model whose output `calls` counts the runs of its signature, this one included.

  `warmup_records` (PredictionLog protos, or raw bytes for a corrupt record) are written
  to assets.extra/tf_serving_warmup_requests. With `per_row`, `calls` has one entry per
  row of x (so that batched runs can be split back).
  """
  v1 = tf.compat.v1
  export_dir = os.path.join(base_path, str(version))
  graph = tf.Graph()
  with graph.as_default():
    x = v1.placeholder(tf.float32, [None], name="x")
    counter = v1.get_variable("calls", initializer=0.0, use_resource=True)
    with tf.control_dependencies([x]):
      calls = counter.assign_add(1.0)
    calls = tf.identity(tf.zeros_like(x) + calls if per_row else calls, name="calls")
    with v1.Session(graph=graph) as session:
      session.run(v1.global_variables_initializer())
      builder = v1.saved_model.Builder(export_dir)
      builder.add_meta_graph_and_variables(
          session, [tf.saved_model.SERVING],
          signature_def_map={"serving_default": v1.saved_model.predict_signature_def(
              inputs={"x": x}, outputs={"calls": calls})})
      builder.save()
  extra = os.path.join(export_dir, "assets.extra")
  os.makedirs(extra)
  with tf.io.TFRecordWriter(os.path.join(extra, "tf_serving_warmup_requests")) as writer:
    for record in warmup_records:
      writer.write(record if isinstance(record, bytes) else record.SerializeToString())
  return export_dir


def warmup_predict(model: str, alias: str = "x"):
  log = prediction_log_pb2.PredictionLog()
  log.predict_log.request.CopyFrom(_predict_request(model, alias, [1.0]))
  return log


def add_tflite_model(export_dir: str) -> None:
  """Writes EXPORT_DIR/model.tflite, y = 0.5 x + 3, converted with tf.lite.TFLiteConverter."""

  class HalfPlusThree(tf.Module):

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
    def predict(self, x):
      return {"y": 0.5 * x + 3.0}

  module = HalfPlusThree()
  converter = tf.lite.TFLiteConverter.from_concrete_functions(
      [module.predict.get_concrete_function()], module)
  with open(os.path.join(export_dir, "model.tflite"), "wb") as f:
    f.write(converter.convert())


def _example(x: float) -> tf.train.Example:
  return tf.train.Example(features=tf.train.Features(
      feature={"x": tf.train.Feature(float_list=tf.train.FloatList(value=[x]))}))


def _predict_request(model, alias, value, signature=""):
  request = predict_pb2.PredictRequest()
  request.model_spec.name = model
  request.model_spec.signature_name = signature
  request.inputs[alias].CopyFrom(tf.make_tensor_proto(np.array(value, np.float32)))
  return request


def _classify_request(model, signature, xs):
  request = classification_pb2.ClassificationRequest()
  request.model_spec.name = model
  request.model_spec.signature_name = signature
  request.input.example_list.examples.extend([_example(x) for x in xs])
  return request


def _wait_for_port(server: util.ServerProcess) -> grpc.Channel:
  """The channel, as soon as the server answers on its gRPC port."""
  channel = server.new_channel()
  deadline = time.monotonic() + util.START_TIMEOUT_SECONDS
  while True:
    if server.process.poll() is not None:
      raise server.fail(f"the model server exited with {server.process.returncode}")
    try:
      grpc.channel_ready_future(channel).result(timeout=0.5)
      return channel
    except grpc.FutureTimeoutError:
      if time.monotonic() > deadline:
        raise server.fail("the gRPC port did not open") from None


def _run_to_exit(*args):
  env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
  result = subprocess.run(
      [sys.executable, "-m", "tensorflow_serving.model_servers.main", *args],
      capture_output=True, env=env, timeout=300, check=False)
  return result.returncode, result.stdout.decode() + result.stderr.decode()


class CompatTestBase(util.ServerTestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.root = tempfile.mkdtemp(prefix="compat_", dir=tf.compat.v1.test.get_temp_dir())
    cls.half_plus_two = os.path.join(cls.root, "half_plus_two")
    cls.half_plus_two_version = util.export_half_plus_two(cls.half_plus_two, 123)
    cls.tf2 = os.path.join(cls.root, "tf2")
    export_tf2_model(cls.tf2, 1)
    cls.keras = os.path.join(cls.root, "keras")
    export_keras_model(cls.keras, 1)
    cls.counter = os.path.join(cls.root, "counter")
    export_call_counter(cls.counter, [warmup_predict("counter"), warmup_predict("counter")])


class DefaultFlagsTest(CompatTestBase):
  """One server with TensorFlow Serving's defaults plus the health service."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.config_path = util.write_config(os.path.join(cls.root, "models.config"), util.server_config(
        util.model_config("half_plus_two", cls.half_plus_two),
        util.model_config("tf2", cls.tf2),
        util.model_config("keras", cls.keras),
        util.model_config("counter", cls.counter)))
    cls.socket_dir = tempfile.mkdtemp(prefix="tfms_", dir="/tmp")
    cls.server = util.ServerProcess.start(cls.root, [
        f"--model_config_file={cls.config_path}", "--model_config_file_poll_wait_seconds=0",
        "--enable_grpc_healthcheck_service",
        f"--grpc_socket_path={os.path.join(cls.socket_dir, 'grpc.sock')}"])
    try:
      cls.channel = _wait_for_port(cls.server)
      # The first answer on the port: every model is already AVAILABLE.
      cls.first_states = {
          name: util.ServerProcess.version_states_on(cls.channel, name)
          for name in ("half_plus_two", "tf2", "keras")}
      _, cls.first_rest_status = util.curl("GET", cls.server.rest_url + "/v1/models/tf2")
    except BaseException:
      cls.server.stop()
      raise
    cls.predictions = prediction_service_pb2_grpc.PredictionServiceStub(cls.channel)

  @classmethod
  def tearDownClass(cls):
    cls.channel.close()
    shutil.rmtree(cls.socket_dir, ignore_errors=True)
    super().tearDownClass()

  def test_models_are_available_when_the_port_opens(self):
    self.assertEqual(self.first_states, {"half_plus_two": {123: State.AVAILABLE},
                                         "tf2": {1: State.AVAILABLE},
                                         "keras": {1: State.AVAILABLE}})
    self.assertIn('"state": "AVAILABLE"', self.first_rest_status)

  def test_predict_answers_in_float_val(self):
    response = self.predictions.Predict(
        _predict_request("half_plus_two", "x", [1.0, 2.0, 5.0]), timeout=30)
    y = response.outputs["y"]
    self.assertEqual(list(y.float_val), [2.5, 3.0, 4.5])
    self.assertEmpty(y.tensor_content)
    # What a client printing the reply (upstream's example clients) shows.
    self.assertIn("float_val: 2.5", str(response))

  def test_tf2_model_with_several_signatures(self):
    response = self.predictions.Predict(_predict_request("tf2", "x", [[4.0], [6.0]]), timeout=30)
    self.assertEqual(list(response.outputs["y"].float_val), [4.0, 5.0])
    self.assertEqual(response.model_spec.signature_name, "serving_default")

    response = self.predictions.Classify(_classify_request("tf2", "classify_x_to_y", [2.0, 4.0]),
                                         timeout=30)
    self.assertEqual([[c.score for c in cs.classes] for cs in response.result.classifications],
                     [[3.0], [4.0]])

    request = regression_pb2.RegressionRequest()
    request.model_spec.name = "tf2"
    request.model_spec.signature_name = "regress_x_to_y"
    request.input.example_list.examples.extend([_example(2.0), _example(8.0)])
    response = self.predictions.Regress(request, timeout=30)
    self.assertEqual([r.value for r in response.result.regressions], [3.0, 6.0])
    self.assertEqual(response.model_spec.version.value, 1)

    # Each tf.function signature has its own input placeholder, and MultiInference
    # (in TensorFlow Serving too) runs only signatures that share their input tensor.
    request = inference_pb2.MultiInferenceRequest()
    task = request.tasks.add(method_name=REGRESS)
    task.model_spec.name = "tf2"
    task.model_spec.signature_name = "regress_x_to_y"
    request.input.example_list.examples.add().CopyFrom(_example(2.0))
    response = self.predictions.MultiInference(request, timeout=30)
    self.assertEqual(response.results[0].regression_result.regressions[0].value, 3.0)
    task = request.tasks.add(method_name=CLASSIFY)
    task.model_spec.name = "tf2"
    task.model_spec.signature_name = "classify_x_to_y"
    with self.assertRaises(grpc.RpcError) as raised:
      self.predictions.MultiInference(request, timeout=30)
    self.assertEqual(raised.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
    self.assertIn("Input tensor must be the same for all Signatures", raised.exception.details())

  def test_warmup_records_were_replayed_once_each(self):
    response = self.predictions.Predict(_predict_request("counter", "x", [5.0]), timeout=30)
    self.assertEqual(list(response.outputs["calls"].float_val), [3.0])

  def test_tf1_model_classify(self):
    response = self.predictions.Classify(
        _classify_request("half_plus_two", "classify_x_to_y", [2.0]), timeout=30)
    self.assertEqual(response.result.classifications[0].classes[0].score, 3.0)

  def test_keras_model(self):
    response = self.predictions.Predict(_predict_request("keras", "x", [[1.0], [2.0]]),
                                        timeout=30)
    self.assertEqual(list(response.outputs["output_0"].float_val), [2.0, 3.0])
    status, body = util.curl("POST", self.server.rest_url + "/v1/models/keras:predict",
                             '{"instances": [[3.0]]}')
    self.assertEqual((status, body), (200, '{"predictions": [[4.0]]}'))

  def test_health_service(self):
    stub = health_pb2_grpc.HealthStub(self.channel)
    for service in ("", "ModelService", "PredictionService",
                    "tensorflow.serving.ModelService", "tensorflow.serving.PredictionService"):
      response = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
      self.assertEqual(response.status, health_pb2.HealthCheckResponse.SERVING, service)
    with self.assertRaises(grpc.RpcError) as raised:
      stub.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=10)
    self.assertEqual(raised.exception.code(), grpc.StatusCode.NOT_FOUND)

  def test_profiler_trace_records_the_models_ops(self):
    logdir = self.create_tempdir().full_path
    tracing_done = threading.Event()

    def keep_predicting():
      with self.server.new_channel() as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        while not tracing_done.is_set():
          stub.Predict(_predict_request("half_plus_two", "x", [1.0]), timeout=30)

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
      load = pool.submit(keep_predicting)
      try:
        profiler_client.trace(f"grpc://{self.server.grpc_address}", logdir, 2000)
      finally:
        tracing_done.set()
      load.result()
    traces = [os.path.join(root, name) for root, _, names in os.walk(logdir)
              for name in names if name.endswith(".xplane.pb")]
    self.assertLen(traces, 1, f"files under {logdir}: {list(os.walk(logdir))}")
    self.assertEqual(os.path.dirname(os.path.dirname(traces[0])),
                     os.path.join(logdir, "plugins", "profile"))
    with open(traces[0], "rb") as f:
      space = xplane_pb2.XSpace.FromString(f.read())
    names = {metadata.name for plane in space.planes
             for metadata in plane.event_metadata.values()}
    # half_plus_two's graph, y = a * x + b, as TensorFlow's executor traces its ops.
    self.assertContainsSubset({"SessionRun", "Mul:Mul", "y:AddV2"}, names)

  def test_unix_socket(self):
    with grpc.insecure_channel(f"unix:{self.socket_dir}/grpc.sock") as channel:
      stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
      response = stub.Predict(_predict_request("half_plus_two", "x", [4.0]), timeout=30)
    self.assertEqual(list(response.outputs["y"].float_val), [4.0])

  def test_zz_reload_with_zero_poll_period(self):
    # Runs last (alphabetically): it changes the served models. With a poll period of
    # 0 the file is read once; a HandleReloadConfigRequest still reconfigures.
    util.write_config(self.config_path, util.server_config(
        util.model_config("keras", self.keras)))
    stub = model_service_pb2_grpc.ModelServiceStub(self.channel)
    config = util.server_config(util.model_config("half_plus_two", self.half_plus_two),
                                util.model_config("tf2", self.tf2),
                                util.model_config("keras", self.keras),
                                util.model_config("tf2_copy", self.tf2))
    response = stub.HandleReloadConfigRequest(
        model_management_pb2.ReloadConfigRequest(config=config), timeout=120)
    self.assertEqual(response.status.error_code, 0)
    self.assertEqual(self.server.version_states_on(self.channel, "tf2_copy"),
                     {1: State.AVAILABLE})
    response = self.predictions.Predict(
        _predict_request("half_plus_two", "x", [2.0]), timeout=30)
    self.assertEqual(list(response.outputs["y"].float_val), [3.0])


class NonDefaultFlagsTest(CompatTestBase):
  """tensor_content replies, the method-name check, gRPC channel arguments."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    config_path = util.write_config(os.path.join(cls.root, "models.config"), util.server_config(
        util.model_config("half_plus_two", cls.half_plus_two),
        util.model_config("tf2", cls.tf2),
        util.model_config("counter", cls.counter)))
    cls.start_server(cls.root, [
        f"--model_config_file={config_path}", "--enable_serialization_as_tensor_content",
        "--num_request_iterations_for_warmup=3",
        "--enable_signature_method_name_check",
        "--grpc_channel_arguments=grpc.max_connection_age_ms=2000,grpc.lb_policy_name=grpclb"],
        ["tf2", "counter"], rest=False)
    cls.predictions = prediction_service_pb2_grpc.PredictionServiceStub(cls.server.channel())

  def test_predict_answers_in_tensor_content(self):
    response = self.predictions.Predict(
        _predict_request("half_plus_two", "x", [1.0, 2.0, 5.0]), timeout=30)
    y = response.outputs["y"]
    self.assertEmpty(y.float_val)
    self.assertEqual(y.tensor_content, np.array([2.5, 3.0, 4.5], np.float32).tobytes())

  def test_warmup_records_were_replayed_num_request_iterations_times(self):
    response = self.predictions.Predict(_predict_request("counter", "x", [5.0]), timeout=30)
    self.assertEqual(np.frombuffer(response.outputs["calls"].tensor_content, np.float32), [7.0])

  def test_method_name_check_rejects_tf2_signatures(self):
    with self.assertRaises(grpc.RpcError) as raised:
      self.predictions.Classify(_classify_request("tf2", "classify_x_to_y", [2.0]), timeout=30)
    self.assertEqual(raised.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
    self.assertIn("Expected classification signature method_name to be " + CLASSIFY,
                  raised.exception.details())
    # The TF1 export declares its method names and passes.
    response = self.predictions.Classify(
        _classify_request("half_plus_two", "classify_x_to_y", [2.0]), timeout=30)
    self.assertEqual(response.result.classifications[0].classes[0].score, 3.0)


class BatchingTest(CompatTestBase):
  """--enable_batching with per-model parameters: concurrent requests share a run."""

  ROWS = 4

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    batched = os.path.join(cls.root, "batched")
    version_dir = export_call_counter(batched, [], per_row=True)
    # Batches close when full: the timeout is longer than the test.
    with open(os.path.join(version_dir, "batching_params.pbtxt"), "w") as f:
      f.write(f"max_batch_size {{ value: {cls.ROWS} }} "
              "batch_timeout_micros { value: 600000000 } max_enqueued_batches { value: 4 }")
    global_parameters = os.path.join(cls.root, "batching.config")
    with open(global_parameters, "w") as f:
      f.write("num_batch_threads { value: 1 } max_batch_size { value: 1 }")
    config_path = util.write_config(os.path.join(cls.root, "models.config"), util.server_config(
        util.model_config("half_plus_two", cls.half_plus_two),
        util.model_config("batched", batched)))
    cls.start_server(cls.root, [
        f"--model_config_file={config_path}", "--enable_batching",
        f"--batching_parameters_file={global_parameters}",
        "--enable_per_model_batching_parameters", "--noenable_model_warmup"],
        ["batched"], rest=False)
    cls.predictions = prediction_service_pb2_grpc.PredictionServiceStub(cls.server.channel())

  def test_concurrent_requests_share_one_session_run(self):
    barrier = threading.Barrier(self.ROWS)

    def call(i):
      barrier.wait()
      return self.predictions.Predict(_predict_request("batched", "x", [float(i)]), timeout=120)

    with concurrent.futures.ThreadPoolExecutor(self.ROWS) as pool:
      responses = list(pool.map(call, range(self.ROWS)))
    # Every request saw the same run (the first) and got its own single row back.
    self.assertEqual([list(r.outputs["calls"].float_val) for r in responses],
                     [[1.0]] * self.ROWS)
    self.assertEqual([[d.size for d in r.outputs["calls"].tensor_shape.dim] for r in responses],
                     [[1]] * self.ROWS)

  def test_models_without_parameters_are_not_batched(self):
    # max_batch_size 1 in the global file would not matter: this model is not batched.
    response = self.predictions.Predict(
        _predict_request("half_plus_two", "x", [1.0, 2.0]), timeout=30)
    self.assertEqual(list(response.outputs["y"].float_val), [2.5, 3.0])


class TfLiteTest(CompatTestBase):
  """--prefer_tflite_model: a version's model.tflite is served instead of its SavedModel."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    both = os.path.join(cls.root, "both")
    add_tflite_model(util.copy_version(cls.half_plus_two_version, both, 1))
    config_path = util.write_config(os.path.join(cls.root, "models.config"), util.server_config(
        util.model_config("both", both), util.model_config("saved_model", cls.half_plus_two)))
    cls.start_server(cls.root, [
        f"--model_config_file={config_path}", "--prefer_tflite_model", "--num_tflite_pools=2"],
        ["both"], rest=False)
    cls.predictions = prediction_service_pb2_grpc.PredictionServiceStub(cls.server.channel())

  def test_predict_runs_the_tflite_model(self):
    response = self.predictions.Predict(_predict_request("both", "x", [1.0, 2.0, 5.0]),
                                        timeout=30)
    self.assertEqual(list(response.outputs["y"].float_val), [3.5, 4.0, 5.5])  # 0.5 x + 3
    self.assertEqual(response.model_spec.signature_name, "serving_default")
    # A version without model.tflite falls back to its SavedModel (0.5 x + 2).
    response = self.predictions.Predict(_predict_request("saved_model", "x", [1.0]), timeout=30)
    self.assertEqual(list(response.outputs["y"].float_val), [2.5])

  def test_metadata_and_status(self):
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = "both"
    response = self.predictions.GetModelMetadata(request, timeout=30)
    signatures = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signatures)
    signature = signatures.signature_def["serving_default"]
    self.assertEqual(list(signature.inputs), ["x"])
    self.assertEqual(list(signature.outputs), ["y"])
    self.assertEqual(signature.method_name, "tensorflow/serving/predict")
    self.assertEqual(self.server.version_states("both"), {1: State.AVAILABLE})

  def test_interpreter_inputs_are_resized_to_the_request(self):
    request = _predict_request("both", "x", [1.0])
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.ones([2, 2], np.float32)))
    response = self.predictions.Predict(request, timeout=30)
    self.assertAllEqual(tf.make_ndarray(response.outputs["y"]), np.full([2, 2], 3.5))
    # The next request, of another shape, resizes again.
    response = self.predictions.Predict(_predict_request("both", "x", [2.0]), timeout=30)
    self.assertEqual(list(response.outputs["y"].float_val), [4.0])


class StartUpFailureTest(tf.test.TestCase):

  def test_model_that_cannot_load_stops_the_start_up(self):
    root = self.create_tempdir().full_path
    util.write_broken_version(os.path.join(root, "broken"), 7)
    port = util.pick_unused_ports(1)[0]
    code, output = _run_to_exit(f"--port={port}", "--model_name=broken",
                                f"--model_base_path={root}/broken", "--max_num_load_retries=0")
    self.assertEqual(code, 255, output)
    self.assertIn("Failed to start server. Error: 1 model(s) did not become available", output)
    self.assertIn("{name: broken version: 7} due to error", output)
    self.assertIn("saved_model.pb", output)

  def test_broken_warmup_file_fails_the_load_naming_file_and_record(self):
    root = self.create_tempdir().full_path
    export_call_counter(os.path.join(root, "bad_request"),
                        [warmup_predict("bad_request"), warmup_predict("bad_request", "nope")])
    export_call_counter(os.path.join(root, "corrupt"), [b"not a PredictionLog"])
    # A TFRecord whose framing is broken: the length's checksum does not match.
    path = os.path.join(root, "corrupt", "1", "assets.extra", "tf_serving_warmup_requests")
    with open(path, "r+b") as f:
      f.write(b"\xff")
    for name, fragment in [("bad_request", "record 2 failed: Request inputs do not match"),
                           ("corrupt", "cannot read record 1")]:
      code, output = _run_to_exit(f"--port={util.pick_unused_ports(1)[0]}",
                                  f"--model_name={name}", f"--model_base_path={root}/{name}",
                                  "--max_num_load_retries=0")
      self.assertEqual(code, 255, output)
      self.assertIn(f"warm-up file {root}/{name}/1/assets.extra/tf_serving_warmup_requests: "
                    f"{fragment}", output)

  def test_malformed_config_is_reported_in_protobufs_words(self):
    root = self.create_tempdir().full_path
    path = os.path.join(root, "bad.config")
    with open(path, "w") as f:
      f.write("model_config_list { config { name: 'm' bogus: 1 } }")
    code, output = _run_to_exit(f"--port={util.pick_unused_ports(1)[0]}",
                                f"--model_config_file={path}")
    self.assertEqual(code, 255, output)
    self.assertIn("Error parsing text-format tensorflow.serving.ModelServerConfig: 1:", output)
    self.assertIn('has no field named "bogus"', output)


# The base only exports the models; it has no tests of its own to run.
del CompatTestBase

if __name__ == "__main__":
  tf.test.main()
