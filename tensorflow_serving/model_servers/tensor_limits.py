"""Checks on a request's tensors that run before any of their memory is allocated.

A TensorProto or JSON value states a shape; what the server allocates follows from
that shape, not from the bytes the client sent: a 40-byte PredictRequest can declare
[2**29] floats. So every input's shape is validated first (no negative dimension, an
element count that fits int64, a rank numpy can hold), and the bytes its decoded
tensor will take are charged to a per-request `Budget` whose limit is
--max_request_tensor_bytes (beyond TensorFlow Serving, which has no such limit; the
default leaves room for two requests at the limit on a 24 GiB machine).
"""

import threading
from typing import Sequence

import grpc

from tensorflow.core.framework import types_pb2
from tensorflow_serving.model_servers import serving_errors

DEFAULT_MAX_REQUEST_TENSOR_BYTES = 2 << 30
MAX_RANK = 64  # numpy's limit; TensorFlow allows more, but arrays are numpy here.
_INT64_MAX = (1 << 63) - 1
# Counted per element of a string tensor besides its bytes: numpy's object pointer.
STRING_ELEMENT_BYTES = 8

_lock = threading.Lock()
_max_request_tensor_bytes = DEFAULT_MAX_REQUEST_TENSOR_BYTES


def set_max_request_tensor_bytes(limit: int) -> None:
  """The server sets --max_request_tensor_bytes here once, at start-up."""
  global _max_request_tensor_bytes
  with _lock:
    _max_request_tensor_bytes = limit


def max_request_tensor_bytes() -> int:
  return _max_request_tensor_bytes


def dtype_name(dtype: int) -> str:
  return types_pb2.DataType.Name(dtype) if dtype in types_pb2.DataType.values() else str(dtype)


def element_count(alias: str, shape: Sequence[int]) -> int:
  """The number of elements of `shape`; INVALID_ARGUMENT if it cannot be a tensor's."""
  if len(shape) > MAX_RANK:
    raise serving_errors.invalid_argument(
        f"input '{alias}' has rank {len(shape)}; at most {MAX_RANK} dimensions are supported")
  count = 1
  for size in shape:
    if size < 0:
      raise serving_errors.invalid_argument(
          f"input '{alias}' has shape {list(shape)} with a negative dimension ({size}); "
          "every dimension of a request's tensor must be known and >= 0")
    count *= size
  if count > _INT64_MAX:
    raise serving_errors.invalid_argument(
        f"input '{alias}' has shape {list(shape)}, whose {count} elements overflow int64")
  return count


class Budget:
  """The decoded tensor bytes one request may still allocate."""

  def __init__(self, limit: int = -1):
    self.limit = limit if limit >= 0 else max_request_tensor_bytes()
    self.used = 0

  def charge(self, alias: str, shape: Sequence[int], dtype: int, nbytes: int) -> None:
    """Takes `nbytes` for input `alias`; RESOURCE_EXHAUSTED if over the limit."""
    if self.used + nbytes > self.limit:
      others = f" (with {self.used} bytes of the request's other inputs)" if self.used else ""
      raise serving_errors.ServingError(
          grpc.StatusCode.RESOURCE_EXHAUSTED,
          f"input '{alias}' of shape {list(shape)} and type {dtype_name(dtype)} decodes to "
          f"{nbytes} bytes{others}, over this server's limit of {self.limit} bytes of input "
          "tensors per request (--max_request_tensor_bytes); send smaller batches")
    self.used += nbytes
