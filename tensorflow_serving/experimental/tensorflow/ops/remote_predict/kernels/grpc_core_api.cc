// Finds gRPC's C core: linked in, or loaded with RTLD_DEEPBIND (see the
// header).

#include "tensorflow_serving/experimental/tensorflow/ops/remote_predict/kernels/grpc_core_api.h"

#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"

namespace tensorflow {
namespace serving {
namespace grpc_core_api {
namespace {

// Debian 12's libgrpc29 first; the unversioned name of libgrpc-dev after.
constexpr const char* kLibraryNames[] = {"libgrpc.so.29", "libgrpc.so"};

struct Library {
  void* handle = nullptr;  // null when gRPC is linked in, or on failure
  absl::Status status;
};

const Library& GetLibrary() {
  static const Library* const library = [] {
    auto* loaded = new Library;
#ifndef REMOTE_PREDICT_OP_LINK_GRPC
    if (&grpc_init != nullptr) return loaded;  // linked into this process
    std::string errors;
    for (const char* name : kLibraryNames) {
      loaded->handle = dlopen(name, RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
      if (loaded->handle != nullptr) return loaded;
      const char* error = dlerror();
      absl::StrAppend(&errors, errors.empty() ? "" : "; ",
                      error != nullptr ? error : name);
    }
    loaded->status = absl::FailedPreconditionError(absl::StrCat(
        "TfServingRemotePredict needs gRPC's C core library (on Debian and "
        "Ubuntu: apt-get install libgrpc29, or libgrpc-dev), which could not "
        "be loaded: ",
        errors));
#endif
    return loaded;
  }();
  return *library;
}

}  // namespace

absl::Status EnsureLoaded() { return GetLibrary().status; }

void* LoadedSymbol(const char* name) {
  const Library& library = GetLibrary();
  void* symbol =
      library.handle != nullptr ? dlsym(library.handle, name) : nullptr;
  if (symbol == nullptr) {
    std::fprintf(
        stderr, "TfServingRemotePredict: gRPC function %s is missing: %s\n",
        name,
        library.status.ok() ? "not in the loaded libgrpc"
                            : std::string(library.status.message()).c_str());
    std::abort();
  }
  return symbol;
}

}  // namespace grpc_core_api
}  // namespace serving
}  // namespace tensorflow
