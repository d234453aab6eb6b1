"""Tests run() and run_returning_status() against a real gRPC PredictionService.

The server is the in-process test fixture on a free loopback port; it records
each PredictRequest, so the tests check what went over the wire as well as what
came back, in eager mode, in tf.function, in a tf.compat.v1 graph and after a
SavedModel export and load.
"""

import os

import grpc
import numpy as np
import tensorflow as tf

from tensorflow_serving.experimental.tensorflow.ops.remote_predict.python.ops import remote_predict_ops
from tensorflow_serving.experimental.tensorflow.ops.remote_predict.python.ops.testing import prediction_service_fixture as fixture

_FLOATS = np.array([[1.5, -2.0, 3.25], [0.0, 7.0, -0.5]], dtype=np.float32)
_STRINGS = np.array([b"a", b"bc"], dtype=object)
_INT = np.int64(-42)


class RemotePredictOpsTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.server = self.enter_context(fixture.PredictionServiceFixture())

  def _run_echo(self, **kwargs):
    """Sends three inputs and asks for two of them back."""
    return remote_predict_ops.run(
        ["x", "s", "k"],
        [tf.constant(_FLOATS), tf.constant(_STRINGS), tf.constant(_INT)],
        ["x", "s"],
        target_address=self.server.address,
        output_types=[tf.float32, tf.string],
        **kwargs)

  def _assert_echoed(self, outputs):
    x, s = [np.asarray(o) for o in outputs]
    self.assertAllEqual(x, _FLOATS)
    self.assertAllEqual(s, _STRINGS)

  def test_request_fields(self):
    self._assert_echoed(
        self._run_echo(model_name="m", model_version=7, signature_name="sig"))

    (call,) = self.server.calls()
    request = call.request
    self.assertEqual(request.model_spec.name, "m")
    self.assertTrue(request.model_spec.HasField("version"))
    self.assertEqual(request.model_spec.version.value, 7)
    self.assertEqual(request.model_spec.signature_name, "sig")
    self.assertEqual(list(request.output_filter), ["x", "s"])
    self.assertCountEqual(request.inputs.keys(), ["x", "s", "k"])

    x = request.inputs["x"]
    self.assertEqual(x.dtype, tf.float32.as_datatype_enum)
    self.assertEqual([d.size for d in x.tensor_shape.dim], [2, 3])
    self.assertEqual(x.tensor_content, _FLOATS.tobytes())
    self.assertEmpty(x.float_val)

    k = request.inputs["k"]
    self.assertEqual(k.dtype, tf.int64.as_datatype_enum)
    self.assertEmpty(k.tensor_shape.dim)
    self.assertEqual(k.tensor_content, _INT.tobytes())
    self.assertEmpty(k.int64_val)

    s = request.inputs["s"]
    self.assertEqual(s.dtype, tf.string.as_datatype_enum)
    self.assertEqual([d.size for d in s.tensor_shape.dim], [2])
    self.assertEqual(list(s.string_val), [b"a", b"bc"])
    self.assertEmpty(s.tensor_content)

  def test_default_version_and_signature(self):
    self._assert_echoed(self._run_echo(model_name="m"))
    request = self.server.calls()[0].request
    self.assertFalse(request.model_spec.HasField("version"))
    self.assertEqual(request.model_spec.signature_name, "serving_default")

  def test_tf_function(self):

    @tf.function
    def predict(x):
      return remote_predict_ops.run(["x"], [x], ["x"],
                                    target_address=self.server.address,
                                    model_name="m",
                                    output_types=[tf.float32])

    for scale in (1, 2):
      (y,) = predict(tf.constant(_FLOATS * scale))
      self.assertAllEqual(y, _FLOATS * scale)
    self.assertLen(self.server.calls(), 2)

  def test_tf_function_runs_calls_whose_outputs_are_unused(self):

    @tf.function
    def notify(x):
      remote_predict_ops.run_returning_status(
          ["x"], [x], ["x"], target_address=self.server.address,
          model_name="m", output_types=[tf.int32])
      return x + 1

    self.assertEqual(int(notify(tf.constant(1))), 2)
    (call,) = self.server.calls()
    self.assertEqual(call.request.model_spec.name, "m")

  def test_compat_v1_graph(self):
    with tf.Graph().as_default() as graph:
      x = tf.compat.v1.placeholder(tf.float32, shape=[None, 3])
      (y,) = remote_predict_ops.run(["x"], [x], ["x"],
                                    target_address=self.server.address,
                                    model_name="m", model_version=3,
                                    output_types=[tf.float32],
                                    name="remote")
      self.assertEqual(y.op.name, "remote")
      self.assertEqual(y.op.type, "TfServingRemotePredict")
      with tf.compat.v1.Session(graph=graph) as session:
        self.assertAllEqual(session.run(y, {x: _FLOATS}), _FLOATS)
    request = self.server.calls()[0].request
    self.assertEqual(request.model_spec.version.value, 3)

  def test_saved_model_round_trip(self):
    module = tf.Module()
    module.predict = tf.function(
        lambda x: remote_predict_ops.run(["x"], [x], ["x"],
                                         target_address=self.server.address,
                                         model_name="m",
                                         signature_name="sig",
                                         output_types=[tf.float32])[0],
        input_signature=[tf.TensorSpec([None, 3], tf.float32)])
    export_dir = os.path.join(self.create_tempdir().full_path, "model")
    tf.saved_model.save(module, export_dir)
    self.server.clear_calls()  # Saving may trace, but must not call.

    loaded = tf.saved_model.load(export_dir)
    self.assertAllEqual(loaded.predict(tf.constant(_FLOATS)), _FLOATS)
    (call,) = self.server.calls()
    self.assertEqual(call.request.model_spec.name, "m")
    self.assertEqual(call.request.model_spec.signature_name, "sig")

  def test_rpc_error_raises_with_grpc_code(self):
    self.server.set_behaviour(
        fixture.Fail(grpc.StatusCode.NOT_FOUND, "no version 9 is loaded"))
    with self.assertRaisesRegex(tf.errors.NotFoundError,
                                "no version 9 is loaded") as raised:
      self._run_echo(model_name="ranker", model_version=9)
    # The error says which call failed.
    self.assertIn(self.server.address, raised.exception.message)
    self.assertIn("ranker", raised.exception.message)

  def test_rpc_error_in_tf_function_raises(self):
    self.server.set_behaviour(
        fixture.Fail(grpc.StatusCode.RESOURCE_EXHAUSTED, "queue full"))

    @tf.function
    def predict():
      return self._run_echo(model_name="m")

    with self.assertRaisesRegex(tf.errors.ResourceExhaustedError,
                                "queue full"):
      predict()

  def test_run_returning_status_on_error(self):
    self.server.set_behaviour(
        fixture.Fail(grpc.StatusCode.UNAVAILABLE, "draining"))
    code, message, outputs = remote_predict_ops.run_returning_status(
        ["x"], [tf.constant(_FLOATS)], ["x", "y"],
        target_address=self.server.address, model_name="m",
        output_types=[tf.float32, tf.string])
    self.assertEqual(int(code), grpc.StatusCode.UNAVAILABLE.value[0])
    self.assertIn("draining", message.numpy().decode())
    # Like the raising mode's error, the message names the model and target.
    self.assertIn("model 'm'", message.numpy().decode())
    self.assertIn(self.server.address, message.numpy().decode())
    self.assertLen(outputs, 2)
    self.assertEqual(outputs[0].dtype, tf.float32)
    self.assertEqual(outputs[1].dtype, tf.string)
    for output in outputs:
      self.assertEqual(tf.size(output), 0)

  def test_run_returning_status_on_success(self):
    code, message, outputs = remote_predict_ops.run_returning_status(
        ["x"], [tf.constant(_FLOATS)], ["x"],
        target_address=self.server.address, model_name="m",
        output_types=[tf.float32])
    self.assertEqual(int(code), 0)
    self.assertEqual(message.numpy(), b"")
    self.assertAllEqual(outputs[0], _FLOATS)

  def test_missing_output_alias_fails_naming_it(self):
    self.server.set_behaviour(
        fixture.Reply({"y": tf.make_tensor_proto(_FLOATS)}))
    with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                "no output 'z'"):
      remote_predict_ops.run(["x"], [tf.constant(_FLOATS)], ["y", "z"],
                             target_address=self.server.address,
                             model_name="m",
                             output_types=[tf.float32, tf.float32])

  def test_response_dtype_mismatch_fails_naming_alias(self):
    with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                "'x'") as raised:
      remote_predict_ops.run(["x"], [tf.constant(_FLOATS)], ["x"],
                             target_address=self.server.address,
                             model_name="m", output_types=[tf.int32])
    self.assertRegex(raised.exception.message, "int32")
    self.assertRegex(raised.exception.message, "float")

  def test_invalid_target_address_names_it(self):
    for target in ("", "127.0.0.1:1 127.0.0.1:2"):
      with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                  f"target_address '{target}'"):
        remote_predict_ops.run(["x"], [tf.constant(1)], ["x"],
                               target_address=target, model_name="m",
                               output_types=[tf.int32])

  def test_missing_model_name(self):
    for model_name in (None, ""):
      with self.assertRaisesRegex(ValueError, "model_name"):
        remote_predict_ops.run(["x"], [tf.constant(1)], ["x"],
                               target_address=self.server.address,
                               model_name=model_name,
                               output_types=[tf.int32])
    self.assertEmpty(self.server.calls())

  def test_missing_output_types(self):
    with self.assertRaisesRegex(ValueError, "output_types"):
      remote_predict_ops.run_returning_status(
          ["x"], [tf.constant(1)], ["x"], target_address=self.server.address,
          model_name="m")

  def test_alias_count_mismatch(self):
    with self.assertRaisesRegex(ValueError, "2 input aliases"):
      remote_predict_ops.run(["x", "y"], [tf.constant(1)], ["x"],
                             target_address=self.server.address,
                             model_name="m", output_types=[tf.int32])
    with self.assertRaisesRegex(ValueError, "1 output aliases"):
      remote_predict_ops.run(["x"], [tf.constant(1)], ["x"],
                             target_address=self.server.address,
                             model_name="m",
                             output_types=[tf.int32, tf.int32])

  def test_package_exports(self):
    from tensorflow_serving.experimental.tensorflow.ops import remote_predict  # pylint: disable=g-import-not-at-top
    self.assertIs(remote_predict.run, remote_predict_ops.run)
    self.assertIs(remote_predict.run_returning_status,
                  remote_predict_ops.run_returning_status)
    self.assertTrue(callable(remote_predict_ops.tf_serving_remote_predict))
    self.assertTrue(callable(
        remote_predict_ops.gen_remote_predict_op.tf_serving_remote_predict))


if __name__ == "__main__":
  tf.test.main()
