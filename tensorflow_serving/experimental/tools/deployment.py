"""The split deployment's layout: model names, paths, placement, configs, manifest.

In OUTPUT_DIR:
  <model>/<K>/                               the master (served by server 0)
  <model>_<table>_shard_<k>_of_<N>/<K>/      shard k of a table (server j % len(servers),
                                             j counting the shards of all tables in order)
  server_<i>.config                          ModelServerConfig of server i
  manifest.json                              tables, shapes, partitioning, versions, placement

Configs pin each model to version K; `rollout` moves running servers to a new K.
"""

import dataclasses
import os
import re
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from google.protobuf import text_format
import orjson

from tensorflow_serving.config import model_server_config_pb2
from tensorflow_serving.experimental.tools import partitioning
from tensorflow_serving.experimental.tools import serving_graph
from tensorflow_serving.experimental.tools import sharded_lookup

MANIFEST = "manifest.json"


@dataclasses.dataclass
class Shard:
  index: int
  model_name: str
  server: int
  rows: slice  # of the full table


@dataclasses.dataclass
class Table:
  variable: serving_graph.Variable
  name: str
  shards: List[Shard]


@dataclasses.dataclass
class Plan:
  """Everything the tool writes, decided before anything is written."""
  output_dir: str
  model_name: str
  version: int
  num_shards: int
  partitioning: str
  servers: List[str]
  tables: List[Table]
  max_rpc_deadline_millis: int

  def base_path(self, model_name: str) -> str:
    return os.path.join(os.path.abspath(self.output_dir), model_name)

  def config_path(self, server: int) -> str:
    return os.path.join(self.output_dir, f"server_{server}.config")

  def models_on(self, server: int) -> Dict[str, str]:
    """Model name -> base path of every model server `server` serves."""
    models = {self.model_name: self.base_path(self.model_name)} if server == 0 else {}
    for table in self.tables:
      for shard in table.shards:
        if shard.server == server:
          models[shard.model_name] = self.base_path(shard.model_name)
    return models

  def sharded_tables(self, addresses: Sequence[str]) -> Dict[str, sharded_lookup.ShardedTable]:
    """Variable node -> what the master's lookups need, with server i at addresses[i]."""
    return {
        t.variable.node: sharded_lookup.ShardedTable(
            name=t.name, num_rows=t.variable.shape[0],
            row_shape=sharded_lookup.rows_shape(t.variable.shape), dtype=t.variable.dtype,
            scheme=self.partitioning,
            shards=tuple(sharded_lookup.RemoteShard(addresses[s.server], s.model_name)
                         for s in t.shards),
            model_version=self.version, max_rpc_deadline_millis=self.max_rpc_deadline_millis)
        for t in self.tables
    }


def plan(output_dir: str, model_name: str, version: int, num_shards: int, scheme: str,
         servers: Sequence[str], tables: Sequence[serving_graph.Variable],
         max_rpc_deadline_millis: int) -> Plan:
  """Names and places every model; raises ShardingError on a name clash."""
  if not servers:
    raise serving_graph.ShardingError("--servers is empty: give at least one host:port")
  placed: List[Table] = []
  names = set()
  j = 0
  for variable in tables:
    # Keras numbers the variables it re-creates on export ("embeddings_1").
    base = re.sub(r"_\d+$", "", variable.node)
    unique_base = sum(re.sub(r"_\d+$", "", v.node) == base for v in tables) == 1
    name = serving_graph.sanitized(base if unique_base else variable.node)
    if name in names:
      raise serving_graph.ShardingError(
          f"two tables would both be called '{name}' in model names ('{variable.node}' and "
          "another); rename one of the variables")
    names.add(name)
    shards = []
    for k in range(num_shards):
      shards.append(Shard(k, f"{model_name}_{name}_shard_{k}_of_{num_shards}", j % len(servers),
                          partitioning.shard_rows(scheme, variable.shape[0], num_shards, k)))
      j += 1
    placed.append(Table(variable, name, shards))
  return Plan(output_dir, model_name, version, num_shards, scheme, list(servers), placed,
              max_rpc_deadline_millis)


def server_config(models: Mapping[str, Tuple[str, Iterable[int]]]
                  ) -> model_server_config_pb2.ModelServerConfig:
  """A config serving exactly the given versions: model name -> (base path, versions)."""
  config = model_server_config_pb2.ModelServerConfig()
  for name in sorted(models):
    base_path, versions = models[name]
    model = config.model_config_list.config.add(name=name, base_path=base_path,
                                                model_platform="tensorflow")
    # Pinned versions: the master calls its shards by number, so a server must
    # never drop a version on its own because a newer one appeared on disk.
    model.model_version_policy.specific.versions.extend(sorted(versions))
  return config


def _replace_file(path: str, data: bytes) -> str:
  """Writes `path` whole or not at all: a server or a rollout never reads half a file."""
  staging = path + ".tmp"
  with open(staging, "wb") as f:
    f.write(data)
  os.replace(staging, path)
  return path


def write_config(path: str, config: model_server_config_pb2.ModelServerConfig) -> str:
  return _replace_file(path, text_format.MessageToString(config).encode())


def write_configs(plan_) -> List[str]:
  """Writes server_<i>.config (serving version K of its models) for every server.

  `plan_` is a Plan or a cut.CutPlan.
  """
  os.makedirs(plan_.output_dir, exist_ok=True)
  return [write_config(plan_.config_path(i), server_config(
      {name: (path, [plan_.version]) for name, path in plan_.models_on(i).items()}))
          for i in range(len(plan_.servers))]


def manifest(plan_: Plan) -> Mapping:
  def rows(s: slice, num_rows: int) -> Mapping:
    return {"start": s.start, "step": s.step, "count": len(range(num_rows)[s])}

  return {
      "model_name": plan_.model_name,
      "version": plan_.version,
      "master": {"model_name": plan_.model_name, "server": 0,
                 "base_path": plan_.base_path(plan_.model_name)},
      "servers": [{"index": i, "address": a, "config": os.path.abspath(plan_.config_path(i))}
                  for i, a in enumerate(plan_.servers)],
      "tables": [{
          "name": t.name,
          "variable": t.variable.node,
          "dtype": t.variable.dtype.name,
          "shape": list(t.variable.shape),
          "bytes": t.variable.nbytes,
          "lookups": [l.node for l in t.variable.lookups],
          "partitioning": plan_.partitioning,
          "num_shards": plan_.num_shards,
          "shards": [{"index": s.index, "model_name": s.model_name, "server": s.server,
                      "address": plan_.servers[s.server], "version": plan_.version,
                      "base_path": plan_.base_path(s.model_name),
                      "rows": rows(s.rows, t.variable.shape[0])} for s in t.shards],
      } for t in plan_.tables],
  }


def read_manifest(output_dir: str) -> Optional[Dict]:
  path = os.path.join(output_dir, MANIFEST)
  if not os.path.exists(path):
    return None
  with open(path, "rb") as f:
    return orjson.loads(f.read())


def write_manifest(output_dir: str, content: Mapping) -> str:
  """Writes manifest.json for a version; the versions written before are kept in it."""
  path = os.path.join(output_dir, MANIFEST)
  content = dict(content)
  old = read_manifest(output_dir)
  if old is not None and old.get("model_name") == content["model_name"]:
    previous = old.pop("previous_versions", [])
    content["previous_versions"] = [p for p in previous + [old]
                                    if p["version"] != content["version"]]
  return _replace_file(path, orjson.dumps(content, option=orjson.OPT_INDENT_2))
