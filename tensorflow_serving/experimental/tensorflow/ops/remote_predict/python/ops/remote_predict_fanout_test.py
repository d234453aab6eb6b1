"""Proves that independent remote calls in one graph run at the same time.

The fixture server holds every request at a barrier until eight are in flight
together. Eight ops in one graph can only get past it if none waits for
another: not for an executor thread (a compat.v1 session with two inter-op
threads), and not for a control dependency (tf.function's automatic control
dependencies would chain them unless remote_predict_ops marks them
independent). If they were serialised, the barrier times out and the first
call fails with a message saying how many calls arrived together.
"""

import os
from unittest import mock

import tensorflow as tf

from tensorflow_serving.experimental.tensorflow.ops.remote_predict.python.ops import remote_predict_ops
from tensorflow_serving.experimental.tensorflow.ops.remote_predict.python.ops.testing import prediction_service_fixture as fixture

_FAN_OUT = 8
# How long the server waits for all calls to be in flight; the ops' own
# deadline is longer, so a serialised run fails with the fixture's message.
_BARRIER_TIMEOUT_SECONDS = 30
_DEADLINE_MILLIS = 120 * 1000


def _fan_out(target_address: str, x: tf.Tensor,
             indices=range(_FAN_OUT)) -> list[tf.Tensor]:
  """Independent remote calls, call i echoing x + i from model_i."""
  return [
      remote_predict_ops.run(["x"], [x + i], ["x"],
                             target_address=target_address,
                             model_name=f"model_{i}",
                             max_rpc_deadline_millis=_DEADLINE_MILLIS,
                             output_types=[tf.int32])[0]
      for i in indices
  ]


class RemotePredictFanOutTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.hold = fixture.HoldUntilInFlight(_FAN_OUT, _BARRIER_TIMEOUT_SECONDS)
    self.server = self.enter_context(
        fixture.PredictionServiceFixture(self.hold,
                                         max_workers=2 * _FAN_OUT))

  def _assert_all_calls_met(self, results):
    self.assertAllEqual([int(r) for r in results],
                        [100 + i for i in range(_FAN_OUT)])
    self.assertEqual(self.hold.max_waiting, _FAN_OUT)
    self.assertCountEqual(
        [c.request.model_spec.name for c in self.server.calls()],
        [f"model_{i}" for i in range(_FAN_OUT)])

  def test_compat_v1_graph_with_two_inter_op_threads(self):
    with tf.Graph().as_default() as graph:
      x = tf.compat.v1.placeholder(tf.int32, shape=[])
      outputs = _fan_out(self.server.address, x)
      config = tf.compat.v1.ConfigProto(inter_op_parallelism_threads=2,
                                        use_per_session_threads=True)
      with tf.compat.v1.Session(graph=graph, config=config) as session:
        results = session.run(outputs, {x: 100})
    self._assert_all_calls_met(results)

  def test_tf_function(self):
    fan_out = tf.function(lambda x: _fan_out(self.server.address, x))
    self._assert_all_calls_met(fan_out(tf.constant(100)))

  def test_tf_function_with_half_the_calls_in_a_cond(self):
    half = _FAN_OUT // 2

    @tf.function
    def fan_out(x):
      direct = _fan_out(self.server.address, x, range(half))
      in_branch = tf.cond(
          x > 0,
          lambda: _fan_out(self.server.address, x, range(half, _FAN_OUT)),
          lambda: [-x] * (_FAN_OUT - half))
      return direct + in_branch

    self._assert_all_calls_met(fan_out(tf.constant(100)))

  def test_tf_function_marks_calls_independent_and_keeps_them(self):
    fan_out = tf.function(lambda x: _fan_out(self.server.address, x))
    concrete = fan_out.get_concrete_function(tf.TensorSpec([], tf.int32))
    calls = [op for op in concrete.graph.get_operations()
             if op.type == "TfServingRemotePredict"]
    self.assertLen(calls, _FAN_OUT)
    for op in calls:
      # No call waits for another...
      self.assertEmpty(op.control_inputs, op.name)
      # ...and each still runs whether or not its outputs are used.
      self.assertIn(op.name, concrete.function_def.control_ret)

  def test_loaded_saved_model(self):
    module = tf.Module()
    module.fan_out = tf.function(
        lambda x: _fan_out(self.server.address, x),
        input_signature=[tf.TensorSpec([], tf.int32)])
    export_dir = os.path.join(self.create_tempdir().full_path, "model")
    tf.saved_model.save(module, export_dir)

    loaded = tf.saved_model.load(export_dir)
    self._assert_all_calls_met(loaded.fan_out(tf.constant(100)))

  def test_import_check_fails_loudly_without_the_mechanism(self):
    acd = remote_predict_ops.auto_control_deps.AutomaticControlDependencies
    with mock.patch.object(acd, "run_independently", None):
      with self.assertRaisesRegex(ImportError, "run_independently"):
        remote_predict_ops._check_independent_side_effects_supported()  # pylint: disable=protected-access
    # An ACD that no longer publishes itself on the graph.
    with mock.patch.object(acd, "__enter__", lambda self: self), \
         mock.patch.object(acd, "__exit__", lambda self, *exc_info: None):
      with self.assertRaisesRegex(ImportError, "experimental_acd_manager"):
        remote_predict_ops._check_independent_side_effects_supported()  # pylint: disable=protected-access


if __name__ == "__main__":
  # Fewer executor threads than calls in tf.function too: the calls can only
  # all be in flight if none of them holds a thread while it waits.
  tf.config.threading.set_inter_op_parallelism_threads(2)
  tf.test.main()
