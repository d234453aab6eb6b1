"""Writes a model version directory under a hidden name, then renames it into place.

A model server polling a base path must never load a half-written version. Every
exporter here writes into a fresh hidden directory beside the version (the server
skips names that are not numbers) and renames it to its number only once it is
complete; a failed export leaves nothing behind.

  with staged_version.staged_version_dir(base_path, "3") as path:
    tf.saved_model.save(module, path)    # `path` does not exist yet
  # BASE_PATH/3 now exists
"""

import contextlib
import os
import shutil
import tempfile
from typing import Iterator, Union

STAGING_PREFIX = ".staging-"


@contextlib.contextmanager
def staged_version_dir(base_path: str, version: Union[int, str]) -> Iterator[str]:
  """Yields a path to write the version to; renames it to BASE_PATH/VERSION on success.

  The yielded path does not exist yet (SavedModelBuilder and copytree insist on
  that; tf.saved_model.save creates it). Raises FileExistsError before anything is
  written if the version exists already.
  """
  os.makedirs(base_path, exist_ok=True)
  final_dir = os.path.join(base_path, str(version))
  if os.path.exists(final_dir):
    raise FileExistsError(f"{final_dir} already exists: remove it or export another version")
  staging = tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=base_path)
  try:
    path = os.path.join(staging, "version")
    yield path
    if not os.path.isdir(path):
      raise RuntimeError(f"nothing was written to the staging directory {path} for {final_dir}")
    # rename() replaces an empty directory silently; the check above keeps an
    # existing version from being replaced by a concurrent writer in most cases,
    # and os.rename fails if a non-empty one appeared meanwhile.
    os.rename(path, final_dir)
  finally:
    shutil.rmtree(staging, ignore_errors=True)
