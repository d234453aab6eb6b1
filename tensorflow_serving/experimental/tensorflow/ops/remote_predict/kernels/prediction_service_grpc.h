// The Remote Predict kernel's gRPC transport: asynchronous
// PredictionService/Predict calls over one channel built on gRPC's C core.
//
// The C core is used rather than gRPC C++ because the C++ library links its own
// protobuf, a second one beside TensorFlow's; here requests and responses are
// serialized with TensorFlow's protobuf and travel as raw bytes.
//
// Stubs with the same target, credentials and settings share one channel, and
// all calls of the process complete on a fixed pool of completion-queue
// threads, which run the callbacks; callers never block. The channel
// allows messages of any size, balances round-robin over several addresses, and
// speaks TLS when asked to.

#ifndef TENSORFLOW_SERVING_EXPERIMENTAL_TENSORFLOW_OPS_REMOTE_PREDICT_KERNELS_PREDICTION_SERVICE_GRPC_H_
#define TENSORFLOW_SERVING_EXPERIMENTAL_TENSORFLOW_OPS_REMOTE_PREDICT_KERNELS_PREDICTION_SERVICE_GRPC_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "tensorflow_serving/apis/predict.pb.h"
#include "tensorflow_serving/experimental/tensorflow/ops/remote_predict/kernels/prediction_service_channel_options.h"

struct grpc_call;

namespace tensorflow {
namespace serving {

// Checks that `target_address` is something gRPC can dial: `host:port`, or a
// URI with the dns, ipv4, ipv6, unix or unix-abstract scheme.
absl::Status ValidateTargetAddress(const std::string& target_address);

// The absl::StatusCode with the same meaning as gRPC status `grpc_code`.
absl::StatusCode StatusCodeFromGrpc(int grpc_code);

class PredictionServiceGrpc {
 public:
  // One Predict call: made by CreateRpc, started by Predict, and deleted by the
  // caller once Predict's callback has run.
  class Rpc {
   public:
    Rpc(const Rpc&) = delete;
    Rpc& operator=(const Rpc&) = delete;
    ~Rpc();

    // Cancels the call, or makes Predict fail at once if it has not started.
    // Thread-safe; the callback still runs, with CANCELLED unless the reply
    // came first.
    void TryCancel();

    absl::Duration timeout() const { return timeout_; }

   private:
    friend class PredictionServiceGrpc;
    explicit Rpc(absl::Duration timeout) : timeout_(timeout) {}

    const absl::Duration timeout_;
    absl::Mutex mu_;
    bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
    // Set while the call is on the wire.
    grpc_call* call_ ABSL_GUARDED_BY(mu_) = nullptr;
  };

  // Creates a plaintext client of `target_address`.
  static absl::Status Create(const std::string& target_address,
                             std::unique_ptr<PredictionServiceGrpc>* service);

  // Creates a client of `target_address` secured as `options` says. Fails with
  // INVALID_ARGUMENT, naming the target, when gRPC cannot use the address.
  static absl::Status Create(const std::string& target_address,
                             const PredictionServiceChannelOptions& options,
                             std::unique_ptr<PredictionServiceGrpc>* service);

  PredictionServiceGrpc(const PredictionServiceGrpc&) = delete;
  PredictionServiceGrpc& operator=(const PredictionServiceGrpc&) = delete;

  // Cancels this stub's calls in flight and returns once their callbacks
  // (with CANCELLED unless the reply came first) have run; on a
  // completion-queue thread, e.g. from one of those callbacks, it returns at
  // once and they run later.
  ~PredictionServiceGrpc();

  // A call whose deadline is `timeout` from now, kept to the microsecond.
  absl::StatusOr<Rpc*> CreateRpc(absl::Duration timeout);

  // Sends `request` and returns at once. `callback` runs exactly once, on a
  // completion-queue thread (or on this one if the call cannot start), after
  // `response` has been filled in when the status is OK. `rpc`, `request` and
  // `response` must stay alive until then. Once `request` is serialized (before
  // Predict returns) it is cleared, so that its tensors' memory is released
  // while the call is on the wire; send a copy to keep it.
  void Predict(Rpc* rpc, PredictRequest* request, PredictResponse* response,
               std::function<void(absl::Status status)> callback);

  const std::string& target_address() const;

  // How many gRPC channels the process has open: one per distinct target,
  // credentials and settings, whatever the number of stubs.
  static int OpenChannelCount();

  // Shared by the stubs of one target, credentials and settings.
  class Channel;
  // A call on the wire; run by the process's completion-queue threads.
  class Call;

 private:
  class InFlight;

  explicit PredictionServiceGrpc(std::shared_ptr<Channel> channel);

  static absl::StatusOr<std::shared_ptr<Channel>> OpenChannel(
      const std::string& target_address, const std::string& key,
      const PredictionServiceChannelOptions& options);

  // Calls in flight hold both too, so they may outlive this object.
  std::shared_ptr<Channel> channel_;
  std::shared_ptr<InFlight> in_flight_;
};

}  // namespace serving
}  // namespace tensorflow

#endif  // TENSORFLOW_SERVING_EXPERIMENTAL_TENSORFLOW_OPS_REMOTE_PREDICT_KERNELS_PREDICTION_SERVICE_GRPC_H_
