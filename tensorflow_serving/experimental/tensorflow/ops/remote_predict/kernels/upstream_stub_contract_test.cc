// Runs the TfServingRemotePredict kernel on a stub that follows upstream
// TensorFlow Serving's stub contract and nothing more: a two-argument Create,
// an RPC handle type of its own with no TryCancel, and no gRPC in the binary.
// Stubs written for upstream's kernel must build and work unchanged.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tensorflow/cc/framework/scope.h"
#include "tensorflow/cc/ops/const_op.h"
#include "tensorflow/core/framework/graph.pb.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/protobuf/config.pb.h"
#include "tensorflow/core/public/session.h"
#include "tensorflow_serving/apis/predict.pb.h"
#include "tensorflow_serving/experimental/tensorflow/ops/remote_predict/cc/ops/remote_predict_op.h"
#include "tensorflow_serving/experimental/tensorflow/ops/remote_predict/kernels/remote_predict_op_kernel.h"

namespace tensorflow {
namespace serving {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Models the stub answers for.
constexpr char kMirrorModel[] = "mirror";      // outputN := inputN
constexpr char kOfflineModel[] = "offline";    // fails with UNAVAILABLE
constexpr char kOfflineMessage[] = "the shard is restarting";

// The handle of one call: a plain class, as upstream's contract allows. It
// counts live instances so that the test sees the kernel delete each one.
class LoopbackCall {
 public:
  LoopbackCall() { ++live; }
  ~LoopbackCall() { --live; }
  static std::atomic<int> live;
};
std::atomic<int> LoopbackCall::live{0};

// The last request the stub received, for the encoding tests.
PredictRequest& LastRequest() {
  static auto* request = new PredictRequest;
  return *request;
}

// Answers in the caller's thread, like an in-process service would.
class LoopbackPredictionService {
 public:
  static absl::Status Create(
      const std::string& target_address,
      std::unique_ptr<LoopbackPredictionService>* service) {
    service->reset(new LoopbackPredictionService);
    return absl::OkStatus();
  }

  absl::StatusOr<LoopbackCall*> CreateRpc(absl::Duration max_rpc_deadline) {
    return new LoopbackCall;
  }

  void Predict(LoopbackCall* rpc, PredictRequest* request,
               PredictResponse* response,
               std::function<void(absl::Status status)> callback) {
    LastRequest() = *request;
    if (request->model_spec().name() == kOfflineModel) {
      callback(absl::UnavailableError(kOfflineMessage));
      return;
    }
    *response->mutable_model_spec() = request->model_spec();
    AliasTensorMap& inputs = *request->mutable_inputs();
    AliasTensorMap& outputs = *response->mutable_outputs();
    outputs["output0"] = inputs["input0"];
    outputs["output1"] = inputs["input1"];
    callback(absl::OkStatus());
  }
};

// The kernel must see this stub as upstream's contract describes it.
static_assert(std::is_same_v<
              remote_predict_internal::RpcOf<LoopbackPredictionService>,
              LoopbackCall>);
static_assert(!remote_predict_internal::HasTryCancel<LoopbackCall>::value);
static_assert(!remote_predict_internal::AcceptsChannelOptions<
              LoopbackPredictionService>::value);

REGISTER_KERNEL_BUILDER(Name("TfServingRemotePredict").Device(DEVICE_CPU),
                        RemotePredictOp<LoopbackPredictionService>);

using RemotePredict = ops::TfServingRemotePredict;

// Sends input0 = [3, 4] and input1 = [5] and fetches output0 and output1 as
// int32 through a new session (so a new kernel).
absl::Status RunPredict(const RemotePredict::Attrs& attrs,
                        std::vector<Tensor>* outputs) {
  Scope scope = Scope::NewRootScope();
  auto predict = RemotePredict(
      scope.WithOpName("predict"),
      ops::Const(scope.WithOpName("in_aliases"), {"input0", "input1"}),
      {ops::Const(scope.WithOpName("a"), {3, 4}),
       ops::Const(scope.WithOpName("b"), {5})},
      ops::Const(scope.WithOpName("out_aliases"), {"output0", "output1"}),
      {DT_INT32, DT_INT32}, attrs);
  TF_RETURN_IF_ERROR(scope.status());
  GraphDef graph;
  TF_RETURN_IF_ERROR(scope.ToGraphDef(&graph));
  std::unique_ptr<Session> session(NewSession(SessionOptions()));
  TF_RETURN_IF_ERROR(session->Create(graph));
  return session->Run({}, {"predict:0", "predict:1", "predict:2", "predict:3"},
                      {}, outputs);
}

RemotePredict::Attrs Model(const std::string& name) {
  return RemotePredict::Attrs().TargetAddress("in-process").ModelName(name);
}

std::vector<int32_t> Ints(const Tensor& tensor) {
  const auto flat = tensor.flat<int32_t>();
  return std::vector<int32_t>(flat.data(), flat.data() + flat.size());
}

class UpstreamStubContractTest : public ::testing::Test {
 protected:
  void TearDown() override {
    absl::SetFlag(&FLAGS_remote_predict_op_use_tensor_content, true);
  }
};

TEST_F(UpstreamStubContractTest, CallsGoThroughTheStubAndHandlesAreDeleted) {
  std::vector<Tensor> outputs;
  const absl::Status status = RunPredict(Model(kMirrorModel), &outputs);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(outputs[0].scalar<int32_t>()(), 0);
  EXPECT_THAT(Ints(outputs[2]), ElementsAre(3, 4));
  EXPECT_THAT(Ints(outputs[3]), ElementsAre(5));
  EXPECT_EQ(LoopbackCall::live.load(), 0);
}

TEST_F(UpstreamStubContractTest, FlagDefaultPacksNumbers) {
  std::vector<Tensor> outputs;
  ASSERT_TRUE(RunPredict(Model(kMirrorModel), &outputs).ok());
  const TensorProto& sent = LastRequest().inputs().at("input0");
  EXPECT_EQ(sent.tensor_content().size(), 2 * sizeof(int32_t));
  EXPECT_EQ(sent.int_val_size(), 0);
}

TEST_F(UpstreamStubContractTest, UpstreamFlagSelectsTypedFields) {
  absl::SetFlag(&FLAGS_remote_predict_op_use_tensor_content, false);
  std::vector<Tensor> outputs;
  const absl::Status status = RunPredict(Model(kMirrorModel), &outputs);
  ASSERT_TRUE(status.ok()) << status;
  const TensorProto& sent = LastRequest().inputs().at("input0");
  EXPECT_TRUE(sent.tensor_content().empty());
  EXPECT_THAT(sent.int_val(), ElementsAre(3, 4));
  EXPECT_THAT(Ints(outputs[2]), ElementsAre(3, 4));
}

TEST_F(UpstreamStubContractTest, RpcErrorFailsTheOpNamingModelAndTarget) {
  std::vector<Tensor> outputs;
  const absl::Status status = RunPredict(Model(kOfflineModel), &outputs);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(status.message(),
              AllOf(HasSubstr(kOfflineMessage), HasSubstr("'offline'"),
                    HasSubstr("'in-process'")));
  EXPECT_EQ(LoopbackCall::live.load(), 0);
}

TEST_F(UpstreamStubContractTest, TlsAttrsOnAStubWithoutChannelOptionsFail) {
  std::vector<Tensor> outputs;
  const absl::Status status = RunPredict(
      Model(kMirrorModel).SslTargetNameOverride("shard.example"), &outputs);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(),
              AllOf(HasSubstr("ssl_*"), HasSubstr("'predict'"),
                    HasSubstr("PredictionServiceChannelOptions")));
}

TEST_F(UpstreamStubContractTest, RetryAttrOnAStubWithoutChannelOptionsFails) {
  std::vector<Tensor> outputs;
  const absl::Status status =
      RunPredict(Model(kMirrorModel).RetryUnavailable(true), &outputs);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("retry_unavailable"));
}

}  // namespace
}  // namespace serving
}  // namespace tensorflow
