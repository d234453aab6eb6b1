"""Checks a split deployment against the original model on loopback model servers.

One embedded model server per entry of --servers, on free loopback ports, serves
the shards (or the cut's sub-graph model) from the output directory and a master
written for those ports (the real master's addresses are the production hosts). Every sample batch goes to the
master over gRPC Predict and to the original model in this process; every output
must match within the tolerance, else verification fails.
"""

import contextlib
import dataclasses
import os
import tempfile
from typing import Callable, Dict, List, Mapping, Optional, Sequence

import grpc
import numpy as np
import orjson
import tensorflow as tf

from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc
from tensorflow_serving.experimental.example import model_server_process
from tensorflow_serving.experimental.tools import deployment
from tensorflow_serving.experimental.tools import master_model
from tensorflow_serving.experimental.tools import original_model
from tensorflow_serving.experimental.tools import serving_graph

DEFAULT_TOLERANCE = 1e-6
_PREDICT_TIMEOUT_S = 60.0


class VerificationError(RuntimeError):
  """The split deployment answered differently from the original model."""


@dataclasses.dataclass
class Batch:
  description: str
  signature_name: str
  inputs: Dict[str, np.ndarray]


@dataclasses.dataclass
class Comparison:
  batch: Batch
  output: str
  ok: bool
  detail: str

  def __str__(self) -> str:
    return (f"{'OK  ' if self.ok else 'FAIL'} {self.batch.signature_name} / "
            f"{self.batch.description} / {self.output}: {self.detail}")


def derived_batches(graph: serving_graph.ServingGraph, id_limit: int, num_shards: int,
                    seed: int = 0) -> List[Batch]:
  """Sample inputs from the signatures: integer inputs are ids in [0, id_limit)."""
  rng = np.random.default_rng(seed)
  batches = []
  for key in sorted(graph.signatures):
    signature = graph.signatures[key]
    cases = {
        "random ids, batch 8": (8, lambda n: rng.integers(0, id_limit, n)),
        # Few distinct ids: duplicates, and every shard hit when ids < 2 * N.
        "duplicated ids in every shard, batch 32":
            (32, lambda n: rng.integers(0, min(id_limit, 2 * num_shards), n)),
        "the last row's id, batch 2": (2, lambda n: np.full(n, id_limit - 1)),
    }
    batched = all(i.tensor_shape.unknown_rank or (i.tensor_shape.dim and
                                                  i.tensor_shape.dim[0].size == -1)
                  for i in signature.inputs.values())
    if batched:
      cases["empty batch"] = (0, lambda n: rng.integers(0, id_limit, n))
    for description, (batch_size, ids) in cases.items():
      inputs = {}
      for name, info in signature.inputs.items():
        dtype = tf.as_dtype(info.dtype)
        if info.tensor_shape.unknown_rank:
          shape = [batch_size]
        else:
          shape = [batch_size if d.size == -1 and i == 0 else (1 if d.size == -1 else d.size)
                   for i, d in enumerate(info.tensor_shape.dim)]
        count = int(np.prod(shape, dtype=np.int64))
        if dtype.is_integer:
          inputs[name] = ids(count).astype(dtype.as_numpy_dtype).reshape(shape)
        elif dtype.is_floating:
          inputs[name] = rng.standard_normal(count).astype(dtype.as_numpy_dtype).reshape(shape)
        elif dtype == tf.bool:
          inputs[name] = (rng.integers(0, 2, count) == 1).reshape(shape)
        else:
          raise serving_graph.ShardingError(
              f"cannot derive sample inputs for input '{name}' ({dtype.name}) of signature "
              f"'{key}'; give them with --sample_inputs=FILE")
      batches.append(Batch(description, key, inputs))
  return batches


def read_batches(path: str, graph: serving_graph.ServingGraph) -> List[Batch]:
  """Reads --sample_inputs: a JSON list of {"signature_name"?, "inputs": {name: list}}."""
  with open(path, "rb") as f:
    try:
      entries = orjson.loads(f.read())
    except orjson.JSONDecodeError as e:
      raise serving_graph.ShardingError(f"--sample_inputs={path} is not valid JSON: {e}") from e
  if isinstance(entries, dict):
    entries = [entries]
  batches = []
  for i, entry in enumerate(entries):
    key = entry.get("signature_name", tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY)
    if key not in graph.signatures or not isinstance(entry.get("inputs"), dict):
      raise serving_graph.ShardingError(
          f"--sample_inputs={path}: entry {i} needs \"inputs\" (an object of input name -> "
          f"values) for a signature of the model ({sorted(graph.signatures)}); got "
          f"signature '{key}'")
    signature = graph.signatures[key]
    inputs = {}
    for name, values in entry["inputs"].items():
      if name not in signature.inputs:
        raise serving_graph.ShardingError(
            f"--sample_inputs={path}: entry {i} has input '{name}', which signature '{key}' "
            f"does not take (it takes {sorted(signature.inputs)})")
      dtype = tf.as_dtype(signature.inputs[name].dtype)
      inputs[name] = np.asarray(values, dtype=dtype.as_numpy_dtype)
    batches.append(Batch(f"--sample_inputs entry {i}", key, inputs))
  return batches


def compare(batch: Batch, expected: Mapping[str, np.ndarray], actual: Mapping[str, np.ndarray],
            tolerance: float) -> List[Comparison]:
  results = []
  for name, want in sorted(expected.items()):
    want = np.asarray(want)
    got = actual.get(name)
    if got is None:
      results.append(Comparison(batch, name, False, "missing from the master's response"))
    elif got.shape != want.shape or got.dtype != want.dtype:
      results.append(Comparison(batch, name, False,
                                f"got {got.dtype}{list(got.shape)}, "
                                f"expected {want.dtype}{list(want.shape)}"))
    elif want.dtype.kind in "fc":
      diff = float(np.max(np.abs(got - want))) if want.size else 0.0
      ok = bool(np.allclose(got, want, rtol=tolerance, atol=tolerance))
      results.append(Comparison(batch, name, ok,
                                f"shape {list(want.shape)}, max |diff| {diff:.3g}"))
    else:
      ok = bool(np.array_equal(got, want))
      results.append(Comparison(batch, name, ok, f"shape {list(want.shape)}, "
                                f"{'equal' if ok else 'different values'}"))
  return results


def predict(stub, model_name: str, batch: Batch) -> Dict[str, np.ndarray]:
  request = predict_pb2.PredictRequest()
  request.model_spec.name = model_name
  request.model_spec.signature_name = batch.signature_name
  for name, value in batch.inputs.items():
    request.inputs[name].CopyFrom(tf.make_tensor_proto(value, shape=value.shape))
  response = stub.Predict(request, timeout=_PREDICT_TIMEOUT_S)
  return {k: tf.make_ndarray(v) for k, v in response.outputs.items()}


# Writes the master that calls server i at addresses[i] to a base path, at the plan's version.
WriteMaster = Callable[[Sequence[str], str], None]


def table_master_writer(plan: deployment.Plan, graph: serving_graph.ServingGraph,
                        values: Mapping[str, np.ndarray]) -> WriteMaster:
  def write(addresses: Sequence[str], base_path: str) -> None:
    master_model.write(graph, plan.sharded_tables(addresses), values, base_path, plan.version)
  return write


@contextlib.contextmanager
def serve_on_loopback(plan, write_master: WriteMaster, work_dir: str, timeout_s: float = 300.0):
  """Serves the plan's other models and a loopback master; yields the servers (0 first).

  `plan` is a deployment.Plan or a cut.CutPlan: anything with `servers`,
  `model_name` (the master) and `models_on(server)`.
  """
  servers = [
      model_server_process.ModelServer(
          model_config_file=os.path.join(work_dir, f"server_{i}.config"), log_dir=work_dir,
          label=f"verify_server_{i}") for i in range(len(plan.servers))
  ]
  addresses = [s.grpc_address for s in servers]
  master_base = os.path.join(work_dir, plan.model_name)
  write_master(addresses, master_base)
  models = []
  for i, server in enumerate(servers):
    on_server = plan.models_on(i)
    if i == 0:
      on_server[plan.model_name] = master_base
    model_server_process.write_model_config(os.path.join(work_dir, f"server_{i}.config"),
                                            on_server)
    models.append(sorted(on_server))
  with contextlib.ExitStack() as stack:
    for server in servers:
      stack.enter_context(server)
    for server, names in zip(servers, models):
      server.wait_until_available(names, timeout_s)
    yield servers


def verify(plan, write_master: WriteMaster, original: original_model.OriginalModel,
           batches: Sequence[Batch], tolerance: float = DEFAULT_TOLERANCE,
           work_dir: Optional[str] = None) -> List[Comparison]:
  """Runs every batch through the loopback deployment; raises VerificationError on a mismatch."""
  results: List[Comparison] = []
  with tempfile.TemporaryDirectory(prefix="shard_saved_model_verify.", dir=work_dir) as tmp:
    with serve_on_loopback(plan, write_master, tmp) as servers, \
         grpc.insecure_channel(servers[0].grpc_address) as channel:
      stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
      for batch in batches:
        expected = original.run(batch.signature_name, batch.inputs)
        try:
          actual = predict(stub, plan.model_name, batch)
        except grpc.RpcError as e:
          results.append(Comparison(batch, "*", False,
                                    f"Predict failed: {e.code().name}: {e.details()}"))
          continue
        results.extend(compare(batch, expected, actual, tolerance))
  failed = [r for r in results if not r.ok]
  if failed:
    raise VerificationError(
        f"{len(failed)} of {len(results)} outputs of the split deployment differ from the "
        "original model:\n" + "\n".join(str(r) for r in results))
  return results
