"""@local_config_python: a Python toolchain running the project virtualenv.

py_binary and py_test then use .venv's interpreter (with the pinned TensorFlow)
without anyone activating it.
"""

load("//tools/pip_tensorflow:repositories.bzl", "venv_python")

def _venv_python_toolchain_impl(rctx):
    rctx.template(
        "BUILD",
        Label("//tools/python:toolchain.BUILD.in"),
        {"%{PYTHON}": venv_python(rctx)},
        executable = False,
    )

venv_python_toolchain = repository_rule(
    implementation = _venv_python_toolchain_impl,
    environ = ["PYTHON_BIN_PATH"],
    local = True,
)
