// The op's one boundary to gRPC's C core: a table of the C core functions it
// uses, filled once per process, either from the gRPC linked into the binary
// or from a libgrpc loaded at run time. Write
// GRPC_CORE(grpc_call_cancel)(call, nullptr) instead of
// grpc_call_cancel(call, nullptr), after EnsureLoaded() returned OK.
//
// Two ways to fill the table, chosen when this library is compiled:
//
// - Loaded (the default, for the pip TensorFlow): the first EnsureLoaded()
//   dlopens the system libgrpc with RTLD_DEEPBIND. A system gRPC (Debian's)
//   uses OpenSSL, while libtensorflow_framework.so.2 exports its own BoringSSL
//   under the same symbol names (SSL_CTX_new, ...). Loaded the usual way,
//   libgrpc would bind to TensorFlow's and TLS would crash; RTLD_DEEPBIND makes
//   it and its OpenSSL resolve their symbols among themselves first. Nothing
//   here refers to a gRPC symbol, so no binary gets libgrpc as a dependency.
// - Linked (REMOTE_PREDICT_OP_LINK_GRPC, set by the Bazel setting
//   //tensorflow_serving/experimental/tensorflow/ops/remote_predict:link_grpc,
//   which a TF Serving fork turns on): the table holds the functions of the
//   gRPC linked into the binary, where gRPC and TensorFlow share one BoringSSL.
//
// Either way a failure is a Status from EnsureLoaded(): the op fails with a
// message that says what to install, and the process lives on.

#ifndef TENSORFLOW_SERVING_EXPERIMENTAL_TENSORFLOW_OPS_REMOTE_PREDICT_KERNELS_GRPC_CORE_API_H_
#define TENSORFLOW_SERVING_EXPERIMENTAL_TENSORFLOW_OPS_REMOTE_PREDICT_KERNELS_GRPC_CORE_API_H_

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>

#include <string>
#include <vector>

#include "absl/status/status.h"

// Every C core function the op (and its tests' server) calls, once.
#define REMOTE_PREDICT_GRPC_CORE_FUNCTIONS(X)  \
  X(grpc_init)                                 \
  X(grpc_shutdown)                             \
  X(grpc_channel_create)                       \
  X(grpc_channel_destroy)                      \
  X(grpc_channel_check_connectivity_state)     \
  X(grpc_channel_create_call)                  \
  X(grpc_channel_credentials_release)          \
  X(grpc_insecure_credentials_create)          \
  X(grpc_ssl_credentials_create_ex)            \
  X(grpc_completion_queue_create_for_next)     \
  X(grpc_completion_queue_next)                \
  X(grpc_completion_queue_shutdown)            \
  X(grpc_completion_queue_destroy)             \
  X(grpc_call_start_batch)                     \
  X(grpc_call_cancel)                          \
  X(grpc_call_unref)                           \
  X(grpc_metadata_array_init)                  \
  X(grpc_metadata_array_destroy)               \
  X(grpc_empty_slice)                          \
  X(grpc_slice_from_static_string)             \
  X(grpc_slice_from_copied_buffer)             \
  X(grpc_slice_from_copied_string)             \
  X(grpc_slice_malloc)                         \
  X(grpc_slice_new_with_user_data)             \
  X(grpc_slice_unref)                          \
  X(grpc_raw_byte_buffer_create)               \
  X(grpc_byte_buffer_destroy)                  \
  X(grpc_byte_buffer_length)                   \
  X(grpc_byte_buffer_reader_init)              \
  X(grpc_byte_buffer_reader_readall)           \
  X(grpc_byte_buffer_reader_peek)              \
  X(grpc_byte_buffer_reader_destroy)           \
  X(gpr_now)                                   \
  X(gpr_inf_future)                            \
  X(gpr_time_add)                              \
  X(gpr_time_sub)                              \
  X(gpr_time_from_micros)                      \
  X(gpr_timespec_to_micros)                    \
  X(gpr_convert_clock_type)                    \
  X(grpc_server_create)                        \
  X(grpc_server_register_completion_queue)     \
  X(grpc_server_add_http2_port)                \
  X(grpc_server_start)                         \
  X(grpc_server_request_call)                  \
  X(grpc_server_shutdown_and_notify)           \
  X(grpc_server_cancel_all_calls)              \
  X(grpc_server_destroy)                       \
  X(grpc_server_credentials_release)           \
  X(grpc_insecure_server_credentials_create)   \
  X(grpc_ssl_server_credentials_create_ex)     \
  X(grpc_call_details_init)                    \
  X(grpc_call_details_destroy)

namespace tensorflow {
namespace serving {
namespace grpc_core_api {

// The C core functions, each under its own name.
struct GrpcCore {
#define REMOTE_PREDICT_GRPC_CORE_MEMBER(function) \
  decltype(&::function) function = nullptr;
  REMOTE_PREDICT_GRPC_CORE_FUNCTIONS(REMOTE_PREDICT_GRPC_CORE_MEMBER)
#undef REMOTE_PREDICT_GRPC_CORE_MEMBER
};

// Fills the table once: OK, or an error that names what is missing and what
// to install. Call before GRPC_CORE; later calls return the same result.
absl::Status EnsureLoaded();

// The table; all its entries are set once EnsureLoaded() returned OK.
const GrpcCore& Core();

#ifndef REMOTE_PREDICT_OP_LINK_GRPC
// Fills `core` from the first of `library_names` that dlopen finds (with
// RTLD_DEEPBIND). EnsureLoaded() uses it with the system libgrpc's names; it is
// public so that tests can check its failures.
absl::Status LoadFromLibrary(const std::vector<std::string>& library_names,
                             GrpcCore* core);
#endif  // REMOTE_PREDICT_OP_LINK_GRPC

}  // namespace grpc_core_api
}  // namespace serving
}  // namespace tensorflow

// The gRPC C core function `function`.
#define GRPC_CORE(function) \
  (::tensorflow::serving::grpc_core_api::Core().function)

#endif  // TENSORFLOW_SERVING_EXPERIMENTAL_TENSORFLOW_OPS_REMOTE_PREDICT_KERNELS_GRPC_CORE_API_H_
