"""Which shard holds which row of a table: `mod` (id % N) or `div` (contiguous ranges).

`mod` puts id i in shard i % N at local row i // N, so shard k holds rows k, k + N,
k + 2N, ... and consecutive ids spread evenly. `div` gives each shard one contiguous
range; the first V % N shards hold one row more than the others, so no shard is
empty. The same arithmetic is used to cut the table (numpy) and to route ids in the
master (TensorFlow), so the two always agree.
"""

from typing import Tuple

import numpy as np
import tensorflow as tf

SCHEMES = ("mod", "div")


def _check(scheme: str, num_rows: int, num_shards: int) -> None:
  if scheme not in SCHEMES:
    raise ValueError(f"unknown partitioning '{scheme}'; use one of {', '.join(SCHEMES)}")
  if not 1 <= num_shards <= num_rows:
    raise ValueError(f"cannot split {num_rows} rows into {num_shards} shards")


def shard_rows(scheme: str, num_rows: int, num_shards: int, shard: int) -> slice:
  """The rows of the full table that shard `shard` holds, in local order."""
  _check(scheme, num_rows, num_shards)
  if scheme == "mod":
    return slice(shard, num_rows, num_shards)
  small, big = divmod(num_rows, num_shards)
  start = shard * (small + 1) if shard < big else big * (small + 1) + (shard - big) * small
  return slice(start, start + (small + 1 if shard < big else small), 1)


def num_shard_rows(scheme: str, num_rows: int, num_shards: int, shard: int) -> int:
  return len(range(num_rows)[shard_rows(scheme, num_rows, num_shards, shard)])


def route(scheme: str, num_rows: int, num_shards: int,
          ids: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
  """(shard int32, local row int64) of each id in [0, num_rows) of an int64 tensor."""
  _check(scheme, num_rows, num_shards)
  if scheme == "mod":
    return tf.cast(ids % num_shards, tf.int32), ids // num_shards
  small, big = divmod(num_rows, num_shards)
  boundary = big * (small + 1)
  in_big = ids < boundary
  # Both branches are computed for every id; `small` >= 1 because num_rows >= num_shards.
  shard = tf.where(in_big, ids // (small + 1), big + (ids - boundary) // small)
  local = tf.where(in_big, ids % (small + 1), (ids - boundary) % small)
  return tf.cast(shard, tf.int32), local


def reference_route(scheme: str, num_rows: int, num_shards: int,
                    ids: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
  """What `route` computes, from `shard_rows`; for tests."""
  owner = np.empty(num_rows, np.int32)
  local = np.empty(num_rows, np.int64)
  for k in range(num_shards):
    rows = np.arange(num_rows)[shard_rows(scheme, num_rows, num_shards, k)]
    owner[rows] = k
    local[rows] = np.arange(rows.size)
  return owner[ids], local[ids]
