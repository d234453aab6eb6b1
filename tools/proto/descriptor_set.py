"""Writes a FileDescriptorSet of the installed tensorflow-serving-api protos.

The wheel carries every API descriptor in its `*_pb2` modules. Serialising them,
with everything they import, lets protoc generate C++ with `--descriptor_set_in`,
so the workspace carries no copy of any .proto file.
"""

import importlib

from absl import app
from absl import flags
from google.protobuf import descriptor_pb2

_MODULES = flags.DEFINE_list(
    "modules", None, "The *_pb2 modules whose files (and imports) to include.", required=True)
_OUT = flags.DEFINE_string("out", None, "Where to write the serialized FileDescriptorSet.", required=True)


def _add_with_imports(file_descriptor, seen: set[str], out: descriptor_pb2.FileDescriptorSet) -> None:
  """Appends `file_descriptor` after its imports (protoc wants them in that order)."""
  if file_descriptor.name in seen:
    return
  seen.add(file_descriptor.name)
  for dependency in file_descriptor.dependencies:
    _add_with_imports(dependency, seen, out)
  file_descriptor.CopyToProto(out.file.add())


def main(argv: list[str]) -> None:
  del argv
  descriptor_set = descriptor_pb2.FileDescriptorSet()
  seen: set[str] = set()
  for module_name in _MODULES.value:
    _add_with_imports(importlib.import_module(module_name).DESCRIPTOR, seen, descriptor_set)
  with open(_OUT.value, "wb") as out:
    out.write(descriptor_set.SerializeToString())


if __name__ == "__main__":
  app.run(main)
