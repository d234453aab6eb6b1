"""Writes a `gen_*_op.py` module for the ops a custom-op library registers.

Stands in for TensorFlow's `gen_<name>_py` binaries, which the pip package does
not ship. The code itself comes from TensorFlow's own Python op generator, so the
module matches what a TensorFlow source build would produce.
"""

import sys

from absl import app
from absl import flags
from tensorflow.core.framework import op_def_pb2
from tensorflow.python.framework import _pywrap_python_op_gen

from tools.pip_tensorflow import op_library

_OP_LIBRARY = flags.DEFINE_string("op_library", None, "Shared object whose ops to wrap.", required=True)
_OUT = flags.DEFINE_string("out", None, "Python file to write.", required=True)
_HIDDEN_OPS = flags.DEFINE_list("hidden_ops", [], "Ops to leave out of the module.")


def main(argv: list[str]) -> None:
  del argv
  try:
    registered = op_library.load_op_list(_OP_LIBRARY.value)
  except op_library.OpLibraryError as e:
    sys.exit(f"py_op_gen: {e}")
  op_list = op_def_pb2.OpList()
  op_list.op.extend(op for op in registered.op if op.name not in _HIDDEN_OPS.value)
  if not op_list.op:
    raise app.UsageError(f"{_OP_LIBRARY.value} registers no ops to wrap")
  with open(_OUT.value, "wb") as out:
    out.write(_pywrap_python_op_gen.GetPythonWrappers(op_list.SerializeToString()))


if __name__ == "__main__":
  app.run(main)
