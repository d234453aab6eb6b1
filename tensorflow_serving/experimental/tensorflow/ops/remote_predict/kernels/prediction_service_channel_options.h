// How the kernel asks a prediction-service stub to set up its channel. Kept
// apart from the gRPC transport so that a custom stub, or a test, can accept
// these options without linking gRPC.

#ifndef TENSORFLOW_SERVING_EXPERIMENTAL_TENSORFLOW_OPS_REMOTE_PREDICT_KERNELS_PREDICTION_SERVICE_CHANNEL_OPTIONS_H_
#define TENSORFLOW_SERVING_EXPERIMENTAL_TENSORFLOW_OPS_REMOTE_PREDICT_KERNELS_PREDICTION_SERVICE_CHANNEL_OPTIONS_H_

#include <string>

namespace tensorflow {
namespace serving {

// How to reach the server. The PEM strings are contents, not file names.
struct PredictionServiceChannelOptions {
  // The longest wait between two attempts to reconnect to a target that went
  // away. gRPC's own default, 120 s after a few failures, suits clients on the
  // internet; inside a cluster a restarted server should get calls again
  // within about a second.
  static constexpr int kDefaultMaxReconnectBackoffMillis = 1000;
  int max_reconnect_backoff_millis = kDefaultMaxReconnectBackoffMillis;

  // Whether a call that finds the target unreachable, or fails with
  // UNAVAILABLE, waits and retries within its deadline (gRPC's wait-for-ready
  // and retry policy) instead of failing at once. Predict is idempotent.
  bool retry_unavailable = false;

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
