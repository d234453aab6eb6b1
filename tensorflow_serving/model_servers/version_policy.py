"""Which versions of a model to serve: numbered directories and the version policy.

A model's base path holds one directory per version, named by a non-negative integer
("123" or "00000123"); anything else there is ignored. The ModelConfig's
`model_version_policy` picks among them: `latest {num_versions}` (default, 1 version),
`all`, or `specific {versions}`.
"""

import os
from typing import Dict, Iterable, Set

from absl import logging

from tensorflow_serving.config import file_system_storage_path_source_pb2

VersionPolicy = file_system_storage_path_source_pb2.FileSystemStoragePathSourceConfig.ServableVersionPolicy


class BasePathError(OSError):
  """The model's base path cannot be listed."""


def versions_on_disk(base_path: str) -> Dict[int, str]:
  """Maps version number to its directory under `base_path`."""
  try:
    entries = sorted(os.listdir(base_path))
  except OSError as e:
    raise BasePathError(f"cannot list model base path '{base_path}': {e.strerror}") from e
  versions: Dict[int, str] = {}
  for entry in entries:
    if not entry.isdigit():
      continue
    path = os.path.join(base_path, entry)
    if not os.path.isdir(path):
      continue
    version = int(entry)
    if version in versions:
      logging.warning("Model base path %s has two directories for version %d (%s, %s); "
                      "serving %s", base_path, version, os.path.basename(versions[version]),
                      entry, os.path.basename(versions[version]))
      continue
    versions[version] = path
  return versions


def aspired_versions(on_disk: Iterable[int], policy: VersionPolicy) -> Set[int]:
  """The versions among `on_disk` that `policy` asks to serve."""
  on_disk = set(on_disk)
  choice = policy.WhichOneof("policy_choice")
  if choice == "all":
    return on_disk
  if choice == "specific":
    return on_disk & set(policy.specific.versions)
  count = policy.latest.num_versions if choice == "latest" else 0
  return set(sorted(on_disk, reverse=True)[:max(count, 1)])
