"""Protocol-buffer wire format for whole numpy arrays: packed repeated fields in bulk.

A Predict reply carries each output tensor in TensorProto's typed repeated fields
(float_val, int64_val, ...). Filling those fields value by value from Python costs
about a microsecond per element; instead the field's packed encoding is written here
with a few vectorised numpy passes and the message is parsed from it in C. Fixed-width
fields (float, double, complex) are the array's little-endian bytes, exactly as
tensor_content holds them; varint fields are encoded 7 bits at a time over the whole
array, with negative signed values sign-extended to 64 bits as protobuf requires.
"""

import numpy as np

WIRETYPE_LENGTH_DELIMITED = 2
_MAX_VARINT_BYTES = 10


def varint(value: int) -> bytes:
  """One unsigned varint (tags and lengths)."""
  out = bytearray()
  while True:
    byte = value & 0x7F
    value >>= 7
    if value:
      out.append(byte | 0x80)
    else:
      out.append(byte)
      return bytes(out)


def varints(values: np.ndarray) -> bytes:
  """The concatenated varints of an integer array (signed values sign-extended)."""
  flat = np.ascontiguousarray(values).reshape(-1)
  if flat.dtype.kind == "b":
    return flat.view(np.uint8).tobytes()  # 0 and 1 are one-byte varints.
  if flat.dtype.kind == "i":
    flat = flat.astype(np.int64, copy=False).view(np.uint64)
  else:
    flat = flat.astype(np.uint64, copy=False)
  if flat.size == 0:
    return b""
  lengths = np.ones(flat.shape, np.int64)
  for group in range(1, _MAX_VARINT_BYTES):
    lengths += flat >= np.uint64(1 << (7 * group))
  if int(lengths.max()) == 1:
    return flat.astype(np.uint8).tobytes()
  starts = np.cumsum(lengths) - lengths
  out = np.empty(int(lengths.sum()), np.uint8)
  for group in range(int(lengths.max())):
    present = lengths > group
    bits = (flat[present] >> np.uint64(7 * group)) & np.uint64(0x7F)
    more = (lengths[present] > group + 1).astype(np.uint64) << np.uint64(7)
    out[starts[present] + group] = (bits | more).astype(np.uint8)
  return out.tobytes()


def length_delimited(field_number: int, payload: bytes) -> bytes:
  """A length-delimited field (e.g. a packed repeated field) with its tag."""
  return (varint(field_number << 3 | WIRETYPE_LENGTH_DELIMITED) + varint(len(payload)) +
          payload)
