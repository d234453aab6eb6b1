// Fills the gRPC C core table: from the linked gRPC, or from a libgrpc loaded
// with RTLD_DEEPBIND (see the header).

#include "tensorflow_serving/experimental/tensorflow/ops/remote_predict/kernels/grpc_core_api.h"

#include <dlfcn.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace tensorflow {
namespace serving {
namespace grpc_core_api {

#ifndef REMOTE_PREDICT_OP_LINK_GRPC

namespace {
constexpr char kInstallHint[] =
    "TfServingRemotePredict needs gRPC's C core library, version 1.51 or "
    "later (on Debian and Ubuntu: apt-get install libgrpc29, or libgrpc-dev); "
    "a binary that links gRPC itself, such as a TF Serving fork's model "
    "server, should build the op with --define=remote_predict_op_link_grpc=true";
}  // namespace

absl::Status LoadFromLibrary(const std::vector<std::string>& library_names,
                             GrpcCore* core) {
  void* handle = nullptr;
  std::string loaded_name;
  std::string errors;
  for (const std::string& name : library_names) {
    handle = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
    if (handle != nullptr) {
      loaded_name = name;
      break;
    }
    const char* error = dlerror();
    absl::StrAppend(&errors, errors.empty() ? "" : "; ",
                    error != nullptr ? error : name);
  }
  if (handle == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat(kInstallHint, "; it could not be loaded: ", errors));
  }
  std::vector<std::string> missing;
#define REMOTE_PREDICT_GRPC_CORE_DLSYM(function)                          \
  core->function =                                                        \
      reinterpret_cast<decltype(&::function)>(dlsym(handle, #function)); \
  if (core->function == nullptr) missing.push_back(#function);
  REMOTE_PREDICT_GRPC_CORE_FUNCTIONS(REMOTE_PREDICT_GRPC_CORE_DLSYM)
#undef REMOTE_PREDICT_GRPC_CORE_DLSYM
  if (missing.empty()) return absl::OkStatus();
  *core = GrpcCore();  // all or nothing
  dlclose(handle);
  return absl::FailedPreconditionError(
      absl::StrCat("The library loaded as gRPC's C core, ", loaded_name,
                   ", lacks ", absl::StrJoin(missing, ", "), ". ",
                   kInstallHint));
}

#endif  // REMOTE_PREDICT_OP_LINK_GRPC

namespace {

struct Loaded {
  GrpcCore core;
  absl::Status status;
};

const Loaded& Get() {
  static const Loaded* const loaded = [] {
    auto* result = new Loaded;
#ifdef REMOTE_PREDICT_OP_LINK_GRPC
#define REMOTE_PREDICT_GRPC_CORE_LINK(function) \
  result->core.function = &::function;
    REMOTE_PREDICT_GRPC_CORE_FUNCTIONS(REMOTE_PREDICT_GRPC_CORE_LINK)
#undef REMOTE_PREDICT_GRPC_CORE_LINK
#else
    // Debian 12's libgrpc29 first; the unversioned name of libgrpc-dev after.
    result->status =
        LoadFromLibrary({"libgrpc.so.29", "libgrpc.so"}, &result->core);
#endif  // REMOTE_PREDICT_OP_LINK_GRPC
    return result;
  }();
  return *loaded;
}

}  // namespace

absl::Status EnsureLoaded() { return Get().status; }

const GrpcCore& Core() { return Get().core; }

}  // namespace grpc_core_api
}  // namespace serving
}  // namespace tensorflow
