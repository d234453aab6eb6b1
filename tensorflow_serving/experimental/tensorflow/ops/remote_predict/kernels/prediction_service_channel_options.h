// How the kernel asks a prediction-service stub to set up its channel. Kept
// apart from the gRPC transport so that a custom stub, or a test, can accept
// these options without linking gRPC.

#ifndef TENSORFLOW_SERVING_EXPERIMENTAL_TENSORFLOW_OPS_REMOTE_PREDICT_KERNELS_PREDICTION_SERVICE_CHANNEL_OPTIONS_H_
#define TENSORFLOW_SERVING_EXPERIMENTAL_TENSORFLOW_OPS_REMOTE_PREDICT_KERNELS_PREDICTION_SERVICE_CHANNEL_OPTIONS_H_

#include <string>

namespace tensorflow {
namespace serving {

// How to secure a channel. The PEM strings are contents, not file names.
struct PredictionServiceChannelOptions {
  // TLS instead of plaintext.
  bool use_tls = false;
  // Roots the server's certificate must chain to; empty: gRPC's default roots.
  std::string ssl_root_certs;
  // Client certificate chain and key for mutual TLS; both or neither.
  std::string ssl_client_cert;
  std::string ssl_client_key;
  // Name to verify the server's certificate against instead of the target's.
  std::string ssl_target_name_override;
};

}  // namespace serving
}  // namespace tensorflow

#endif  // TENSORFLOW_SERVING_EXPERIMENTAL_TENSORFLOW_OPS_REMOTE_PREDICT_KERNELS_PREDICTION_SERVICE_CHANNEL_OPTIONS_H_
