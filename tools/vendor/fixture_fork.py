"""Test fixtures: a minimal TF Serving-shaped fork and a small source workspace.

The fork's WORKSPACE head and the lines around server_lib's insertion point are
the pre-image of server_lib_and_workspace.patch, so one fixture serves both the
tool and `git apply`, and the two can be compared.
"""

import os
import re
from typing import Dict, List

HERE = os.path.dirname(os.path.abspath(__file__))
PATCH = os.path.join(HERE, "server_lib_and_workspace.patch")
ALLOWLIST = os.path.join(HERE, "external_labels.txt")
TOOL = os.path.join(HERE, "vendor_into_tf_serving.py")

OP_DIR = "tensorflow_serving/experimental/tensorflow/ops/remote_predict"
EXAMPLE_DIR = "tensorflow_serving/experimental/example"
MODEL_SERVERS = "tensorflow_serving/model_servers/BUILD"


def write_tree(root: str, files: Dict[str, str]) -> None:
  for rel, text in files.items():
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
      f.write(text)


def snapshot(root: str) -> Dict[str, bytes]:
  """Every file under root (relative path -> bytes)."""
  files = {}
  for dirpath, _, filenames in os.walk(root):
    for name in filenames:
      path = os.path.join(dirpath, name)
      with open(path, "rb") as f:
        files[os.path.relpath(path, root)] = f.read()
  return files


def _patch_section(path: str) -> List[str]:
  """The hunk lines of the patch for `path`, each with its ' ', '-' or '+' mark."""
  with open(PATCH, encoding="utf-8") as f:
    text = f.read()
  section = re.search(r"^diff --git a/%s b/%s\n(.*?)(?=^diff --git |\Z)" % (
      re.escape(path), re.escape(path)), text, re.M | re.S).group(1)
  return [line for line in section.splitlines()
          if line.startswith((" ", "-", "+")) and not line.startswith(("--- ", "+++ "))]


def patch_preimage(path: str) -> List[str]:
  """The lines each hunk of the patch expects in `path`, hunk after hunk."""
  return [line[1:] for line in _patch_section(path) if line[0] in " -"]


def patch_removed(path: str) -> List[str]:
  """The lines the patch deletes from `path`."""
  return [line[1:] for line in _patch_section(path) if line[0] == "-"]


def _indent(lines: List[str]) -> str:
  return "".join(line + "\n" for line in lines)


def fork_files(with_server_lib: bool = True) -> Dict[str, str]:
  """A TF Serving-shaped tree, as its pristine upstream checkout would be."""
  workspace = _indent(patch_preimage("WORKSPACE")) + (
      "# (Fixture: the rest of upstream's comment and TensorFlow's archive are left out.)\n"
      'load("//tensorflow_serving:workspace.bzl", "tf_serving_workspace")\n\n'
      "tf_serving_workspace()\n")
  rule = "server_lib" if with_server_lib else "server_library"
  model_servers = (
      "# Fixture: the shape of TF Serving's model server package.\n\n"
      "package(default_visibility = [\"//tensorflow_serving:internal\"])\n\n"
      "SUPPORTED_TENSORFLOW_OPS = [\n"
      '    "@org_tensorflow_text//tensorflow_text:ops_lib",\n'
      "]\n\n"
      "cc_library(\n"
      '    name = "server_core",\n'
      '    srcs = ["server_core.cc"],\n'
      "    deps = [\n"
      '        "//tensorflow_serving/core:availability_preserving_policy",\n'
      "    ] + SUPPORTED_TENSORFLOW_OPS,\n"
      ")\n\n"
      "cc_library(\n"
      f'    name = "{rule}",\n'
      '    srcs = ["server.cc"],\n'
      "    deps = [\n"
      '        ":server_core",\n' +
      _indent(patch_preimage("tensorflow_serving/model_servers/BUILD")) +
      '        "@org_tensorflow//tensorflow/core:lib",\n'
      "    ] + SUPPORTED_TENSORFLOW_OPS,\n"
      ")\n\n"
      "cc_binary(\n"
      '    name = "tensorflow_model_server",\n'
      f'    deps = [":{rule}"],\n'
      ")\n")
  return {
      "WORKSPACE": workspace,
      ".bazelrc": _indent(patch_preimage(".bazelrc")),
      "tensorflow_serving/BUILD": 'package_group(name = "internal", packages = ["//..."])\n',
      "tensorflow_serving/apis/BUILD": "# Fixture: TF Serving's API protos live here.\n",
      "tensorflow_serving/core/test_util/BUILD": "# Fixture: TF Serving's test main lives here.\n",
      MODEL_SERVERS: model_servers,
      # Upstream's copy of the op, with the empty nested WORKSPACE that hides it.
      f"{OP_DIR}/WORKSPACE": "",
      f"{OP_DIR}/BUILD": "# Fixture: upstream's BUILD of the op.\n",
      f"{OP_DIR}/kernels/upstream_only.cc": "// Fixture: a file only upstream has.\n",
      f"{EXAMPLE_DIR}/BUILD": "# Fixture: upstream's examples.\n",
  }


_OP_BUILD = '''\
# Fixture: the op's BUILD, using only allow-listed labels.
load("@org_tensorflow//tensorflow:tensorflow.bzl", "tf_gen_op_libs", "tf_kernel_library")

tf_gen_op_libs(
    op_lib_names = ["remote_predict_op"],
    deps = ["@org_tensorflow//tensorflow/core:lib"],
)

tf_kernel_library(
    name = "remote_predict_op_kernel",
    srcs = ["kernels/remote_predict_op_kernel.cc"],
    visibility = [
        "//tensorflow_serving/experimental/example:__subpackages__",
        "//tensorflow_serving/model_servers:__subpackages__",
    ],
    deps = [
        ":remote_predict_op_op_lib",
        "//tensorflow_serving/apis:predict_cc_proto",
        "@com_google_absl//absl/status:statusor",
        "@org_tensorflow//tensorflow/core:framework",
    ],
)

cc_library(
    name = "remote_predict_ops_cc",
    visibility = ["//visibility:public"],
    deps = [":remote_predict_op_op_lib"],
)

cc_test(
    name = "remote_predict_op_kernel_test",
    srcs = ["kernels/remote_predict_op_kernel_test.cc"],
    deps = [
        ":remote_predict_op_kernel",
        "//tensorflow_serving/core/test_util:test_main",
    ],
)
'''

_EXAMPLE_BUILD = '''\
# Fixture: the example's BUILD.
package(default_visibility = ["//tensorflow_serving:internal"])

py_binary(
    name = "client",
    srcs = ["client.py"],
    deps = [
        "//tensorflow_serving/apis:predict_proto_py_pb2",
        "//tensorflow_serving/experimental/tensorflow/ops/remote_predict:remote_predict_py",
    ],
)
'''


def source_files() -> Dict[str, str]:
  """A small source workspace: what belongs, and what must not be copied."""
  return {
      "WORKSPACE": "# Fixture: the source workspace.\n",
      f"{OP_DIR}/BUILD": _OP_BUILD,
      f"{OP_DIR}/README.md": "Fixture README.\n",
      f"{OP_DIR}/__init__.py": "",
      f"{OP_DIR}/kernels/remote_predict_op_kernel.cc": "// Fixture kernel.\n",
      f"{OP_DIR}/kernels/remote_predict_op_kernel_test.cc": "// Fixture test.\n",
      f"{OP_DIR}/python/ops/remote_predict_ops.py": '"""Fixture wrapper."""\n',
      f"{OP_DIR}/python/ops/__pycache__/remote_predict_ops.cpython-311.pyc": "cache",
      f"{OP_DIR}/.remote_predict_ops.py.swp": "editor state",
      f"{OP_DIR}/notes.txt": "Local notes that do not belong in a fork.\n",
      f"{EXAMPLE_DIR}/BUILD": _EXAMPLE_BUILD,
      f"{EXAMPLE_DIR}/client.py": '"""Fixture client."""\n',
  }


# The source files that belong in a fork: not caches, editor files or notes.
EXPECTED_COPIED = sorted(
    p for p in source_files()
    if p.startswith("tensorflow_serving/") and "__pycache__" not in p and
    not os.path.basename(p).startswith(".") and not p.endswith("notes.txt"))


def workspace_root() -> str:
  """This workspace's source root, also from inside a Bazel test's runfiles.

  Under Bazel the test depends on the op's BUILD file as data; its runfiles
  entry is a symlink into the source tree, which gives the root.
  """
  srcdir = os.environ.get("TEST_SRCDIR")
  if srcdir:
    workspace = os.environ.get("TEST_WORKSPACE", "tf_serving")
    marker = os.path.join(srcdir, workspace, OP_DIR, "BUILD")
    if os.path.exists(marker):
      real = os.path.realpath(marker)
      return real[:-len(os.path.join(OP_DIR, "BUILD")) - 1]
  return os.path.dirname(os.path.dirname(HERE))
