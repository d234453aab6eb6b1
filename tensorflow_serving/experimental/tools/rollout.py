"""Moves running model servers from version K to version K+1 of a split deployment.

Master K calls shards K and master K+1 calls shards K+1 (pinned `model_version`), so
no answer mixes table versions as long as a master never outlives its shards.
The servers are driven through ModelService/HandleReloadConfigRequest (which returns
once loads and unloads have settled) in dependency order:

  1. every server: models of K, plus the shards of K+1     -> shards K+1 AVAILABLE
  2. server 0: plus master K+1                              -> master K+1 AVAILABLE;
     requests without a version now reach K+1
  3. server 0: master K retired                             -> in-flight K calls done
  4. every server: only the models of K+1                   -> shards K retired

The two versions come from manifest.json (the newest version and the one written
before it).
"""

from typing import Callable, Dict, List, Mapping, Optional, Sequence, Set, Tuple

import grpc

from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import model_management_pb2
from tensorflow_serving.apis import model_service_pb2_grpc
from tensorflow_serving.experimental.tools import deployment

# server index -> model name -> (base path, versions)
Layout = Dict[int, Dict[str, Tuple[str, Set[int]]]]
_RELOAD_TIMEOUT_S = 600.0


class RolloutError(RuntimeError):
  """A server refused a config or a version did not reach the expected state."""


def _models(manifest: Mapping, include_master: bool = True,
            include_shards: bool = True) -> Layout:
  layout: Layout = {}
  version = manifest["version"]
  if include_master:
    master = manifest["master"]
    layout.setdefault(master["server"], {})[master["model_name"]] = (master["base_path"],
                                                                    {version})
  if include_shards:
    cut = manifest.get("cut")
    if cut:  # the sub-graph model a --cut master calls
      layout.setdefault(cut["server"], {})[cut["model_name"]] = (cut["base_path"], {version})
    for table in manifest["tables"]:
      for shard in table["shards"]:
        layout.setdefault(shard["server"], {})[shard["model_name"]] = (shard["base_path"],
                                                                      {version})
  return layout


def _union(*layouts: Layout) -> Layout:
  result: Layout = {}
  for layout in layouts:
    for server, models in layout.items():
      for name, (base_path, versions) in models.items():
        _, known = result.setdefault(server, {}).setdefault(name, (base_path, set()))
        known.update(versions)
  return result


def stages(new: Mapping, old: Optional[Mapping]) -> List[Tuple[str, Layout]]:
  """The configs each step gives every server, in order, with a description."""
  new_all, new_shards = _models(new), _models(new, include_master=False)
  if old is None:
    return [("load the shards", new_shards), ("load the master", new_all)]
  old_all, old_shards = _models(old), _models(old, include_master=False)
  k, k1 = old["version"], new["version"]
  return [
      (f"load shards {k1} beside version {k}", _union(old_all, new_shards)),
      (f"load master {k1}", _union(old_all, new_all)),
      (f"retire master {k}", _union(old_shards, new_all)),
      (f"retire shards {k}", new_all),
  ]


class _Server:

  def __init__(self, index: int, address: str):
    self.index = index
    self.address = address
    self._channel = grpc.insecure_channel(address)
    self.stub = model_service_pb2_grpc.ModelServiceStub(self._channel)

  def reload(self, models: Mapping[str, Tuple[str, Set[int]]], what: str) -> None:
    request = model_management_pb2.ReloadConfigRequest(config=deployment.server_config(models))
    try:
      response = self.stub.HandleReloadConfigRequest(request, timeout=_RELOAD_TIMEOUT_S,
                                                     wait_for_ready=True)
    except grpc.RpcError as e:
      raise RolloutError(f"server {self.index} ({self.address}) failed to {what}: "
                         f"{e.code().name}: {e.details()}") from e
    if response.status.error_code != 0:
      raise RolloutError(f"server {self.index} ({self.address}) failed to {what}: "
                         f"{response.status.error_message}")

  def check_states(self, models: Mapping[str, Tuple[str, Set[int]]], what: str) -> None:
    """Raises RolloutError unless exactly the listed versions of each model are AVAILABLE."""
    state = get_model_status_pb2.ModelVersionStatus.State
    for name, (_, versions) in models.items():
      request = get_model_status_pb2.GetModelStatusRequest()
      request.model_spec.name = name
      response = self.stub.GetModelStatus(request, timeout=60)
      available = {s.version for s in response.model_version_status
                   if s.state == state.AVAILABLE}
      if available != versions:
        raise RolloutError(f"after '{what}', model '{name}' on server {self.index} "
                           f"({self.address}) has versions {sorted(available)} AVAILABLE, "
                           f"expected {sorted(versions)}")

  def close(self) -> None:
    self._channel.close()


def rollout(new: Mapping, old: Optional[Mapping], addresses: Sequence[str],
            report: Callable[[str], None] = print) -> None:
  """Drives the servers at `addresses` (index = server number) from `old` to `new`."""
  servers = [_Server(i, a) for i, a in enumerate(addresses)]
  try:
    for what, layout in stages(new, old):
      for server in servers:
        models = layout.get(server.index, {})
        server.reload(models, what)
        server.check_states(models, what)
      report(f"{what}: done on {len(servers)} server(s)")
  finally:
    for server in servers:
      server.close()
