// The TfServingRemotePredict kernel: turns its inputs into a PredictRequest,
// sends it through a prediction-service stub without blocking, and turns the
// PredictResponse into its outputs.
//
// The kernel is a template on the stub type, with upstream TensorFlow Serving's
// contract, so a stub written for upstream's kernel (another RPC layer, an
// in-process service, a test double) plugs in unchanged. A stub type `Stub`
// provides:
//
//   static absl::Status Stub::Create(const std::string& target_address,
//                                    std::unique_ptr<Stub>*);
//   absl::StatusOr<R*> CreateRpc(absl::Duration timeout);  // R: any type
//   // Runs `callback` exactly once, on any thread, once `response` is filled.
//   void Predict(R*, PredictRequest*, PredictResponse*,
//                std::function<void(absl::Status)> callback);
//
// The kernel deletes the R* after the callback. Two optional extras:
//   - `void R::TryCancel()`, thread-safe: then cancelling the step cancels
//     the call (without it, the call runs to its reply or its deadline);
//   - a three-argument `Create(target, const PredictionServiceChannelOptions&,
//     std::unique_ptr<Stub>*)`: then the kernel passes the channel settings
//     from its attrs (TLS, ...), and prefers it to the two-argument one. A stub
//     without it cannot honour the ssl_* attrs, so setting them fails.
//
// Everything lives in this header because the tests compile it against their
// own stub and must not link the registration of the gRPC kernel.

#ifndef TENSORFLOW_SERVING_EXPERIMENTAL_TENSORFLOW_OPS_REMOTE_PREDICT_KERNELS_REMOTE_PREDICT_OP_KERNEL_H_
#define TENSORFLOW_SERVING_EXPERIMENTAL_TENSORFLOW_OPS_REMOTE_PREDICT_KERNELS_REMOTE_PREDICT_OP_KERNEL_H_

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "tensorflow/core/framework/cancellation.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/framework/tensor.pb.h"
#include "tensorflow/core/framework/types.h"
#include "google/protobuf/map.h"
#include "tensorflow/core/platform/env.h"
#include "tensorflow_serving/apis/predict.pb.h"
#include "tensorflow_serving/experimental/tensorflow/ops/remote_predict/kernels/prediction_service_channel_options.h"
#include "tensorflow_serving/experimental/tensorflow/ops/remote_predict/kernels/remote_predict_metrics.h"

// Upstream's switch between packed tensor_content (true) and the typed
// repeated fields (false) for numeric inputs; defined with the op
// (ops/remote_predict_op.cc). Here it defaults to true, the packed encoding.
// Read on every call, unless the kernel's process sets kUseTensorContentEnvVar.
ABSL_DECLARE_FLAG(bool, remote_predict_op_use_tensor_content);

namespace tensorflow {
namespace serving {

// PredictRequest.inputs and PredictResponse.outputs, as upstream names them.
typedef google::protobuf::Map<std::string, TensorProto> AliasTensorMap;

// Overrides --remote_predict_op_use_tensor_content for the kernels built while
// it is set: "true"/"1" packs numbers into TensorProto.tensor_content,
// "false"/"0" uses the typed repeated fields. Strings always use the repeated
// field. It lets a process (e.g. Python, which has no absl command line) choose
// without code.
inline constexpr char kUseTensorContentEnvVar[] =
    "TF_SERVING_REMOTE_PREDICT_USE_TENSOR_CONTENT";

namespace remote_predict_internal {

// The value of kUseTensorContentEnvVar; nullopt when it is unset or empty.
inline absl::StatusOr<std::optional<bool>> UseTensorContentFromEnv() {
  const char* value = std::getenv(kUseTensorContentEnvVar);
  if (value == nullptr || *value == '\0') return std::nullopt;
  const std::string lowered = absl::AsciiStrToLower(value);
  if (lowered == "1" || lowered == "true") return true;
  if (lowered == "0" || lowered == "false") return false;
  return absl::InvalidArgumentError(
      absl::StrCat(kUseTensorContentEnvVar, "='", value,
                   "' is not a boolean; set it to true (packed "
                   "tensor_content) or false (typed repeated fields)"));
}

// Reads the PEM file an ssl_* attr names; empty path, empty contents.
inline absl::Status ReadPemAttr(OpKernelConstruction* context, const char* attr,
                                std::string* contents) {
  std::string path;
  TF_RETURN_IF_ERROR(context->GetAttr(attr, &path));
  contents->clear();
  if (path.empty()) return absl::OkStatus();
  const absl::Status read = ReadFileToString(Env::Default(), path, contents);
  if (!read.ok()) {
    return absl::Status(read.code(), absl::StrCat("Cannot read ", attr, " '",
                                                  path, "': ", read.message()));
  }
  if (contents->empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(attr, " '", path, "' is empty; it should hold PEM data"));
  }
  return absl::OkStatus();
}

inline absl::Status ChannelOptionsFromAttrs(
    OpKernelConstruction* context, PredictionServiceChannelOptions* options) {
  TF_RETURN_IF_ERROR(
      ReadPemAttr(context, "ssl_root_certs_file", &options->ssl_root_certs));
  TF_RETURN_IF_ERROR(
      ReadPemAttr(context, "ssl_client_cert_file", &options->ssl_client_cert));
  TF_RETURN_IF_ERROR(
      ReadPemAttr(context, "ssl_client_key_file", &options->ssl_client_key));
  TF_RETURN_IF_ERROR(context->GetAttr("ssl_target_name_override",
                                      &options->ssl_target_name_override));
  if (options->ssl_client_cert.empty() != options->ssl_client_key.empty()) {
    return absl::InvalidArgumentError(
        "Mutual TLS needs both ssl_client_cert_file and ssl_client_key_file; "
        "set both or neither");
  }
  options->use_tls = !options->ssl_root_certs.empty() ||
                     !options->ssl_client_cert.empty() ||
                     !options->ssl_target_name_override.empty();
  int64_t max_backoff;
  TF_RETURN_IF_ERROR(context->GetAttr("max_reconnect_backoff_millis",
                                      &max_backoff));
  if (max_backoff <= 0 || max_backoff > INT32_MAX) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_reconnect_backoff_millis is ", max_backoff,
        "; it must be a positive number of milliseconds (default ",
        PredictionServiceChannelOptions::kDefaultMaxReconnectBackoffMillis,
        ")"));
  }
  options->max_reconnect_backoff_millis = static_cast<int>(max_backoff);
  TF_RETURN_IF_ERROR(
      context->GetAttr("retry_unavailable", &options->retry_unavailable));
  return absl::OkStatus();
}

// The RPC type of stub `Stub`: what its CreateRpc returns a pointer to.
template <typename Stub>
using RpcOf = std::remove_pointer_t<typename decltype(std::declval<Stub&>().CreateRpc(
    std::declval<absl::Duration>()))::value_type>;

// Whether `Rpc` has a TryCancel() the kernel can call on step cancellation.
template <typename Rpc, typename = void>
struct HasTryCancel : std::false_type {};
template <typename Rpc>
struct HasTryCancel<Rpc, std::void_t<decltype(std::declval<Rpc&>().TryCancel())>>
    : std::true_type {};

// Whether `Stub` has the three-argument Create that takes channel options.
template <typename Stub, typename = void>
struct AcceptsChannelOptions : std::false_type {};
template <typename Stub>
struct AcceptsChannelOptions<
    Stub, std::void_t<decltype(Stub::Create(
              std::declval<const std::string&>(),
              std::declval<const PredictionServiceChannelOptions&>(),
              std::declval<std::unique_ptr<Stub>*>()))>> : std::true_type {};

// Creates the stub through the richest Create it has. A stub with only
// upstream's two-argument Create gets no options, so asking for TLS fails.
template <typename Stub>
absl::Status CreateStub(const std::string& target_address,
                        const PredictionServiceChannelOptions& options,
                        absl::string_view kernel_name,
                        std::unique_ptr<Stub>* stub) {
  if constexpr (AcceptsChannelOptions<Stub>::value) {
    return Stub::Create(target_address, options, stub);
  } else {
    const PredictionServiceChannelOptions defaults;
    if (options.use_tls || options.retry_unavailable !=
                               defaults.retry_unavailable ||
        options.max_reconnect_backoff_millis !=
            defaults.max_reconnect_backoff_millis) {
      return absl::InvalidArgumentError(absl::StrCat(
          "TfServingRemotePredict '", kernel_name,
          "' sets ssl_*, retry_unavailable or max_reconnect_backoff_millis, "
          "but the prediction-service stub it is registered with has no "
          "Create(target, PredictionServiceChannelOptions, stub) to receive "
          "them; leave those attrs at their defaults or give the stub that "
          "Create"));
    }
    return Stub::Create(target_address, stub);
  }
}

// The time the RPC may take: max_rpc_deadline_millis, cut to what is left of
// the step at `now` when the runtime knows the step's deadline. `now` is a
// parameter so that tests can pin the clock.
inline absl::Duration RpcTimeout(int64_t max_rpc_deadline_millis,
                                 std::optional<absl::Time> step_deadline,
                                 absl::Time now) {
  absl::Duration timeout = absl::Milliseconds(max_rpc_deadline_millis);
  if (step_deadline.has_value()) {
    timeout = std::min(timeout, *step_deadline - now);
  }
  return std::max(timeout, absl::ZeroDuration());
}

// Fills `request`'s inputs from the aliases and tensors.
inline absl::Status AddInputs(const Tensor& aliases_tensor,
                              const OpInputList& tensors,
                              bool use_tensor_content,
                              PredictRequest* request) {
  const auto aliases = aliases_tensor.flat<tstring>();
  if (aliases.size() != tensors.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("'input_tensors' should be equal in length to "
                     "'input_tensor_aliases'. Length of 'input_tensors': ",
                     tensors.size(),
                     ", length of 'input_tensor_aliases': ", aliases.size()));
  }
  auto& inputs = *request->mutable_inputs();
  for (int i = 0; i < tensors.size(); ++i) {
    const std::string alias(aliases(i));
    if (inputs.contains(alias)) {
      return absl::InvalidArgumentError(
          absl::StrCat("Input alias '", alias,
                       "' appears more than once in 'input_tensor_aliases'"));
    }
    TensorProto& proto = inputs[alias];
    if (use_tensor_content && DataTypeCanUseMemcpy(tensors[i].dtype())) {
      tensors[i].AsProtoTensorContent(&proto);
    } else {
      tensors[i].AsProtoField(&proto);
    }
  }
  return absl::OkStatus();
}

// The response tensor for `alias`, checked against the dtype the graph expects.
inline absl::StatusOr<Tensor> OutputFromResponse(
    const PredictResponse& response, const std::string& alias,
    DataType expected, absl::string_view model_description) {
  const auto found = response.outputs().find(alias);
  if (found == response.outputs().end()) {
    std::vector<std::string> returned;
    for (const auto& [name, unused] : response.outputs()) {
      returned.push_back(name);
    }
    std::sort(returned.begin(), returned.end());
    return absl::InvalidArgumentError(absl::StrCat(
        "The response of ", model_description, " has no output '", alias,
        "' (it returned [", absl::StrJoin(returned, ", "),
        "]); check output_tensor_aliases against the model's signature"));
  }
  const TensorProto& proto = found->second;
  if (proto.dtype() != expected) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Output '", alias, "' of ", model_description, " has dtype ",
        DataTypeString(proto.dtype()), " but output_types expects ",
        DataTypeString(expected), "; make output_types match the signature"));
  }
  Tensor tensor;
  if (!tensor.FromProto(proto)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Output '", alias, "' of ", model_description, " is not a valid ",
        DataTypeString(expected), " TensorProto"));
  }
  return tensor;
}

}  // namespace remote_predict_internal

template <typename PredictionServiceStubType>
class RemotePredictOp : public AsyncOpKernel {
 public:
  explicit RemotePredictOp(OpKernelConstruction* context)
      : AsyncOpKernel(context) {
    OP_REQUIRES_OK(context,
                   context->GetAttr("target_address", &target_address_));
    OP_REQUIRES_OK(context, context->GetAttr("model_name", &model_name_));
    OP_REQUIRES_OK(context, context->GetAttr("model_version", &model_version_));
    OP_REQUIRES_OK(context, context->GetAttr("fail_op_on_rpc_error",
                                             &fail_op_on_rpc_error_));
    OP_REQUIRES_OK(context, context->GetAttr("max_rpc_deadline_millis",
                                             &max_rpc_deadline_millis_));
    OP_REQUIRES_OK(context,
                   context->GetAttr("signature_name", &signature_name_));
    OP_REQUIRES_OK(context, context->GetAttr("output_types", &output_types_));
    OP_REQUIRES(context, !model_name_.empty(),
                absl::InvalidArgumentError(absl::StrCat(
                    "TfServingRemotePredict '", name(),
                    "' has no model_name; set it to the remote model's name")));
    OP_REQUIRES(context, max_rpc_deadline_millis_ > 0,
                absl::InvalidArgumentError(absl::StrCat(
                    "max_rpc_deadline_millis of TfServingRemotePredict '",
                    name(), "' is ", max_rpc_deadline_millis_,
                    "; it must be a positive number of milliseconds")));
    model_description_ =
        absl::StrCat("model '", model_name_, "' at '", target_address_, "'");

    absl::StatusOr<std::optional<bool>> use_tensor_content =
        remote_predict_internal::UseTensorContentFromEnv();
    OP_REQUIRES_OK(context, use_tensor_content.status());
    env_use_tensor_content_ = *use_tensor_content;

    PredictionServiceChannelOptions channel_options;
    OP_REQUIRES_OK(context, remote_predict_internal::ChannelOptionsFromAttrs(
                                context, &channel_options));
    OP_REQUIRES_OK(context, remote_predict_internal::CreateStub(
                                target_address_, channel_options, name(),
                                &prediction_service_));
  }

  void ComputeAsync(OpKernelContext* context, DoneCallback done) override {
    auto call = std::make_unique<Call>();
    call->context = context;
    call->done = std::move(done);

    OpInputList input_tensors;
    OP_REQUIRES_OK_ASYNC(context,
                         context->input_list("input_tensors", &input_tensors),
                         call->done);
    // Inputs are [input_tensor_aliases, input_tensors...,
    // output_tensor_aliases].
    const auto output_aliases =
        context->input(1 + input_tensors.size()).flat<tstring>();
    OP_REQUIRES_ASYNC(
        context,
        output_aliases.size() == static_cast<int64_t>(output_types_.size()),
        absl::InvalidArgumentError(absl::StrCat(
            "'output_types' should be equal in length to "
            "'output_tensor_aliases'. Length of 'output_types': ",
            output_types_.size(),
            ", length of 'output_tensor_aliases': ", output_aliases.size())),
        call->done);

    PredictRequest& request = call->request;
    request.mutable_model_spec()->set_name(model_name_);
    request.mutable_model_spec()->set_signature_name(signature_name_);
    if (model_version_ >= 0) {
      request.mutable_model_spec()->mutable_version()->set_value(
          model_version_);
    }
    OP_REQUIRES_OK_ASYNC(
        context,
        remote_predict_internal::AddInputs(context->input(0), input_tensors,
                                           UseTensorContent(), &request),
        call->done);
    for (int i = 0; i < output_aliases.size(); ++i) {
      call->output_aliases.emplace_back(output_aliases(i));
      request.add_output_filter(call->output_aliases.back());
    }

    call->timeout = remote_predict_internal::RpcTimeout(
        max_rpc_deadline_millis_, context->deadline(), absl::Now());
    auto rpc = prediction_service_->CreateRpc(call->timeout);
    OP_REQUIRES_ASYNC(
        context, rpc.ok(),
        absl::Status(rpc.status().code(),
                     absl::StrCat("Cannot prepare the call to ",
                                  model_description_, ": ",
                                  rpc.status().message())),
        call->done);
    call->rpc.reset(*rpc);

    // Cancelling the step (which is also how a session enforces
    // RunOptions.timeout_in_ms) cancels the RPC, when the stub's RPC type can
    // be cancelled. The callback shares the Rpc so that it stays valid
    // whichever of cancellation and completion wins.
    if constexpr (remote_predict_internal::HasTryCancel<Rpc>::value) {
      CancellationManager* cancellation = context->cancellation_manager();
      if (cancellation != nullptr) {
        call->cancellation = cancellation;
        call->token = cancellation->get_cancellation_token();
        std::shared_ptr<Rpc> rpc_to_cancel = call->rpc;
        const bool registered = cancellation->RegisterCallback(
            call->token, [rpc_to_cancel] { rpc_to_cancel->TryCancel(); });
        OP_REQUIRES_ASYNC(
            context, registered,
            absl::CancelledError(absl::StrCat(
                "The step was cancelled before calling ", model_description_)),
            call->done);
      }
    }

    call->request_bytes = static_cast<int64_t>(request.ByteSizeLong());
    call->start = absl::Now();
    Call* pending = call.release();
    prediction_service_->Predict(
        pending->rpc.get(), &pending->request, &pending->response,
        [this, pending](absl::Status status) {
          std::unique_ptr<Call> finished(pending);
          if (finished->cancellation != nullptr) {
            finished->cancellation->TryDeregisterCallback(finished->token);
          }
          remote_predict_metrics::RecordCall(
              target_address_, model_name_, status,
              absl::Now() - finished->start, finished->request_bytes,
              status.ok() ? static_cast<int64_t>(
                                finished->response.ByteSizeLong())
                          : 0);
          const absl::Status finished_status = Finish(*finished, status);
          if (!finished_status.ok()) {
            finished->context->CtxFailure(__FILE__, __LINE__, finished_status);
          }
          finished->done();
        });
  }

 private:
  using Rpc = remote_predict_internal::RpcOf<PredictionServiceStubType>;

  bool UseTensorContent() const {
    return env_use_tensor_content_.has_value()
               ? *env_use_tensor_content_
               : absl::GetFlag(FLAGS_remote_predict_op_use_tensor_content);
  }

  // What one ComputeAsync needs until its callback has run.
  struct Call {
    OpKernelContext* context = nullptr;
    DoneCallback done;
    PredictRequest request;
    PredictResponse response;
    std::vector<std::string> output_aliases;
    absl::Duration timeout;
    absl::Time start;
    int64_t request_bytes = 0;
    std::shared_ptr<Rpc> rpc;
    CancellationManager* cancellation = nullptr;
    CancellationToken token = CancellationManager::kInvalidToken;
  };

  // Sets the outputs from the RPC's status and response; an error fails the op
  // unless fail_op_on_rpc_error is false. Either way the error names the model
  // and the target.
  absl::Status Finish(Call& call, const absl::Status& raw_rpc_status) {
    OpKernelContext* context = call.context;
    absl::Status rpc_status = raw_rpc_status;
    if (!rpc_status.ok()) {
      rpc_status = absl::Status(
          rpc_status.code(),
          absl::StrCat("Remote Predict of ", model_description_, " failed",
                       FailureContext(call, rpc_status), ": ",
                       rpc_status.message()));
      if (fail_op_on_rpc_error_) return rpc_status;
    }
    Tensor* status_code;
    TF_RETURN_IF_ERROR(
        context->allocate_output(0, TensorShape({}), &status_code));
    status_code->scalar<int32_t>()() = static_cast<int32_t>(rpc_status.code());
    Tensor* status_message;
    TF_RETURN_IF_ERROR(
        context->allocate_output(1, TensorShape({}), &status_message));
    status_message->scalar<tstring>()() = std::string(rpc_status.message());
    OpOutputList outputs;
    TF_RETURN_IF_ERROR(context->output_list("output_tensors", &outputs));

    if (!rpc_status.ok()) {
      // Empty tensors stand in for the outputs, so downstream ops still run
      // and can branch on status_code.
      for (int i = 0; i < outputs.size(); ++i) {
        Tensor* empty;
        TF_RETURN_IF_ERROR(outputs.allocate(i, TensorShape({0}), &empty));
      }
      return absl::OkStatus();
    }
    for (int i = 0; i < outputs.size(); ++i) {
      absl::StatusOr<Tensor> output =
          remote_predict_internal::OutputFromResponse(
              call.response, call.output_aliases[i], output_types_[i],
              model_description_);
      TF_RETURN_IF_ERROR(output.status());
      outputs.set(i, *std::move(output));
    }
    return absl::OkStatus();
  }

  // Why an RPC likely failed, when the kernel knows more than gRPC says.
  std::string FailureContext(const Call& call, const absl::Status& status) {
    if (call.cancellation != nullptr && call.cancellation->IsCancelled()) {
      return " because the step was cancelled (or ran past "
             "RunOptions.timeout_in_ms)";
    }
    if (absl::IsDeadlineExceeded(status)) {
      return absl::StrCat(" within its deadline of ",
                          absl::ToDoubleMilliseconds(call.timeout), " ms");
    }
    return "";
  }

  std::string target_address_;
  std::string model_name_;
  std::string model_description_;
  int64_t model_version_ = -1;
  bool fail_op_on_rpc_error_ = true;
  int64_t max_rpc_deadline_millis_ = 0;
  std::string signature_name_;
  DataTypeVector output_types_;
  // Set when kUseTensorContentEnvVar was set as the kernel was built.
  std::optional<bool> env_use_tensor_content_;
  std::unique_ptr<PredictionServiceStubType> prediction_service_;
};

}  // namespace serving
}  // namespace tensorflow

#endif  // TENSORFLOW_SERVING_EXPERIMENTAL_TENSORFLOW_OPS_REMOTE_PREDICT_KERNELS_REMOTE_PREDICT_OP_KERNEL_H_
