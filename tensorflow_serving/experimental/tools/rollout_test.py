"""Rolls a split deployment from version 1 to 2 under a live stream of calls.

Versions 1 and 2 of a TF1 model differ in every table row and in the bias, so an
answer computed with rows of one version and anything of the other matches neither
original. Every call must succeed and equal version 1's or version 2's answer.
"""

import os
import tempfile
import threading
from typing import List

from absl import logging
from absl.testing import absltest
import grpc
import numpy as np
import tensorflow as tf

from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import model_service_pb2_grpc
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc
from tensorflow_serving.experimental.example import model_server_process
from tensorflow_serving.experimental.tools import original_model
from tensorflow_serving.experimental.tools import rollout
from tensorflow_serving.experimental.tools import shard_saved_model
from tensorflow_serving.experimental.tools import test_models

_MODEL = "recsys"
_IDS = np.array([0, 1, 2, 3, 4, 5, 6, 7, test_models.USERS - 1, 3, 3], np.int64)
_CALLERS = 2


class _Traffic:
  """Callers that send the same request in a loop and classify every answer."""

  def __init__(self, address: str, answers: List[np.ndarray]):
    self._answers = answers  # the answer of version 1, version 2, ...
    self._stop = threading.Event()
    self._lock = threading.Condition()
    self.counts = [0] * len(answers)
    self.failures: List[str] = []
    self.mixed = 0
    self.last = None
    self._channel = grpc.insecure_channel(address)
    self._threads = [threading.Thread(target=self._call) for _ in range(_CALLERS)]

  def _call(self):
    stub = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = _MODEL
    request.inputs["ids"].CopyFrom(tf.make_tensor_proto(_IDS))
    while not self._stop.is_set():
      try:
        response = stub.Predict(request, timeout=30)
        got = tf.make_ndarray(response.outputs["sum"])
      except grpc.RpcError as e:
        with self._lock:
          self.failures.append(f"{e.code().name}: {e.details()}")
          self._lock.notify_all()
        continue
      matches = [i for i, want in enumerate(self._answers) if np.allclose(got, want, atol=1e-6)]
      with self._lock:
        if matches:
          self.counts[matches[0]] += 1
          self.last = matches[0]
        else:
          self.mixed += 1
        self._lock.notify_all()

  def start(self):
    for thread in self._threads:
      thread.start()

  def wait_for(self, version_index: int, answers: int, timeout_s: float = 120.0) -> bool:
    """Blocks until `answers` more answers of that version have arrived."""
    with self._lock:
      target = self.counts[version_index] + answers
      return self._lock.wait_for(lambda: self.counts[version_index] >= target or self.failures,
                                 timeout_s)

  def stop(self):
    self._stop.set()
    for thread in self._threads:
      thread.join()
    self._channel.close()


class RolloutTest(absltest.TestCase):

  def test_stages_load_shards_then_master_then_retire_master_then_shards(self):
    def manifest(version):
      return {"version": version,
              "master": {"model_name": "m", "server": 0, "base_path": "/d/m"},
              "tables": [{"shards": [{"model_name": "m_t_shard_0_of_2", "server": 0,
                                      "base_path": "/d/s0"},
                                     {"model_name": "m_t_shard_1_of_2", "server": 1,
                                      "base_path": "/d/s1"}]}]}

    stages = rollout.stages(manifest(2), manifest(1))
    flat = [(what, {s: {n: sorted(v) for n, (_, v) in m.items()} for s, m in layout.items()})
            for what, layout in stages]
    self.assertEqual(flat, [
        ("load shards 2 beside version 1",
         {0: {"m": [1], "m_t_shard_0_of_2": [1, 2]}, 1: {"m_t_shard_1_of_2": [1, 2]}}),
        ("load master 2", {0: {"m": [1, 2], "m_t_shard_0_of_2": [1, 2]},
                           1: {"m_t_shard_1_of_2": [1, 2]}}),
        ("retire master 1", {0: {"m": [2], "m_t_shard_0_of_2": [1, 2]},
                             1: {"m_t_shard_1_of_2": [1, 2]}}),
        ("retire shards 1", {0: {"m": [2], "m_t_shard_0_of_2": [2]},
                             1: {"m_t_shard_1_of_2": [2]}}),
    ])

  def test_rollout_under_traffic_has_no_failed_or_mixed_answers(self):
    logging.set_verbosity(logging.WARNING)
    tf.get_logger().setLevel("ERROR")
    root = tempfile.mkdtemp(dir=absltest.TEST_TMPDIR.value)
    originals = [test_models.tf1_graph(os.path.join(root, f"v{v}", "1"), seed=v)
                 for v in (1, 2)]
    answers = []
    for path in originals:
      with original_model.OriginalModel(path, [tf.saved_model.SERVING]) as original:
        answers.append(original.run("serving_default", {"ids": _IDS})["sum"])
    self.assertFalse(np.allclose(answers[0], answers[1]))
    output_dir = os.path.join(root, "deploy")
    ports = model_server_process.pick_unused_ports(4)
    addresses = [f"127.0.0.1:{p}" for p in ports[:2]]

    def split(path, version):
      shard_saved_model.split(shard_saved_model.Options(
          input_dir=path, model_name=_MODEL, output_dir=output_dir, num_shards=3,
          servers=addresses, tables=["table"], version=version, verify=False),
                              report=lambda line: None)

    split(originals[0], 1)
    servers = [
        model_server_process.ModelServer(
            model_config_file=os.path.join(output_dir, f"server_{i}.config"), port=ports[i],
            rest_api_port=ports[2 + i], log_dir=root, label=f"rollout_server_{i}")
        for i in range(2)
    ]
    for server in servers:
      self.enterContext(server)
    servers[1].wait_until_available([f"{_MODEL}_table_shard_1_of_3"])
    servers[0].wait_until_available([_MODEL, f"{_MODEL}_table_shard_0_of_3"])

    split(originals[1], 2)
    traffic = _Traffic(addresses[0], answers)
    traffic.start()
    try:
      self.assertTrue(traffic.wait_for(0, 5), "no answers from version 1 before the rollout")
      report = []
      shard_saved_model.roll_out(output_dir, report=report.append)
      self.assertTrue(traffic.wait_for(1, 5), "no answers from version 2 after the rollout")
    finally:
      traffic.stop()
    self.assertEqual(traffic.failures, [])
    self.assertEqual(traffic.mixed, 0)
    self.assertGreater(traffic.counts[0], 0)
    self.assertGreater(traffic.counts[1], 0)
    self.assertEqual(traffic.last, 1)
    self.assertEqual(report[-1], "rollout complete")
    logging.warning("rollout under traffic: %d answers from version 1, %d from version 2",
                    *traffic.counts)
    # Version 1 is gone everywhere.
    with grpc.insecure_channel(addresses[1]) as channel:
      stub = model_service_pb2_grpc.ModelServiceStub(channel)
      request = get_model_status_pb2.GetModelStatusRequest()
      request.model_spec.name = f"{_MODEL}_table_shard_1_of_3"
      states = {s.version: s.state for s in stub.GetModelStatus(request).model_version_status}
    state = get_model_status_pb2.ModelVersionStatus.State
    self.assertEqual(states.get(2), state.AVAILABLE)
    self.assertNotEqual(states.get(1), state.AVAILABLE)


if __name__ == "__main__":
  absltest.main()
