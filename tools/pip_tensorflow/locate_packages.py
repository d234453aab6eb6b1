"""Prints where the virtualenv's TensorFlow pieces are, for the repository rules.

Output is `key=value` lines. Nothing is imported (importing TensorFlow takes
seconds), so this stays cheap enough to run on every repository fetch.
"""

import importlib.util
import os
import sys


def _package_dir(name: str) -> str:
  spec = importlib.util.find_spec(name)
  if spec is None or not spec.submodule_search_locations:
    sys.exit(f"{sys.executable} has no '{name}' package; run tools/bazel to set up .venv")
  return list(spec.submodule_search_locations)[0]


def main() -> None:
  tensorflow_dir = _package_dir("tensorflow")
  protoc = os.path.join(os.path.dirname(sys.executable), "protoc")
  if not os.path.exists(protoc):
    sys.exit(f"no protoc beside {sys.executable}; run tools/bazel to set up .venv")
  print(f"tensorflow_dir={tensorflow_dir}")
  print(f"include_dir={os.path.join(tensorflow_dir, 'include')}")
  print(f"protoc={protoc}")


if __name__ == "__main__":
  main()
