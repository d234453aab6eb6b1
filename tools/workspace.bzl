"""Declares every external repository of the workspace; none is downloaded."""

load("//tools/pip_tensorflow:repositories.bzl", "pip_absl_repository", "pip_protobuf_repository", "pip_tensorflow_repository")
load("//tools/python:toolchain.bzl", "venv_python_toolchain")
load("//tools/system_libraries:repositories.bzl", "system_library_repositories")

def tf_serving_workspace():
    # Bazel's default WORKSPACE suffix would download these four.
    native.local_repository(name = "platforms", path = "/usr/share/bazel/platforms")
    native.local_repository(name = "rules_java", path = "/usr/share/bazel/rules/java")
    native.local_repository(name = "rules_cc", path = "tools/stand_ins/rules_cc")
    native.local_repository(name = "remote_coverage_tools", path = "tools/stand_ins/remote_coverage_tools")

    venv_python_toolchain(name = "local_config_python")
    pip_tensorflow_repository(name = "org_tensorflow")
    pip_protobuf_repository(name = "com_google_protobuf")
    pip_absl_repository(name = "com_google_absl")
    system_library_repositories()
