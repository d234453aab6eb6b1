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
  width = 1  # Bytes of the longest varint.
  largest = int(flat.max())
  while width < _MAX_VARINT_BYTES and largest >> (7 * width):
    width += 1
  if width == 1:
    return flat.astype(np.uint8).tobytes()
  # Row i holds value i's varint left-aligned in `width` bytes: column g is its 7-bit
  # group g, with the high bit set when more groups follow. `keep` marks the bytes
  # each varint really has; keeping them, row by row, is the concatenation.
  rows = np.empty((flat.size, width), np.uint8)
  keep = np.empty((flat.size, width), np.bool_)
  keep[:, 0] = True
  rest = flat.copy()
  low = np.empty(flat.size, np.uint64)
  more = np.empty(flat.size, np.bool_)
  for group in range(width):
    np.bitwise_and(rest, np.uint64(0x7F), out=low)
    np.right_shift(rest, np.uint64(7), out=rest)
    np.not_equal(rest, 0, out=more)
    column = rows[:, group]
    column[:] = low
    column |= more.view(np.uint8) << np.uint8(7)
    if group + 1 < width:
      keep[:, group + 1] = more
  return rows[keep].tobytes()


def length_delimited_head(field_number: int, length: int) -> bytes:
  """The tag and length that precede a length-delimited field's `length` bytes."""
  return varint(field_number << 3 | WIRETYPE_LENGTH_DELIMITED) + varint(length)
