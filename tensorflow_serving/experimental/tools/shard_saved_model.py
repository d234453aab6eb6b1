"""Splits a SavedModel into embedding-table shards and a master that calls them.

  tools/bazel run //tensorflow_serving/experimental/tools:shard_saved_model -- \
      --input_dir=/models/recsys/1 --model_name=recsys --output_dir=/deploy \
      --num_shards=4 --servers=host0:8500,host1:8500

Reads a TF1 or TF2 (Keras) SavedModel, picks the tables to shard (--tables, or every
variable of at least --min_table_bytes read only by lookups), writes the master
(same signatures as the original; each lookup calls the shards through
TfServingRemotePredict, pinned to --version), one shard model per table and shard,
server_<i>.config per server and manifest.json (see deployment.py for the layout).
Then, unless --noverify, it serves everything on loopback and checks the master's
answers against the original model, printing a report.

A new version goes beside the old one (--version=K+1 into the same --output_dir);
`--mode=rollout --output_dir=DIR` then moves the running servers to it (rollout.py).
"""

import dataclasses
import gc
import os
import sys
from typing import Dict, List, Optional, Sequence

from absl import app
from absl import flags
from absl import logging
import numpy as np
import tensorflow as tf

from tensorflow_serving.experimental.tools import cut
from tensorflow_serving.experimental.tools import deployment
from tensorflow_serving.experimental.tools import master_model
from tensorflow_serving.experimental.tools import original_model
from tensorflow_serving.experimental.tools import partitioning
from tensorflow_serving.experimental.tools import rollout
from tensorflow_serving.experimental.tools import serving_graph
from tensorflow_serving.experimental.tools import shard_model
from tensorflow_serving.experimental.tools import table_selection
from tensorflow_serving.experimental.tools import verification


@dataclasses.dataclass
class Options:
  input_dir: str
  model_name: str
  output_dir: str
  num_shards: int
  servers: Sequence[str]
  tables: Sequence[str] = ()
  min_table_bytes: int = table_selection.DEFAULT_MIN_TABLE_BYTES
  version: int = 1
  partitioning: str = "mod"
  tags: Sequence[str] = (tf.saved_model.SERVING,)
  max_rpc_deadline_millis: int = 10000
  verify: bool = True
  sample_inputs: Optional[str] = None
  tolerance: float = verification.DEFAULT_TOLERANCE
  cut: Optional[str] = None
  cut_model_name: Optional[str] = None


@dataclasses.dataclass
class Result:
  plan: deployment.Plan
  manifest_path: str
  comparisons: List[verification.Comparison]
  graph: serving_graph.ServingGraph
  # The values of the variables that stay in the master, by node name.
  values: Dict[str, np.ndarray]


def _check_options(o: Options) -> None:
  if not o.model_name or "/" in o.model_name:
    raise serving_graph.ShardingError(f"--model_name='{o.model_name}' must be a non-empty "
                                      "model name without '/'")
  if o.num_shards < 1 and not o.cut:
    raise serving_graph.ShardingError(f"--num_shards={o.num_shards} must be at least 1")
  if o.version < 0:
    raise serving_graph.ShardingError(f"--version={o.version} must be >= 0")
  if o.partitioning not in partitioning.SCHEMES:
    raise serving_graph.ShardingError(
        f"--partitioning={o.partitioning} is not one of {', '.join(partitioning.SCHEMES)}")
  for server in o.servers:
    if not server or server.count(":") < 1:
      raise serving_graph.ShardingError(f"--servers entry '{server}' is not host:port")
  if not os.path.isdir(o.input_dir):
    raise serving_graph.ShardingError(f"--input_dir={o.input_dir} is not a directory")


def _refuse_existing_version(base_paths: Sequence[str], version: int) -> None:
  existing = [p for p in base_paths if os.path.exists(os.path.join(p, str(version)))]
  if existing:
    raise serving_graph.ShardingError(
        f"version {version} already exists in {existing[0]} (and {len(existing) - 1} more); "
        "pass a new --version to add one beside it, or remove the old output")


def _id_limit(graph: serving_graph.ServingGraph) -> int:
  """Sample integer inputs stay below the smallest table any lookup reads."""
  rows = [v.shape[0] for v in graph.variables.values() if v.lookups and v.shape[0] > 0]
  return min(rows) if rows else 100


def _split_at_cut(o: Options, graph: serving_graph.ServingGraph, report) -> Result:
  """--cut: the sub-graph model, the master that calls it, configs, manifest, verification."""
  if o.tables:
    raise serving_graph.ShardingError("--cut and --tables cannot be combined; cut first, then "
                                      "shard the tables of the resulting models")
  cut_model_name = o.cut_model_name or serving_graph.sanitized(o.cut)
  plan = cut.plan(graph, o.cut, o.output_dir, o.model_name, cut_model_name, o.version,
                  o.servers, o.max_rpc_deadline_millis)
  _refuse_existing_version([plan.base_path(o.model_name), plan.base_path(cut_model_name)],
                           o.version)
  sub = cut.sub_graph(graph, plan)
  rest = cut.master(graph, plan, plan.servers)
  cut.check_state_is_owned(sub, rest, o.cut)
  with original_model.OriginalModel(o.input_dir, o.tags) as original:
    values = {name: original.value(v) for name, v in graph.variables.items()
              if name in sub.variables or name in rest.variables}
    rest_values = {name: values[name] for name in rest.variables}
    master_model.write(sub, {}, {name: values[name] for name in sub.variables},
                       plan.base_path(cut_model_name), o.version)
    report(f"cut {o.cut}: {len(plan.tensors)} tensor(s) {[t.tensor for t in plan.tensors]} "
           f"computed by {cut_model_name}/{o.version} on server {plan.cut_server} "
           f"({plan.servers[plan.cut_server]}), holding {sorted(sub.variables)}")
    master_model.write(rest, {}, rest_values, plan.base_path(o.model_name), o.version)
    report(f"master {o.model_name}/{o.version} on server 0 ({plan.servers[0]}), signatures "
           f"{sorted(graph.signatures)}")
    deployment.write_configs(plan)
    manifest_path = deployment.write_manifest(plan.output_dir, plan.manifest())
    comparisons = []
    if o.verify:
      batches = (verification.read_batches(o.sample_inputs, graph) if o.sample_inputs else
                 verification.derived_batches(graph, _id_limit(graph), 1))
      report(f"verifying on loopback: {len(batches)} sample batches, tolerance {o.tolerance}")

      def write_master(addresses, base_path):
        master_model.write(cut.master(graph, plan, addresses), {}, rest_values, base_path,
                           o.version)

      comparisons = verification.verify(plan, write_master, original, batches, o.tolerance)
      for comparison in comparisons:
        report(f"  {comparison}")
      report(f"verified: all {len(comparisons)} outputs match the original model")
  return Result(plan, manifest_path, comparisons, graph, rest_values)


def split(o: Options, report=print) -> Result:
  """Writes the split deployment for `o` and verifies it unless o.verify is False."""
  _check_options(o)
  graph = serving_graph.load(o.input_dir, o.tags)
  if o.cut:
    return _split_at_cut(o, graph, report)
  tables = table_selection.select(graph, o.num_shards, o.tables, o.min_table_bytes)
  plan = deployment.plan(o.output_dir, o.model_name, o.version, o.num_shards, o.partitioning,
                         o.servers, tables, o.max_rpc_deadline_millis)
  _refuse_existing_version([plan.base_path(o.model_name)] +
                           [plan.base_path(s.model_name) for t in plan.tables for s in t.shards],
                           o.version)
  with original_model.OriginalModel(o.input_dir, o.tags) as original:
    for table in plan.tables:
      report(f"table {table.variable.describe()}: {len(table.variable.lookups)} lookup(s), "
             f"{o.num_shards} shards by {o.partitioning}")
      for shard in table.shards:
        shard_model.write(original.value(table.variable, shard.rows),
                          plan.base_path(shard.model_name), o.version)
        # The saved module is a reference cycle; free its rows before the next shard.
        gc.collect()
        report(f"  {shard.model_name}/{o.version} on server {shard.server} "
               f"({plan.servers[shard.server]})")
    values = {v.node: original.value(v)
              for v in master_model.other_variables(graph, [t.variable.node for t in plan.tables])}
    master_model.write(graph, plan.sharded_tables(plan.servers), values,
                       plan.base_path(o.model_name), o.version)
    report(f"master {o.model_name}/{o.version} on server 0 ({plan.servers[0]}), signatures "
           f"{sorted(graph.signatures)}")
    deployment.write_configs(plan)
    manifest_path = deployment.write_manifest(plan.output_dir, deployment.manifest(plan))
    report(f"wrote {', '.join(os.path.basename(plan.config_path(i)) for i in range(len(plan.servers)))}"
           f" and {manifest_path}")
    comparisons = []
    if o.verify:
      batches = (verification.read_batches(o.sample_inputs, graph) if o.sample_inputs else
                 verification.derived_batches(graph, min(t.variable.shape[0] for t in plan.tables),
                                              o.num_shards))
      report(f"verifying on loopback: {len(batches)} sample batches, tolerance {o.tolerance}")
      comparisons = verification.verify(
          plan, verification.table_master_writer(plan, graph, values), original, batches,
          o.tolerance)
      for comparison in comparisons:
        report(f"  {comparison}")
      report(f"verified: all {len(comparisons)} outputs match the original model")
  return Result(plan, manifest_path, comparisons, graph, values)


def roll_out(output_dir: str, version: Optional[int] = None,
             servers: Optional[Sequence[str]] = None, report=print) -> None:
  """Moves the running servers of OUTPUT_DIR's deployment to its newest version."""
  manifest = deployment.read_manifest(output_dir)
  if manifest is None:
    raise serving_graph.ShardingError(f"{output_dir} has no {deployment.MANIFEST}; split a model "
                                      "into it first")
  if version is not None and version != manifest["version"]:
    raise serving_graph.ShardingError(
        f"--version={version} is not the newest version in {output_dir} "
        f"({manifest['version']}); rollout moves the servers to the newest one")
  previous = manifest.get("previous_versions") or [None]
  addresses = list(servers) if servers else [s["address"] for s in manifest["servers"]]
  if len(addresses) != len(manifest["servers"]):
    raise serving_graph.ShardingError(
        f"--servers has {len(addresses)} addresses but the deployment has "
        f"{len(manifest['servers'])} servers")
  old = previous[-1]
  report(f"rolling {manifest['model_name']} out to version {manifest['version']}"
         + (f" from version {old['version']}" if old else "") + f" on {', '.join(addresses)}")
  rollout.rollout(manifest, old, addresses, report)
  report("rollout complete")


def _define_flags() -> None:
  flags.DEFINE_enum("mode", "split", ["split", "rollout"],
                    "split: write (and verify) a new version of the deployment. rollout: move "
                    "the running servers to the newest version in --output_dir through "
                    "HandleReloadConfigRequest, shards first, then the master, then retire the "
                    "old version.")
  flags.DEFINE_string("input_dir", None, "The SavedModel to split (a version directory).")
  flags.DEFINE_string("model_name", None, "Name of the served master model.")
  flags.DEFINE_string("output_dir", None, "Where the master, shards, configs and manifest go.")
  flags.DEFINE_integer("num_shards", None, "Shards per table.")
  flags.DEFINE_list("servers", None, "host:port of each model server; server 0 serves the "
                    "master, shards go round-robin over all of them.")
  flags.DEFINE_list("tables", [], "Variables to shard (node names). Default: every variable of "
                    "at least --min_table_bytes read only by lookups.")
  flags.DEFINE_integer("min_table_bytes", table_selection.DEFAULT_MIN_TABLE_BYTES,
                       "Size from which a lookup-only variable is sharded without --tables.")
  flags.DEFINE_integer("version", 1, "Version K written for the master and every shard; the "
                       "master calls its shards at version K.")
  flags.DEFINE_enum("partitioning", "mod", list(partitioning.SCHEMES),
                    "mod: id i in shard i % N; div: contiguous row ranges.")
  flags.DEFINE_list("tags", [tf.saved_model.SERVING], "MetaGraph tags of the SavedModel.")
  flags.DEFINE_integer("max_rpc_deadline_millis", 10000,
                       "Deadline of each master-to-shard call, in milliseconds.")
  flags.DEFINE_bool("verify", True, "Serve the result on loopback and compare with the original.")
  flags.DEFINE_string("sample_inputs", None, "JSON file of sample requests for --verify: a list "
                      "of {\"signature_name\": ..., \"inputs\": {name: values}}; by default "
                      "derived from the signatures.")
  flags.DEFINE_string("cut", None, "Instead of sharding tables: serve the sub-graph that "
                      "computes this tensor (TF1 tensor name, or Keras layer name) as a model of "
                      "its own, called by the master through the Remote Predict Op.")
  flags.DEFINE_string("cut_model_name", None, "Model name of the --cut sub-graph (default: "
                      "the --cut name); masters of several models may share it.")
  flags.DEFINE_float("tolerance", verification.DEFAULT_TOLERANCE,
                     "Largest difference allowed between float outputs when verifying.")
  flags.mark_flag_as_required("output_dir")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  f = flags.FLAGS
  logging.set_verbosity(logging.WARNING)
  tf.get_logger().setLevel("ERROR")
  if f.mode == "rollout":
    try:
      roll_out(f.output_dir, f["version"].value if f["version"].present else None, f.servers)
    except (serving_graph.ShardingError, rollout.RolloutError) as e:
      print(f"shard_saved_model: error: {e}", file=sys.stderr)
      return 1
    return 0
  needed = ("input_dir", "model_name", "servers") + (() if f.cut else ("num_shards",))
  missing = [n for n in needed if f[n].value is None]
  if missing:
    raise app.UsageError(f"--mode=split needs --{', --'.join(missing)}")
  options = Options(
      input_dir=f.input_dir, model_name=f.model_name, output_dir=f.output_dir,
      num_shards=f.num_shards or 0, servers=f.servers, tables=f.tables,
      min_table_bytes=f.min_table_bytes, version=f.version, partitioning=f.partitioning,
      tags=f.tags, max_rpc_deadline_millis=f.max_rpc_deadline_millis, verify=f.verify,
      sample_inputs=f.sample_inputs, tolerance=f.tolerance, cut=f.cut,
      cut_model_name=f.cut_model_name)
  try:
    split(options)
  except (serving_graph.ShardingError, verification.VerificationError) as e:
    print(f"shard_saved_model: error: {e}", file=sys.stderr)
    return 1
  return 0


if __name__ == "__main__":
  _define_flags()
  app.run(main)
