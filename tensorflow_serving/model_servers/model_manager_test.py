"""Tests version management with real SavedModels: policies, failures, labels, unloads.

The manager runs in-process with polling off; each test rescans explicitly
(`manager.scan()`) and waits for loads with bounded waits, so no timing is assumed.
"""

import os
import shutil
import threading
import time

import grpc
import numpy as np
import tensorflow as tf

from tensorflow_serving.apis import model_pb2
from tensorflow_serving.model_servers import model_manager
from tensorflow_serving.model_servers import model_server_test_util as util
from tensorflow_serving.model_servers import predict_impl
from tensorflow_serving.model_servers import request_deadline
from tensorflow_serving.model_servers import servable
from tensorflow_serving.model_servers import serving_errors

State = model_manager.State
_WAIT_SECONDS = 60.0


def _spec(name="m", version=None, label=None):
  spec = model_pb2.ModelSpec(name=name)
  if version is not None:
    spec.version.value = version
  if label is not None:
    spec.version_label = label
  return spec


class ModelManagerTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    template_base = os.path.join(tf.compat.v1.test.get_temp_dir(), "template")
    cls.template = util.export_half_plus_two(template_base, 1)

  def setUp(self):
    super().setUp()
    self.base = self.create_tempdir().full_path
    self.managers = []

  def tearDown(self):
    for manager in self.managers:
      manager.stop()
    super().tearDown()

  def _manager(self, policy="", labels=None, **kwargs):
    manager = model_manager.ModelManager(
        lambda name, version, path: servable.load(name, version, path, ["serve"]),
        file_system_poll_wait_seconds=0, **kwargs)
    self.managers.append(manager)
    manager.start(util.server_config(util.model_config("m", self.base, policy, labels)))
    self.assertTrue(manager.wait_until_settled(_WAIT_SECONDS))
    return manager

  def _add_version(self, version):
    util.copy_version(self.template, self.base, version)

  def _states(self, manager, name="m"):
    return {s.version: s.state for s in manager.version_statuses(_spec(name))}

  def _rescan(self, manager):
    manager.scan()
    self.assertTrue(manager.wait_until_settled(_WAIT_SECONDS))

  def _wait_states(self, manager, expected):
    deadline = time.monotonic() + _WAIT_SECONDS
    while self._states(manager) != expected:
      self.assertLess(time.monotonic(), deadline, f"states stuck at {self._states(manager)}")
      time.sleep(0.05)  # Bounded poll of an unload running on another thread.

  def _predict(self, manager, spec):
    with manager.servable(spec) as model:
      _, outputs = predict_impl.predict(model, "", {"x": np.array([1.0, 4.0], np.float32)}, [],
                                        request_deadline.Deadline.never())
      return model.version, outputs["y"]

  def _code(self, manager, spec):
    with self.assertRaises(serving_errors.ServingError) as raised:
      with manager.servable(spec):
        pass
    return raised.exception

  def test_latest_policy_replaces_old_version(self):
    self._add_version(1)
    manager = self._manager()
    self.assertEqual(self._states(manager), {1: State.AVAILABLE})
    version, y = self._predict(manager, _spec())
    self.assertEqual(version, 1)
    self.assertAllClose(y, [2.5, 4.0])

    self._add_version(2)
    self._rescan(manager)
    self._wait_states(manager, {2: State.AVAILABLE, 1: State.END})
    self.assertEqual(self._predict(manager, _spec())[0], 2)
    self.assertEqual(self._code(manager, _spec(version=1)).code, grpc.StatusCode.NOT_FOUND)

  def test_broken_version_is_reported_and_old_one_keeps_serving(self):
    self._add_version(1)
    manager = self._manager()
    util.write_broken_version(self.base, 2)
    self._rescan(manager)
    statuses = {s.version: s for s in manager.version_statuses(_spec())}
    self.assertEqual(statuses[1].state, State.AVAILABLE)
    self.assertEqual(statuses[2].state, State.END)
    self.assertNotEqual(statuses[2].status.error_code, 0)
    self.assertIn(os.path.join(self.base, "2"), statuses[2].status.error_message)
    self.assertEqual(self._predict(manager, _spec())[0], 1)
    error = self._code(manager, _spec(version=2))
    self.assertEqual(error.code, grpc.StatusCode.NOT_FOUND)
    self.assertIn("failed to load", error.message)

  def test_all_policy_follows_the_directory(self):
    self._add_version(1)
    self._add_version(2)
    manager = self._manager("all {}")
    self.assertEqual(self._states(manager), {1: State.AVAILABLE, 2: State.AVAILABLE})
    self.assertEqual(self._predict(manager, _spec(version=1))[0], 1)

    shutil.rmtree(os.path.join(self.base, "1"))
    self._rescan(manager)
    self._wait_states(manager, {1: State.END, 2: State.AVAILABLE})
    self._add_version(1)
    self._rescan(manager)
    self._wait_states(manager, {1: State.AVAILABLE, 2: State.AVAILABLE})

  def test_specific_policy(self):
    for version in (1, 2, 3):
      self._add_version(version)
    manager = self._manager("specific { versions: 2 }")
    self.assertEqual(self._states(manager), {2: State.AVAILABLE})

  def test_only_the_broken_version(self):
    util.write_broken_version(self.base, 5)
    manager = self._manager()
    (status,) = manager.version_statuses(_spec())
    self.assertEqual((status.version, status.state), (5, State.END))
    error = self._code(manager, _spec())
    self.assertEqual(error.code, grpc.StatusCode.NOT_FOUND)
    self.assertIn("version 5", error.message)

  def test_labels(self):
    self._add_version(1)
    self._add_version(2)
    manager = self._manager("all {}", labels={"stable": 1})
    self.assertEqual(self._predict(manager, _spec(label="stable"))[0], 1)
    error = self._code(manager, _spec(label="canary"))
    self.assertEqual(error.code, grpc.StatusCode.INVALID_ARGUMENT)
    self.assertIn("canary", error.message)

    config = util.server_config(util.model_config("m", self.base, "all {}",
                                                  {"stable": 1, "canary": 2}))
    manager.reload_config(config, _WAIT_SECONDS)
    self.assertEqual(self._predict(manager, _spec(label="canary"))[0], 2)

    bad = util.server_config(util.model_config("m", self.base, "all {}", {"stable": 7}))
    with self.assertRaises(serving_errors.ServingError) as raised:
      manager.reload_config(bad, _WAIT_SECONDS)
    self.assertEqual(raised.exception.code, grpc.StatusCode.FAILED_PRECONDITION)
    self.assertIn("version 7", raised.exception.message)
    self.assertEqual(self._predict(manager, _spec(label="stable"))[0], 1)  # Unchanged.

  def test_new_label_for_unavailable_version_when_allowed(self):
    self._add_version(1)
    manager = self._manager(allow_version_labels_for_unavailable_models=True)
    config = util.server_config(util.model_config("m", self.base, "", {"next": 9}))
    manager.reload_config(config, _WAIT_SECONDS)
    self.assertEqual(self._code(manager, _spec(label="next")).code, grpc.StatusCode.NOT_FOUND)

  def test_unload_waits_for_in_flight_requests(self):
    self._add_version(1)
    manager = self._manager()
    with manager.servable(_spec()) as model:
      manager.apply_config(util.server_config())  # The model is removed.
      self._wait_states(manager, {1: State.UNLOADING})
      self.assertEqual(self._code(manager, _spec()).code, grpc.StatusCode.NOT_FOUND)
      # The version still runs for the request that holds it.
      _, outputs = predict_impl.predict(model, "", {"x": np.array([2.0], np.float32)}, [],
                                        request_deadline.Deadline.never())
      self.assertAllClose(outputs["y"], [3.0])
    self._wait_states(manager, {1: State.END})

  def test_reload_adds_models_and_reports_failures(self):
    self._add_version(1)
    manager = self._manager()
    other = self.create_tempdir().full_path
    util.write_broken_version(other, 3)
    config = util.server_config(util.model_config("m", self.base),
                                util.model_config("other", other))
    with self.assertRaises(serving_errors.ServingError) as raised:
      manager.reload_config(config, _WAIT_SECONDS)
    self.assertIn("model other version 3 failed to load", raised.exception.message)
    self.assertEqual(self._predict(manager, _spec())[0], 1)

  def test_unknown_model_and_missing_base_path(self):
    self._add_version(1)
    manager = self._manager()
    error = self._code(manager, _spec("nope"))
    self.assertEqual(error.code, grpc.StatusCode.NOT_FOUND)
    self.assertIn("served models: m", error.message)
    self.assertEqual(self._code(manager, _spec("")).code, grpc.StatusCode.INVALID_ARGUMENT)

    missing = os.path.join(self.base, "absent")
    manager.reload_config(util.server_config(util.model_config("gone", missing)), _WAIT_SECONDS)
    with self.assertRaises(serving_errors.ServingError) as raised:
      manager.version_statuses(_spec("gone"))
    self.assertEqual(raised.exception.code, grpc.StatusCode.NOT_FOUND)
    self.assertIn("cannot list model base path", raised.exception.message)

  def test_tf2_saved_model_signatures(self):

    class Scaler(tf.Module):

      def __init__(self):
        super().__init__()
        self.factor = tf.Variable(3.0)

      @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
      def scale(self, x):
        return {"y": x * self.factor}

      @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="s")])
      def length(self, s):
        return {"n": tf.strings.length(s)}

    module = Scaler()
    tf.saved_model.save(module, os.path.join(self.base, "4"),
                        signatures={"serving_default": module.scale, "length": module.length})
    manager = self._manager()
    with manager.servable(_spec()) as model:
      self.assertEqual(model.version, 4)
      _, outputs = predict_impl.predict(model, "", {"x": np.array([1.0, 2.0], np.float32)}, [],
                                        request_deadline.Deadline.never())
      self.assertAllClose(outputs["y"], [3.0, 6.0])
      _, outputs = predict_impl.predict(model, "length", {"s": np.array([b"ab", b"abc"], object)},
                                        [], request_deadline.Deadline.never())
      self.assertAllEqual(outputs["n"], [2, 3])

  def test_concurrent_requests_during_replacement(self):
    self._add_version(1)
    manager = self._manager()
    errors = []
    stop = threading.Event()

    def hammer():
      while not stop.is_set():
        try:
          self._predict(manager, _spec())
        except Exception as e:  # pylint: disable=broad-except
          errors.append(e)

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for t in threads:
      t.start()
    try:
      self._add_version(2)
      self._rescan(manager)
      self._wait_states(manager, {2: State.AVAILABLE, 1: State.END})
    finally:
      stop.set()
      for t in threads:
        t.join()
    self.assertEqual(errors, [])


  def test_corrupt_saved_model_is_data_loss(self):
    util.write_broken_version(self.base, 5)
    manager = self._manager()
    (status,) = manager.version_statuses(_spec())
    self.assertEqual(status.state, State.END)
    self.assertEqual(status.status.error_code, grpc.StatusCode.DATA_LOSS.value[0])
    self.assertIn("Cannot parse file", status.status.error_message)

  def test_missing_tag_set_is_not_found(self):
    self._add_version(1)
    manager = model_manager.ModelManager(
        lambda name, version, path: servable.load(name, version, path, ["gpu"]),
        file_system_poll_wait_seconds=0)
    self.managers.append(manager)
    manager.start(util.server_config(util.model_config("m", self.base)))
    self.assertTrue(manager.wait_until_settled(_WAIT_SECONDS))
    (status,) = manager.version_statuses(_spec())
    self.assertEqual(status.status.error_code, grpc.StatusCode.NOT_FOUND.value[0])

  def test_removed_base_path_shows_in_status(self):
    self._add_version(1)
    manager = self._manager()
    shutil.rmtree(self.base)
    self._rescan(manager)
    self._wait_states(manager, {1: State.END})
    (status,) = manager.version_statuses(_spec())
    self.assertEqual(status.status.error_code, grpc.StatusCode.NOT_FOUND.value[0])
    self.assertIn(self.base, status.status.error_message)


if __name__ == "__main__":
  tf.test.main()
