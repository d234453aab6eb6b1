"""Reads the OpDefs that a custom-op shared object registers.

`tf.load_op_library` returns only the generated Python functions, so the op
generators use the C API calls it is built on to get the OpList itself.
"""

from tensorflow.core.framework import op_def_pb2
from tensorflow.python.client import pywrap_tf_session
from tensorflow.python.framework import errors


class OpLibraryError(ValueError):
  """The shared object could not be loaded as an op library."""


def load_op_list(library: str) -> op_def_pb2.OpList:
  """Loads `library` into this process and returns the OpDefs it registered."""
  try:
    handle = pywrap_tf_session.TF_LoadLibrary(library)
  except errors.OpError as e:
    raise OpLibraryError(f"cannot load op library {library}: {e.message}") from e
  try:
    return op_def_pb2.OpList.FromString(pywrap_tf_session.TF_GetOpList(handle))
  finally:
    pywrap_tf_session.TF_DeleteLibraryHandle(handle)
