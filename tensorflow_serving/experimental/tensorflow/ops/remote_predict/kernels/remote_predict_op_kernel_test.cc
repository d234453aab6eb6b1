// Tests the TfServingRemotePredict kernel in real TensorFlow sessions, with the
// kernel registered on a stub prediction service that needs no server. The
// stub records every request and deadline and answers according to the model
// name, so each test says what the "server" does by choosing a model.

#include "tensorflow_serving/experimental/tensorflow/ops/remote_predict/kernels/remote_predict_op_kernel.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>  // NOLINT(build/c++11)
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "tensorflow/cc/framework/scope.h"
#include "tensorflow/cc/ops/const_op.h"
#include "tensorflow/core/framework/graph.pb.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/lib/monitoring/collected_metrics.h"
#include "tensorflow/core/lib/monitoring/collection_registry.h"
#include "tensorflow/core/platform/env.h"
#include "tensorflow/core/protobuf/config.pb.h"
#include "tensorflow/core/public/session.h"
#include "tensorflow_serving/apis/predict.pb.h"
#include "tensorflow_serving/experimental/tensorflow/ops/remote_predict/cc/ops/remote_predict_op.h"

namespace tensorflow {
namespace serving {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Model names that choose the stub's answer.
constexpr char kEchoModel[] = "echo";             // output<i> := input<i>
constexpr char kAbortedModel[] = "aborted";       // fails with ABORTED
constexpr char kNoOutputsModel[] = "no_outputs";  // OK, but returns nothing
constexpr char kFloatModel[] = "float";           // outputs are all float
constexpr char kHoldModel[] = "hold";             // answers only when cancelled
constexpr char kAbortedMessage[] = "Aborted: the model is being reloaded";
// A target whose stub cannot prepare calls (CreateRpc fails).
constexpr char kNoRpcTarget[] = "no-rpc:8500";
// How long a held call waits for cancellation before giving up, so that a
// kernel that never cancels fails the test instead of hanging it.
constexpr absl::Duration kHoldLimit = absl::Seconds(30);

// What the stub saw; shared by all its instances because the kernel makes
// its own.
struct StubLog {
  absl::Mutex mu;
  std::vector<std::string> targets;
  std::vector<PredictionServiceChannelOptions> channel_options;
  std::vector<absl::Duration> timeouts;
  std::vector<PredictRequest> requests;
  int cancellations = 0;

  void Clear() {
    absl::MutexLock lock(&mu);
    targets.clear();
    channel_options.clear();
    timeouts.clear();
    requests.clear();
    cancellations = 0;
  }
};

StubLog& Log() {
  static auto* log = new StubLog;
  return *log;
}

class StubPredictionService {
 public:
  class Rpc {
   public:
    void TryCancel() {
      if (!cancelled_.HasBeenNotified()) cancelled_.Notify();
    }
    absl::Notification& cancelled() { return cancelled_; }

   private:
    absl::Notification cancelled_;
  };

  static absl::Status Create(const std::string& target_address,
                             const PredictionServiceChannelOptions& options,
                             std::unique_ptr<StubPredictionService>* service) {
    if (target_address == "unreachable:0") {
      return absl::InvalidArgumentError(
          "Invalid target_address 'unreachable:0'");
    }
    absl::MutexLock lock(&Log().mu);
    Log().targets.push_back(target_address);
    Log().channel_options.push_back(options);
    service->reset(new StubPredictionService(target_address == kNoRpcTarget));
    return absl::OkStatus();
  }

  ~StubPredictionService() {
    for (std::thread& thread : holders_) thread.join();
  }

  absl::StatusOr<Rpc*> CreateRpc(absl::Duration timeout) {
    if (fail_create_rpc_) {
      return absl::ResourceExhaustedError("no call slots left");
    }
    absl::MutexLock lock(&Log().mu);
    Log().timeouts.push_back(timeout);
    return new Rpc;
  }

  void Predict(Rpc* rpc, PredictRequest* request, PredictResponse* response,
               std::function<void(absl::Status)> callback) {
    {
      absl::MutexLock lock(&Log().mu);
      Log().requests.push_back(*request);
    }
    const std::string& model = request->model_spec().name();
    if (model == kAbortedModel) {
      callback(absl::AbortedError(kAbortedMessage));
      return;
    }
    if (model == kHoldModel) {
      // Like a server that never answers: only cancellation ends the call,
      // and the callback comes from another thread, as gRPC's would.
      holders_.emplace_back([rpc, callback = std::move(callback)] {
        if (!rpc->cancelled().WaitForNotificationWithTimeout(kHoldLimit)) {
          callback(absl::DeadlineExceededError("the kernel never cancelled"));
          return;
        }
        {
          absl::MutexLock lock(&Log().mu);
          ++Log().cancellations;
        }
        callback(absl::CancelledError("Cancelled"));
      });
      return;
    }
    *response->mutable_model_spec() = request->model_spec();
    if (model != kNoOutputsModel) {
      for (const std::string& output : request->output_filter()) {
        const std::string input = "input" + output.substr(strlen("output"));
        TensorProto proto = request->inputs().at(input);
        if (model == kFloatModel) {
          Tensor as_float(DT_FLOAT, TensorShape({1}));
          as_float.flat<float>()(0) = 1.5f;
          as_float.AsProtoTensorContent(&proto);
        }
        (*response->mutable_outputs())[output] = proto;
      }
    }
    callback(absl::OkStatus());
  }

 private:
  explicit StubPredictionService(bool fail_create_rpc)
      : fail_create_rpc_(fail_create_rpc) {}

  const bool fail_create_rpc_;
  std::vector<std::thread> holders_;
};

REGISTER_KERNEL_BUILDER(Name("TfServingRemotePredict").Device(DEVICE_CPU),
                        RemotePredictOp<StubPredictionService>);

using RemotePredict = ops::TfServingRemotePredict;

// A graph with one TfServingRemotePredict that sends input0 = [1, 2] and
// input1 = ["a", "b"] and fetches output0 and output1.
struct Graph {
  GraphDef graph_def;
  std::vector<std::string> fetches;
};

absl::StatusOr<Graph> BuildGraph(
    const RemotePredict::Attrs& attrs,
    const DataTypeSlice& output_types = {DT_INT32, DT_STRING},
    std::vector<std::string> input_aliases = {"input0", "input1"}) {
  Scope scope = Scope::NewRootScope();
  Tensor alias_values(
      DT_STRING, TensorShape({static_cast<int64_t>(input_aliases.size())}));
  for (size_t i = 0; i < input_aliases.size(); ++i) {
    alias_values.flat<tstring>()(i) = input_aliases[i];
  }
  auto aliases = ops::Const(scope.WithOpName("input_aliases"),
                            Input::Initializer(alias_values));
  auto numbers = ops::Const(scope.WithOpName("numbers"), {1, 2});
  auto words = ops::Const(scope.WithOpName("words"), {"a", "b"});
  auto output_aliases =
      ops::Const(scope.WithOpName("output_aliases"), {"output0", "output1"});
  auto predict =
      RemotePredict(scope.WithOpName("predict"), aliases, {numbers, words},
                    output_aliases, output_types, attrs);
  TF_RETURN_IF_ERROR(scope.status());
  Graph graph;
  TF_RETURN_IF_ERROR(scope.ToGraphDef(&graph.graph_def));
  graph.fetches = {"predict:0", "predict:1"};
  for (size_t i = 0; i < predict.output_tensors.size(); ++i) {
    graph.fetches.push_back(absl::StrCat("predict:", 2 + i));
  }
  return graph;
}

// Builds the graph, runs it in a new session (so a new kernel), returns the
// fetched [status_code, status_error_message, output_tensors...].
absl::Status RunRemotePredict(const RemotePredict::Attrs& attrs,
                              std::vector<Tensor>* outputs,
                              const DataTypeSlice& output_types = {DT_INT32,
                                                                   DT_STRING},
                              const RunOptions& run_options = RunOptions()) {
  absl::StatusOr<Graph> graph = BuildGraph(attrs, output_types);
  TF_RETURN_IF_ERROR(graph.status());
  std::unique_ptr<Session> session(NewSession(SessionOptions()));
  TF_RETURN_IF_ERROR(session->Create(graph->graph_def));
  RunMetadata metadata;
  return session->Run(run_options, {}, graph->fetches, {}, outputs, &metadata);
}

template <typename T>
std::vector<T> Values(const Tensor& tensor) {
  const auto flat = tensor.flat<T>();
  return std::vector<T>(flat.data(), flat.data() + flat.size());
}

RemotePredict::Attrs Model(const std::string& model_name) {
  return RemotePredict::Attrs()
      .TargetAddress("model-server:8500")
      .ModelName(model_name);
}

PredictRequest LastRequest() {
  absl::MutexLock lock(&Log().mu);
  EXPECT_FALSE(Log().requests.empty());
  return Log().requests.empty() ? PredictRequest() : Log().requests.back();
}

class RemotePredictOpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Log().Clear();
    unsetenv(kUseTensorContentEnvVar);
  }
  void TearDown() override { unsetenv(kUseTensorContentEnvVar); }
};

TEST_F(RemotePredictOpTest, EchoReturnsOutputsWithStatusZero) {
  std::vector<Tensor> outputs;
  const absl::Status status = RunRemotePredict(Model(kEchoModel), &outputs);
  ASSERT_TRUE(status.ok()) << status;
  ASSERT_EQ(outputs.size(), 4);
  EXPECT_EQ(outputs[0].scalar<int32_t>()(), 0);
  EXPECT_EQ(outputs[1].scalar<tstring>()(), "");
  EXPECT_EQ(outputs[2].dtype(), DT_INT32);
  EXPECT_THAT(Values<int32_t>(outputs[2]), ElementsAre(1, 2));
  EXPECT_EQ(outputs[3].dtype(), DT_STRING);
  EXPECT_THAT(Values<tstring>(outputs[3]), ElementsAre("a", "b"));
}

TEST_F(RemotePredictOpTest, RequestNamesModelSignatureAndOutputs) {
  std::vector<Tensor> outputs;
  ASSERT_TRUE(RunRemotePredict(Model(kEchoModel), &outputs).ok());
  const PredictRequest request = LastRequest();
  EXPECT_EQ(request.model_spec().name(), kEchoModel);
  EXPECT_EQ(request.model_spec().signature_name(), "serving_default");
  EXPECT_FALSE(request.model_spec().has_version());
  ASSERT_EQ(request.output_filter_size(), 2);
  EXPECT_EQ(request.output_filter(0), "output0");
  EXPECT_EQ(request.output_filter(1), "output1");
  EXPECT_EQ(request.inputs_size(), 2);
  absl::MutexLock lock(&Log().mu);
  ASSERT_EQ(Log().targets.size(), 1);
  EXPECT_EQ(Log().targets[0], "model-server:8500");
  EXPECT_FALSE(Log().channel_options[0].use_tls);
}

TEST_F(RemotePredictOpTest, VersionIsSentWhenSet) {
  std::vector<Tensor> outputs;
  ASSERT_TRUE(
      RunRemotePredict(Model(kEchoModel).ModelVersion(7), &outputs).ok());
  const PredictRequest request = LastRequest();
  ASSERT_TRUE(request.model_spec().has_version());
  EXPECT_EQ(request.model_spec().version().value(), 7);
}

TEST_F(RemotePredictOpTest, VersionZeroIsAVersion) {
  std::vector<Tensor> outputs;
  ASSERT_TRUE(
      RunRemotePredict(Model(kEchoModel).ModelVersion(0), &outputs).ok());
  const PredictRequest request = LastRequest();
  ASSERT_TRUE(request.model_spec().has_version());
  EXPECT_EQ(request.model_spec().version().value(), 0);
}

TEST_F(RemotePredictOpTest, SignatureNameIsSent) {
  std::vector<Tensor> outputs;
  ASSERT_TRUE(
      RunRemotePredict(Model(kEchoModel).SignatureName("classify"), &outputs)
          .ok());
  EXPECT_EQ(LastRequest().model_spec().signature_name(), "classify");
}

TEST_F(RemotePredictOpTest, NumbersArePackedAndStringsUseFieldsByDefault) {
  std::vector<Tensor> outputs;
  ASSERT_TRUE(RunRemotePredict(Model(kEchoModel), &outputs).ok());
  const PredictRequest request = LastRequest();
  const TensorProto& numbers = request.inputs().at("input0");
  EXPECT_EQ(numbers.dtype(), DT_INT32);
  EXPECT_EQ(numbers.tensor_content().size(), 2 * sizeof(int32_t));
  EXPECT_EQ(numbers.int_val_size(), 0);
  const TensorProto& words = request.inputs().at("input1");
  EXPECT_EQ(words.dtype(), DT_STRING);
  EXPECT_TRUE(words.tensor_content().empty());
  ASSERT_EQ(words.string_val_size(), 2);
  EXPECT_EQ(words.string_val(1), "b");
}

TEST_F(RemotePredictOpTest, EnvironmentSelectsUpstreamFieldEncoding) {
  setenv(kUseTensorContentEnvVar, "false", 1);
  std::vector<Tensor> outputs;
  const absl::Status status = RunRemotePredict(Model(kEchoModel), &outputs);
  ASSERT_TRUE(status.ok()) << status;
  const TensorProto& numbers = LastRequest().inputs().at("input0");
  EXPECT_TRUE(numbers.tensor_content().empty());
  ASSERT_EQ(numbers.int_val_size(), 2);
  EXPECT_EQ(numbers.int_val(1), 2);
  EXPECT_THAT(Values<int32_t>(outputs[2]), ElementsAre(1, 2));
}

TEST_F(RemotePredictOpTest, BadEncodingSettingFailsNamingTheVariable) {
  setenv(kUseTensorContentEnvVar, "maybe", 1);
  std::vector<Tensor> outputs;
  const absl::Status status = RunRemotePredict(Model(kEchoModel), &outputs);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(),
              AllOf(HasSubstr(kUseTensorContentEnvVar), HasSubstr("maybe")));
}

TEST_F(RemotePredictOpTest, RpcErrorFailsOpWithItsCode) {
  std::vector<Tensor> outputs;
  const absl::Status status = RunRemotePredict(Model(kAbortedModel), &outputs);
  EXPECT_EQ(status.code(), absl::StatusCode::kAborted);
  EXPECT_THAT(status.message(),
              AllOf(HasSubstr(kAbortedMessage), HasSubstr("'aborted'"),
                    HasSubstr("'model-server:8500'")));
}

TEST_F(RemotePredictOpTest, RpcErrorIsReturnedWhenOpMayNotFail) {
  std::vector<Tensor> outputs;
  const absl::Status status =
      RunRemotePredict(Model(kAbortedModel).FailOpOnRpcError(false), &outputs);
  ASSERT_TRUE(status.ok()) << status;
  ASSERT_EQ(outputs.size(), 4);
  EXPECT_EQ(outputs[0].scalar<int32_t>()(),
            static_cast<int32_t>(absl::StatusCode::kAborted));
  // The message names the model and target, as the raising mode's does.
  EXPECT_EQ(outputs[1].scalar<tstring>()(),
            absl::StrCat("Remote Predict of model 'aborted' at "
                         "'model-server:8500' failed: ",
                         kAbortedMessage));
  EXPECT_EQ(outputs[2].dtype(), DT_INT32);
  EXPECT_EQ(outputs[2].NumElements(), 0);
  EXPECT_EQ(outputs[3].dtype(), DT_STRING);
  EXPECT_EQ(outputs[3].NumElements(), 0);
}

TEST_F(RemotePredictOpTest, MissingOutputAliasFailsNamingIt) {
  std::vector<Tensor> outputs;
  const absl::Status status =
      RunRemotePredict(Model(kNoOutputsModel), &outputs);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), AllOf(HasSubstr("no output 'output0'"),
                                      HasSubstr("'no_outputs'")));
}

TEST_F(RemotePredictOpTest, OutputDtypeMismatchFailsNamingBothDtypes) {
  std::vector<Tensor> outputs;
  const absl::Status status = RunRemotePredict(Model(kFloatModel), &outputs);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), AllOf(HasSubstr("'output0'"),
                                      HasSubstr("float"), HasSubstr("int32")));
}

TEST_F(RemotePredictOpTest, DeadlineIsTheAttrInMilliseconds) {
  std::vector<Tensor> outputs;
  ASSERT_TRUE(
      RunRemotePredict(Model(kEchoModel).MaxRpcDeadlineMillis(1500), &outputs)
          .ok());
  absl::MutexLock lock(&Log().mu);
  ASSERT_EQ(Log().timeouts.size(), 1);
  EXPECT_EQ(Log().timeouts[0], absl::Milliseconds(1500));
}

TEST_F(RemotePredictOpTest, DefaultDeadlineIsThirtySeconds) {
  std::vector<Tensor> outputs;
  ASSERT_TRUE(RunRemotePredict(Model(kEchoModel), &outputs).ok());
  absl::MutexLock lock(&Log().mu);
  ASSERT_EQ(Log().timeouts.size(), 1);
  EXPECT_EQ(Log().timeouts[0], absl::Milliseconds(30000));
}

TEST_F(RemotePredictOpTest, StepTimeoutCancelsTheRpc) {
  RunOptions run_options;
  run_options.set_timeout_in_ms(100);
  std::vector<Tensor> outputs;
  // Without cancellation the stub would never answer and Run would not return.
  const absl::Status status =
      RunRemotePredict(Model(kHoldModel).MaxRpcDeadlineMillis(600000), &outputs,
                       {DT_INT32, DT_STRING}, run_options);
  EXPECT_FALSE(status.ok());
  absl::MutexLock lock(&Log().mu);
  EXPECT_EQ(Log().cancellations, 1);
}

TEST_F(RemotePredictOpTest, RpcTimeoutIsCutToTheStepDeadline) {
  using remote_predict_internal::RpcTimeout;
  const absl::Time now = absl::FromUnixSeconds(1700000000);
  EXPECT_EQ(RpcTimeout(30000, std::nullopt, now), absl::Milliseconds(30000));
  EXPECT_EQ(RpcTimeout(30000, now + absl::Milliseconds(1234), now),
            absl::Milliseconds(1234));
  EXPECT_EQ(RpcTimeout(30000, now - absl::Seconds(1), now),
            absl::ZeroDuration());
  EXPECT_EQ(RpcTimeout(1500, now + absl::Hours(1), now),
            absl::Milliseconds(1500));
  // Sub-millisecond step budgets are kept, not rounded to zero or up.
  EXPECT_EQ(RpcTimeout(30000, now + absl::Microseconds(750), now),
            absl::Microseconds(750));
}

TEST_F(RemotePredictOpTest, CreateRpcErrorFailsNamingModelAndTarget) {
  std::vector<Tensor> outputs;
  const absl::Status status = RunRemotePredict(
      RemotePredict::Attrs().TargetAddress(kNoRpcTarget).ModelName(kEchoModel),
      &outputs);
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(status.message(),
              AllOf(HasSubstr("no call slots left"), HasSubstr("'echo'"),
                    HasSubstr(absl::StrCat("'", kNoRpcTarget, "'"))));
}

TEST_F(RemotePredictOpTest, AliasCountMismatchFailsAtGraphConstruction) {
  const absl::StatusOr<Graph> graph = BuildGraph(
      Model(kEchoModel), {DT_INT32, DT_STRING}, {"input0", "input1", "input2"});
  EXPECT_EQ(graph.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(graph.status().message(),
              HasSubstr("'input_tensors' should be equal in length to "
                        "'input_tensor_aliases'. Length of 'input_tensors': 2, "
                        "length of 'input_tensor_aliases': 3"));
}

TEST_F(RemotePredictOpTest, OutputTypeCountMismatchFailsAtGraphConstruction) {
  const absl::StatusOr<Graph> graph = BuildGraph(Model(kEchoModel), {DT_INT32});
  EXPECT_EQ(graph.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(graph.status().message(),
              HasSubstr("'output_types' should be equal in length to "
                        "'output_tensor_aliases'. Length of 'output_types': 1, "
                        "length of 'output_tensor_aliases': 2"));
}

TEST_F(RemotePredictOpTest, MissingModelNameFailsNamingTheOp) {
  std::vector<Tensor> outputs;
  const absl::Status status = RunRemotePredict(
      RemotePredict::Attrs().TargetAddress("model-server:8500"), &outputs);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(),
              AllOf(HasSubstr("model_name"), HasSubstr("'predict'")));
}

TEST_F(RemotePredictOpTest, NonPositiveDeadlineFailsNamingTheAttr) {
  std::vector<Tensor> outputs;
  const absl::Status status =
      RunRemotePredict(Model(kEchoModel).MaxRpcDeadlineMillis(0), &outputs);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("max_rpc_deadline_millis"));
}

TEST_F(RemotePredictOpTest, StubCreationErrorFailsKernelConstruction) {
  std::vector<Tensor> outputs;
  const absl::Status status =
      RunRemotePredict(RemotePredict::Attrs()
                           .TargetAddress("unreachable:0")
                           .ModelName(kEchoModel),
                       &outputs);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("'unreachable:0'"));
}

TEST_F(RemotePredictOpTest, UnreadableCertificateFileFailsNamingAttrAndPath) {
  std::vector<Tensor> outputs;
  const absl::Status status = RunRemotePredict(
      Model(kEchoModel).SslRootCertsFile("/nonexistent/roots.pem"), &outputs);
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(status.message(), AllOf(HasSubstr("ssl_root_certs_file"),
                                      HasSubstr("/nonexistent/roots.pem")));
}

TEST_F(RemotePredictOpTest, ClientCertificateWithoutKeyFails) {
  const std::string cert =
      absl::StrCat(testing::TempDir(), "/remote_predict_client.pem");
  ASSERT_TRUE(WriteStringToFile(Env::Default(), cert, "PEM").ok());
  std::vector<Tensor> outputs;
  const absl::Status status =
      RunRemotePredict(Model(kEchoModel).SslClientCertFile(cert), &outputs);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("ssl_client_key_file"));
}

TEST_F(RemotePredictOpTest, CertificateFilesReachTheStubAsPem) {
  const std::string roots = absl::StrCat(testing::TempDir(), "/roots.pem");
  ASSERT_TRUE(WriteStringToFile(Env::Default(), roots, "ROOTS").ok());
  std::vector<Tensor> outputs;
  ASSERT_TRUE(RunRemotePredict(Model(kEchoModel)
                                   .SslRootCertsFile(roots)
                                   .SslTargetNameOverride("localhost"),
                               &outputs)
                  .ok());
  absl::MutexLock lock(&Log().mu);
  ASSERT_EQ(Log().channel_options.size(), 1);
  EXPECT_TRUE(Log().channel_options[0].use_tls);
  EXPECT_EQ(Log().channel_options[0].ssl_root_certs, "ROOTS");
  EXPECT_EQ(Log().channel_options[0].ssl_target_name_override, "localhost");
}

// The value of metric `name` at `labels` in TensorFlow's registry; -1 when it
// has no such point.
int64_t MetricValue(const std::string& name,
                    const std::vector<std::string>& labels) {
  monitoring::CollectionRegistry::CollectMetricsOptions options;
  const auto collected =
      monitoring::CollectionRegistry::Default()->CollectMetrics(options);
  const auto points = collected->point_set_map.find(name);
  if (points == collected->point_set_map.end()) return -1;
  for (const auto& point : points->second->points) {
    std::vector<std::string> values;
    for (const auto& label : point->labels) values.push_back(label.value);
    if (values != labels) continue;
    return point->value_type == monitoring::ValueType::kHistogram
               ? static_cast<int64_t>(point->histogram_value.num())
               : point->int64_value;
  }
  return -1;
}

TEST_F(RemotePredictOpTest, EachCallIsCountedByTargetModelAndStatus) {
  constexpr char kCalls[] = "/tensorflow/serving/remote_predict/call_count";
  const std::vector<std::string> ok = {"model-server:8500", kEchoModel, "OK"};
  const std::vector<std::string> aborted = {"model-server:8500", kAbortedModel,
                                            "ABORTED"};
  const int64_t ok_before = std::max<int64_t>(0, MetricValue(kCalls, ok));
  const int64_t aborted_before =
      std::max<int64_t>(0, MetricValue(kCalls, aborted));
  std::vector<Tensor> outputs;
  ASSERT_TRUE(RunRemotePredict(Model(kEchoModel), &outputs).ok());
  ASSERT_TRUE(RunRemotePredict(Model(kEchoModel), &outputs).ok());
  EXPECT_FALSE(RunRemotePredict(Model(kAbortedModel), &outputs).ok());

  EXPECT_EQ(MetricValue(kCalls, ok), ok_before + 2);
  EXPECT_EQ(MetricValue(kCalls, aborted), aborted_before + 1);
  const std::vector<std::string> echo = {"model-server:8500", kEchoModel};
  EXPECT_GE(MetricValue("/tensorflow/serving/remote_predict/latency", echo), 2);
  EXPECT_GT(MetricValue("/tensorflow/serving/remote_predict/request_bytes",
                        echo),
            0);
  EXPECT_GT(MetricValue("/tensorflow/serving/remote_predict/response_bytes",
                        echo),
            0);
}

TEST_F(RemotePredictOpTest, RecoveryDefaultsReachTheStub) {
  std::vector<Tensor> outputs;
  ASSERT_TRUE(RunRemotePredict(Model(kEchoModel), &outputs).ok());
  absl::MutexLock lock(&Log().mu);
  ASSERT_EQ(Log().channel_options.size(), 1);
  EXPECT_EQ(Log().channel_options[0].max_reconnect_backoff_millis, 1000);
  EXPECT_FALSE(Log().channel_options[0].retry_unavailable);
}

TEST_F(RemotePredictOpTest, RecoveryAttrsReachTheStub) {
  std::vector<Tensor> outputs;
  ASSERT_TRUE(RunRemotePredict(Model(kEchoModel)
                                   .MaxReconnectBackoffMillis(250)
                                   .RetryUnavailable(true),
                               &outputs)
                  .ok());
  absl::MutexLock lock(&Log().mu);
  ASSERT_EQ(Log().channel_options.size(), 1);
  EXPECT_EQ(Log().channel_options[0].max_reconnect_backoff_millis, 250);
  EXPECT_TRUE(Log().channel_options[0].retry_unavailable);
}

TEST_F(RemotePredictOpTest, NonPositiveReconnectBackoffFailsNamingTheAttr) {
  std::vector<Tensor> outputs;
  const absl::Status status = RunRemotePredict(
      Model(kEchoModel).MaxReconnectBackoffMillis(0), &outputs);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("max_reconnect_backoff_millis"));
}

}  // namespace
}  // namespace serving
}  // namespace tensorflow
