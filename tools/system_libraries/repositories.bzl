"""Repositories for C/C++ libraries that come from Debian packages.

The headers live in /usr/include, which the compiler searches already, so these
repositories only carry link flags and check that the package is installed.
"""

def _system_library_repository_impl(rctx):
    for path in rctx.attr.required_files:
        if not rctx.path(path).exists:
            fail("%s needs %s; install the Debian package '%s' (tools/bazel does)." % (
                rctx.name,
                path,
                rctx.attr.debian_package,
            ))
    rctx.template("BUILD", rctx.attr.build_file, executable = False)

system_library_repository = repository_rule(
    implementation = _system_library_repository_impl,
    attrs = {
        "build_file": attr.label(mandatory = True, allow_single_file = True),
        "debian_package": attr.string(mandatory = True),
        "required_files": attr.string_list(mandatory = True),
    },
    local = True,
)

def system_library_repositories():
    system_library_repository(
        name = "com_github_grpc_grpc",
        build_file = "//tools/system_libraries:grpc.BUILD",
        debian_package = "libgrpc-dev",
        required_files = ["/usr/include/grpc/grpc.h"],
    )
    system_library_repository(
        name = "com_google_googletest",
        build_file = "//tools/system_libraries:googletest.BUILD",
        debian_package = "libgtest-dev libgmock-dev",
        required_files = ["/usr/include/gtest/gtest.h", "/usr/include/gmock/gmock.h"],
    )
