"""Repository rules that turn the virtualenv's pip TensorFlow into Bazel repositories.

The names are TensorFlow Serving's (@org_tensorflow, @com_google_protobuf,
@com_google_absl), so BUILD files written for a TF Serving fork resolve here too.
Headers come from the wheel's `tensorflow/include`; every symbol comes from the
wheel's `libtensorflow_framework.so.2` and `libtensorflow_cc.so.2`.
"""

_TEMPLATE_DIR = "//tools/pip_tensorflow"

def venv_python(rctx):
    """The interpreter of the project virtualenv, or $PYTHON_BIN_PATH (TF's convention)."""
    python = rctx.os.environ.get("PYTHON_BIN_PATH", "")
    if not python:
        workspace_dir = rctx.path(Label("//:WORKSPACE")).dirname
        python = "%s/.venv/bin/python3" % workspace_dir
    if not rctx.path(python).exists:
        fail("No Python at %s: run the build through tools/bazel, which creates .venv." % python)
    return python

def _locate(rctx):
    result = rctx.execute([venv_python(rctx), rctx.path(Label(_TEMPLATE_DIR + ":locate_packages.py"))])
    if result.return_code != 0:
        fail("Could not locate the pip TensorFlow: " + result.stderr)
    found = {}
    for line in result.stdout.splitlines():
        key, _, value = line.partition("=")
        found[key] = value
    return found

def _instantiate(rctx, component, files, substitutions):
    for path in files:
        rctx.template(
            path,
            Label("%s:%s/%s.in" % (_TEMPLATE_DIR, component, path)),
            substitutions,
            executable = False,
        )

_TENSORFLOW_FILES = [
    "BUILD",
    "tensorflow/BUILD",
    "tensorflow/tensorflow.bzl",
    "tensorflow/cc/BUILD",
    "tensorflow/core/BUILD",
    "tensorflow/core/kernels/BUILD",
    "tensorflow/core/platform/BUILD",
    "tensorflow/python/framework/BUILD",
]

def _pip_tensorflow_repository_impl(rctx):
    found = _locate(rctx)
    rctx.symlink(found["include_dir"], "include")
    for lib in ["libtensorflow_framework.so.2", "libtensorflow_cc.so.2"]:
        rctx.symlink("%s/%s" % (found["tensorflow_dir"], lib), lib)
    _instantiate(rctx, "org_tensorflow", _TENSORFLOW_FILES, {"%{TENSORFLOW_DIR}": found["tensorflow_dir"]})

pip_tensorflow_repository = repository_rule(
    implementation = _pip_tensorflow_repository_impl,
    environ = ["PYTHON_BIN_PATH"],
    local = True,
    doc = "@org_tensorflow: the pip TensorFlow's headers and shared libraries, with upstream's labels.",
)

def _pip_protobuf_repository_impl(rctx):
    found = _locate(rctx)
    rctx.symlink(found["include_dir"], "include")
    rctx.symlink(found["protoc"], "protoc")
    _instantiate(rctx, "com_google_protobuf", ["BUILD"], {})

pip_protobuf_repository = repository_rule(
    implementation = _pip_protobuf_repository_impl,
    environ = ["PYTHON_BIN_PATH"],
    local = True,
    doc = "@com_google_protobuf: TensorFlow's bundled protobuf headers and the protoc of that release.",
)

# The abseil targets BUILD files may name, by package. Each one is the whole of
# TensorFlow's bundled abseil: headers here, symbols in libtensorflow_framework.
_ABSL_TARGETS = {
    "absl/algorithm": ["algorithm", "container"],
    "absl/base": ["base", "core_headers"],
    "absl/cleanup": ["cleanup"],
    "absl/container": ["btree", "fixed_array", "flat_hash_map", "flat_hash_set", "inlined_vector", "node_hash_map"],
    "absl/flags": ["declare", "flag"],
    "absl/functional": ["any_invocable", "bind_front", "function_ref"],
    "absl/hash": ["hash"],
    "absl/log": ["check", "log"],
    "absl/memory": ["memory"],
    "absl/numeric": ["bits", "int128"],
    "absl/status": ["status", "statusor"],
    "absl/strings": ["cord", "str_format", "strings"],
    "absl/synchronization": ["synchronization"],
    "absl/time": ["time"],
    "absl/types": ["optional", "span", "variant"],
    "absl/utility": ["utility"],
}

def _pip_absl_repository_impl(rctx):
    found = _locate(rctx)
    rctx.symlink(found["include_dir"], "include")
    _instantiate(rctx, "com_google_absl", ["BUILD"], {})
    for package, targets in _ABSL_TARGETS.items():
        rctx.file(package + "/BUILD", "".join([
            'alias(name = "%s", actual = "//:absl", visibility = ["//visibility:public"])\n' % target
            for target in targets
        ]))

pip_absl_repository = repository_rule(
    implementation = _pip_absl_repository_impl,
    environ = ["PYTHON_BIN_PATH"],
    local = True,
    doc = "@com_google_absl: TensorFlow's bundled abseil under abseil's own labels.",
)
