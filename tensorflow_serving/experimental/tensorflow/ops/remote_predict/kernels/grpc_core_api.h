// Calls into gRPC's C core that work whether gRPC is linked in or must be
// loaded at run time. Write GRPC_CORE(grpc_call_cancel)(call, nullptr) instead
// of grpc_call_cancel(call, nullptr).
//
// Why: a system gRPC (Debian's libgrpc) uses OpenSSL, while TensorFlow's
// libtensorflow_framework.so.2 exports its own BoringSSL under the same symbol
// names (SSL_CTX_new, CRYPTO_get_ex_new_index, ...). Loaded the usual way,
// libgrpc binds to whichever comes first, which is TensorFlow's, and TLS
// crashes. So when no gRPC is linked into the process, the first use loads
// libgrpc with RTLD_DEEPBIND, which makes it and its OpenSSL resolve their
// symbols among themselves first. When a gRPC is linked in (a TensorFlow
// Serving build, where gRPC and TensorFlow share one BoringSSL), it is used
// directly. Every function used through GRPC_CORE is declared weak below, so
// referencing it does not make the linker record libgrpc as a dependency.
//
// Weak references do not pull members out of a static gRPC archive, so a
// binary whose only gRPC user is this op and which links gRPC statically
// should define REMOTE_PREDICT_OP_LINK_GRPC: calls then go straight to the
// linked functions.

#ifndef TENSORFLOW_SERVING_EXPERIMENTAL_TENSORFLOW_OPS_REMOTE_PREDICT_KERNELS_GRPC_CORE_API_H_
#define TENSORFLOW_SERVING_EXPERIMENTAL_TENSORFLOW_OPS_REMOTE_PREDICT_KERNELS_GRPC_CORE_API_H_

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>

#include "absl/status/status.h"

#ifndef REMOTE_PREDICT_OP_LINK_GRPC
// The client's functions.
#pragma weak grpc_init
#pragma weak grpc_shutdown
#pragma weak grpc_channel_create
#pragma weak grpc_channel_destroy
#pragma weak grpc_channel_check_connectivity_state
#pragma weak grpc_channel_create_call
#pragma weak grpc_channel_credentials_release
#pragma weak grpc_insecure_credentials_create
#pragma weak grpc_ssl_credentials_create_ex
#pragma weak grpc_completion_queue_create_for_next
#pragma weak grpc_completion_queue_next
#pragma weak grpc_completion_queue_shutdown
#pragma weak grpc_completion_queue_destroy
#pragma weak grpc_call_start_batch
#pragma weak grpc_call_cancel
#pragma weak grpc_call_unref
#pragma weak grpc_metadata_array_init
#pragma weak grpc_metadata_array_destroy
#pragma weak grpc_empty_slice
#pragma weak grpc_slice_from_static_string
#pragma weak grpc_slice_malloc
#pragma weak grpc_slice_unref
#pragma weak grpc_raw_byte_buffer_create
#pragma weak grpc_byte_buffer_destroy
#pragma weak grpc_byte_buffer_reader_init
#pragma weak grpc_byte_buffer_reader_readall
#pragma weak grpc_byte_buffer_reader_destroy
#pragma weak gpr_now
#pragma weak gpr_inf_future
#pragma weak gpr_time_add
#pragma weak gpr_time_from_micros
// Also used by the tests' server.
#pragma weak grpc_server_create
#pragma weak grpc_server_register_completion_queue
#pragma weak grpc_server_add_http2_port
#pragma weak grpc_server_start
#pragma weak grpc_server_request_call
#pragma weak grpc_server_shutdown_and_notify
#pragma weak grpc_server_cancel_all_calls
#pragma weak grpc_server_destroy
#pragma weak grpc_server_credentials_release
#pragma weak grpc_insecure_server_credentials_create
#pragma weak grpc_ssl_server_credentials_create_ex
#pragma weak grpc_call_details_init
#pragma weak grpc_call_details_destroy
#pragma weak grpc_slice_from_copied_buffer
#pragma weak grpc_slice_from_copied_string
#pragma weak gpr_convert_clock_type
#pragma weak gpr_time_sub
#pragma weak gpr_timespec_to_micros
#endif  // REMOTE_PREDICT_OP_LINK_GRPC

namespace tensorflow {
namespace serving {
namespace grpc_core_api {

// Makes gRPC's C core available: OK if it is linked in or could be loaded,
// otherwise an error that says what to install. Call before GRPC_CORE.
absl::Status EnsureLoaded();

// The loaded library's `name`; aborts if EnsureLoaded failed or the library
// lacks it (the functions above are in every gRPC since 1.51).
void* LoadedSymbol(const char* name);

template <typename Function>
Function Resolve(Function linked, const char* name) {
  return linked != nullptr ? linked
                           : reinterpret_cast<Function>(LoadedSymbol(name));
}

}  // namespace grpc_core_api
}  // namespace serving
}  // namespace tensorflow

// The gRPC C core function `function`, resolved once per call site.
#ifdef REMOTE_PREDICT_OP_LINK_GRPC
#define GRPC_CORE(function) (function)
#else
#define GRPC_CORE(function)                                                  \
  ([]() {                                                                    \
    static const auto resolved =                                             \
        ::tensorflow::serving::grpc_core_api::Resolve(&function, #function); \
    return resolved;                                                         \
  }())
#endif  // REMOTE_PREDICT_OP_LINK_GRPC

#endif  // TENSORFLOW_SERVING_EXPERIMENTAL_TENSORFLOW_OPS_REMOTE_PREDICT_KERNELS_GRPC_CORE_API_H_
