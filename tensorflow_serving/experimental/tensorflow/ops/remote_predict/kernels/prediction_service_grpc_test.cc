// Tests PredictionServiceGrpc against a real PredictionService on 127.0.0.1: a
// gRPC C core server in this process that records what it receives (method,
// deadline, request) and answers as each test tells it to.

#include "tensorflow_serving/experimental/tensorflow/ops/remote_predict/kernels/prediction_service_grpc.h"

#include <gmock/gmock.h>
#include <dirent.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <thread>  // NOLINT(build/c++11)
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "tensorflow/core/framework/tensor.pb.h"
#include "tensorflow/core/framework/types.pb.h"
#include "tensorflow_serving/apis/predict.pb.h"
#include "tensorflow_serving/experimental/tensorflow/ops/remote_predict/kernels/grpc_core_api.h"

namespace tensorflow {
namespace serving {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

// Longest a test waits for something that should happen promptly (a callback,
// a call reaching the server). Reaching it means a bug; the bound only turns
// a hang into a failure that says what was awaited.
constexpr absl::Duration kPatience = absl::Seconds(90);

// How the test server answers one call.
struct Answer {
  grpc_status_code code = GRPC_STATUS_OK;
  std::string message;
  PredictResponse response;
  // Sends nothing until the client goes away (cancels or hits its deadline).
  bool hold = false;
};

// Answers with the request's inputs as outputs of the same names.
Answer Echo(const PredictRequest& request) {
  Answer answer;
  *answer.response.mutable_model_spec() = request.model_spec();
  *answer.response.mutable_outputs() = request.inputs();
  return answer;
}

struct TlsFiles {
  std::string root_cert;    // the CA both sides trust
  std::string server_cert;  // for "localhost", signed by the CA
  std::string server_key;
  std::string client_cert;  // signed by the CA
  std::string client_key;
};

// A PredictionService built on gRPC's C core server API, listening on
// 127.0.0.1 at a port the system picks.
class TestPredictionServer {
 public:
  // What arrived with one call.
  struct Received {
    std::string method;
    gpr_timespec deadline;  // on the monotonic clock
    PredictRequest request;
  };

  // `tls`: serve TLS and require client certificates signed by its root.
  explicit TestPredictionServer(
      std::function<Answer(const PredictRequest&)> handler,
      const TlsFiles* tls = nullptr)
      : handler_(std::move(handler)) {
    const absl::Status loaded = grpc_core_api::EnsureLoaded();
    if (!loaded.ok()) {
      ADD_FAILURE() << loaded;
      std::abort();
    }
    GRPC_CORE(grpc_init)();
    grpc_arg args[2];
    args[0].type = GRPC_ARG_INTEGER;
    args[0].key = const_cast<char*>(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH);
    args[0].value.integer = -1;
    args[1].type = GRPC_ARG_INTEGER;
    args[1].key = const_cast<char*>(GRPC_ARG_MAX_SEND_MESSAGE_LENGTH);
    args[1].value.integer = -1;
    const grpc_channel_args channel_args = {2, args};
    server_ = GRPC_CORE(grpc_server_create)(&channel_args, nullptr);
    queue_ = GRPC_CORE(grpc_completion_queue_create_for_next)(nullptr);
    GRPC_CORE(grpc_server_register_completion_queue)(server_, queue_, nullptr);
    grpc_server_credentials* credentials;
    if (tls != nullptr) {
      grpc_ssl_pem_key_cert_pair pair = {tls->server_key.c_str(),
                                         tls->server_cert.c_str()};
      credentials = GRPC_CORE(grpc_ssl_server_credentials_create_ex)(
          tls->root_cert.c_str(), &pair, 1,
          GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY, nullptr);
    } else {
      credentials = GRPC_CORE(grpc_insecure_server_credentials_create)();
    }
    port_ = GRPC_CORE(grpc_server_add_http2_port)(server_, "127.0.0.1:0",
                                                  credentials);
    GRPC_CORE(grpc_server_credentials_release)(credentials);
    GRPC_CORE(grpc_server_start)(server_);
    RequestCall();
    thread_ = std::thread([this] { Serve(); });
  }

  ~TestPredictionServer() {
    shutting_down_ = true;
    GRPC_CORE(grpc_server_shutdown_and_notify)(server_, queue_, &shutdown_tag_);
    GRPC_CORE(grpc_server_cancel_all_calls)(server_);
    thread_.join();
    GRPC_CORE(grpc_server_destroy)(server_);
    GRPC_CORE(grpc_completion_queue_destroy)(queue_);
    GRPC_CORE(grpc_shutdown)();
  }

  int port() const { return port_; }
  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }

  std::vector<Received> received() {
    absl::MutexLock lock(&mu_);
    return received_;
  }

  // Waits until `count` calls have arrived (held ones included); false if
  // they did not within kPatience.
  bool AwaitCalls(int count) {
    absl::MutexLock lock(&mu_);
    auto arrived = [this, count]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return static_cast<int>(received_.size()) >= count;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&arrived), kPatience);
  }

  // Waits until `count` calls have ended with the client going away; false
  // if they did not within kPatience.
  bool AwaitClientCancellations(int count) {
    absl::MutexLock lock(&mu_);
    auto cancelled = [this, count]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return cancelled_ >= count;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&cancelled), kPatience);
  }

 private:
  // One server-side call, from grpc_server_request_call to its close. It has
  // one batch outstanding at a time, so it serves as its own tag.
  struct Call {
    enum class Step {
      kAwaitCall,
      kAwaitMessage,
      kAwaitClose
    } step = Step::kAwaitCall;
    grpc_call* call = nullptr;
    grpc_call_details details;
    grpc_metadata_array metadata;
    grpc_byte_buffer* message = nullptr;
    grpc_byte_buffer* reply = nullptr;
    grpc_slice status_details = GRPC_CORE(grpc_empty_slice)();
    int client_cancelled = 0;

    Call() {
      GRPC_CORE(grpc_call_details_init)(&details);
      GRPC_CORE(grpc_metadata_array_init)(&metadata);
    }
    ~Call() {
      if (call != nullptr) GRPC_CORE(grpc_call_unref)(call);
      if (message != nullptr) GRPC_CORE(grpc_byte_buffer_destroy)(message);
      if (reply != nullptr) GRPC_CORE(grpc_byte_buffer_destroy)(reply);
      GRPC_CORE(grpc_slice_unref)(status_details);
      GRPC_CORE(grpc_call_details_destroy)(&details);
      GRPC_CORE(grpc_metadata_array_destroy)(&metadata);
    }
  };

  void RequestCall() {
    if (shutting_down_) return;
    auto* call = new Call;
    if (GRPC_CORE(grpc_server_request_call)(
            server_, &call->call, &call->details, &call->metadata, queue_,
            queue_, call) != GRPC_CALL_OK) {
      delete call;
    }
  }

  void Serve() {
    while (true) {
      const grpc_event event = GRPC_CORE(grpc_completion_queue_next)(
          queue_, GRPC_CORE(gpr_inf_future)(GPR_CLOCK_MONOTONIC), nullptr);
      if (event.type == GRPC_QUEUE_SHUTDOWN) return;
      if (event.type != GRPC_OP_COMPLETE) continue;
      if (event.tag == &shutdown_tag_) {
        GRPC_CORE(grpc_completion_queue_shutdown)(queue_);
        continue;
      }
      Advance(static_cast<Call*>(event.tag), event.success != 0);
    }
  }

  void Advance(Call* call, bool ok) {
    switch (call->step) {
      case Call::Step::kAwaitCall: {
        if (!ok) {  // the server is shutting down
          delete call;
          return;
        }
        RequestCall();
        grpc_op op = {};
        op.op = GRPC_OP_RECV_MESSAGE;
        op.data.recv_message.recv_message = &call->message;
        call->step = Call::Step::kAwaitMessage;
        Start(call, &op, 1);
        return;
      }
      case Call::Step::kAwaitMessage: {
        Received received;
        received.method = SliceString(call->details.method);
        received.deadline = GRPC_CORE(gpr_convert_clock_type)(
            call->details.deadline, GPR_CLOCK_MONOTONIC);
        const bool parsed = ok && call->message != nullptr &&
                            ParseMessage(call->message, &received.request);
        Answer answer;
        if (!parsed) {
          answer.code = GRPC_STATUS_INVALID_ARGUMENT;
          answer.message = "the test server got no PredictRequest";
        } else {
          answer = handler_(received.request);
        }
        {
          absl::MutexLock lock(&mu_);
          received_.push_back(std::move(received));
        }
        Reply(call, std::move(answer));
        return;
      }
      case Call::Step::kAwaitClose: {
        if (call->client_cancelled) {
          absl::MutexLock lock(&mu_);
          ++cancelled_;
        }
        delete call;
        return;
      }
    }
  }

  void Reply(Call* call, Answer answer) {
    call->step = Call::Step::kAwaitClose;
    grpc_op ops[4] = {};
    int count = 0;
    if (!answer.hold) {
      ops[count++].op = GRPC_OP_SEND_INITIAL_METADATA;
      if (answer.code == GRPC_STATUS_OK) {
        std::string bytes = answer.response.SerializeAsString();
        grpc_slice slice = GRPC_CORE(grpc_slice_from_copied_buffer)(
            bytes.data(), bytes.size());
        call->reply = GRPC_CORE(grpc_raw_byte_buffer_create)(&slice, 1);
        GRPC_CORE(grpc_slice_unref)(slice);
        ops[count].op = GRPC_OP_SEND_MESSAGE;
        ops[count++].data.send_message.send_message = call->reply;
      }
      call->status_details =
          GRPC_CORE(grpc_slice_from_copied_string)(answer.message.c_str());
      ops[count].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
      ops[count].data.send_status_from_server.status = answer.code;
      ops[count++].data.send_status_from_server.status_details =
          &call->status_details;
    }
    ops[count].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[count++].data.recv_close_on_server.cancelled = &call->client_cancelled;
    Start(call, ops, count);
  }

  void Start(Call* call, const grpc_op* ops, size_t count) {
    const grpc_call_error error =
        GRPC_CORE(grpc_call_start_batch)(call->call, ops, count, call, nullptr);
    if (error != GRPC_CALL_OK) {
      ADD_FAILURE() << "the test server could not start a batch: " << error;
      delete call;
    }
  }

  static std::string SliceString(const grpc_slice& slice) {
    return std::string(
        reinterpret_cast<const char*>(GRPC_SLICE_START_PTR(slice)),
        GRPC_SLICE_LENGTH(slice));
  }

  static bool ParseMessage(grpc_byte_buffer* buffer, PredictRequest* request) {
    grpc_byte_buffer_reader reader;
    if (!GRPC_CORE(grpc_byte_buffer_reader_init)(&reader, buffer)) return false;
    grpc_slice bytes = GRPC_CORE(grpc_byte_buffer_reader_readall)(&reader);
    GRPC_CORE(grpc_byte_buffer_reader_destroy)(&reader);
    const bool parsed = request->ParseFromArray(GRPC_SLICE_START_PTR(bytes),
                                                GRPC_SLICE_LENGTH(bytes));
    GRPC_CORE(grpc_slice_unref)(bytes);
    return parsed;
  }

  const std::function<Answer(const PredictRequest&)> handler_;
  grpc_server* server_ = nullptr;
  grpc_completion_queue* queue_ = nullptr;
  int port_ = 0;
  int shutdown_tag_ = 0;
  std::atomic<bool> shutting_down_{false};
  std::thread thread_;
  absl::Mutex mu_;
  std::vector<Received> received_ ABSL_GUARDED_BY(mu_);
  int cancelled_ ABSL_GUARDED_BY(mu_) = 0;
};

struct Result {
  absl::Status status;
  PredictResponse response;
};

// Waits for `done`, the notification of a callback that refers to the
// caller's stack. A callback that is late past the call's own deadline is a
// bug: the test fails, cancels the call, and if even that brings no callback
// aborts rather than return and let the callback write to a dead frame.
void AwaitCallback(absl::Notification& done, PredictionServiceGrpc::Rpc& rpc,
                   absl::Duration timeout) {
  if (done.WaitForNotificationWithTimeout(timeout + kPatience)) return;
  ADD_FAILURE() << "Predict's callback did not run within "
                << timeout + kPatience << "; cancelling the call";
  rpc.TryCancel();
  if (done.WaitForNotificationWithTimeout(kPatience)) return;
  std::fprintf(stderr, "Predict's callback never ran, even after TryCancel\n");
  std::abort();
}

// Runs one Predict and waits for its callback.
Result CallPredict(PredictionServiceGrpc& service,
                   const PredictRequest& request, absl::Duration timeout) {
  Result result;
  absl::StatusOr<PredictionServiceGrpc::Rpc*> rpc = service.CreateRpc(timeout);
  if (!rpc.ok()) return {rpc.status(), {}};
  std::unique_ptr<PredictionServiceGrpc::Rpc> owned(*rpc);
  PredictRequest sent = request;
  absl::Notification done;
  service.Predict(owned.get(), &sent, &result.response,
                  [&](absl::Status status) {
                    result.status = std::move(status);
                    done.Notify();
                  });
  AwaitCallback(done, *owned, timeout);
  return result;
}

std::unique_ptr<PredictionServiceGrpc> Connect(
    const std::string& target,
    const PredictionServiceChannelOptions& options = {}) {
  std::unique_ptr<PredictionServiceGrpc> service;
  const absl::Status created =
      PredictionServiceGrpc::Create(target, options, &service);
  EXPECT_TRUE(created.ok()) << created;
  return service;
}

PredictRequest RequestWithInput(const std::string& alias, std::string bytes) {
  PredictRequest request;
  request.mutable_model_spec()->set_name("echo");
  TensorProto& input = (*request.mutable_inputs())[alias];
  input.set_dtype(DT_UINT8);
  input.mutable_tensor_shape()->add_dim()->set_size(bytes.size());
  input.set_tensor_content(std::move(bytes));
  return request;
}

// A port nothing listens on: bound by the system, then released.
int UnusedPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address = {};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&address), length), 0);
  EXPECT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length), 0);
  close(fd);
  return ntohs(address.sin_port);
}

TEST(PredictionServiceGrpcTest, PredictRoundTripsThroughServer) {
  TestPredictionServer server(Echo);
  auto service = Connect(server.address());
  ASSERT_NE(service, nullptr);
  PredictRequest request = RequestWithInput("x", "remote predict");
  request.mutable_model_spec()->set_signature_name("serving_default");
  request.add_output_filter("x");

  const Result result = CallPredict(*service, request, absl::Seconds(30));

  ASSERT_TRUE(result.status.ok()) << result.status;
  EXPECT_EQ(result.response.model_spec().name(), "echo");
  ASSERT_EQ(result.response.outputs().count("x"), 1);
  EXPECT_EQ(result.response.outputs().at("x").tensor_content(),
            "remote predict");
  const auto received = server.received();
  ASSERT_EQ(received.size(), 1);
  EXPECT_EQ(received[0].method,
            "/tensorflow.serving.PredictionService/Predict");
  EXPECT_EQ(received[0].request.SerializeAsString(),
            request.SerializeAsString());
}

TEST(PredictionServiceGrpcTest, ChannelIsReusedAcrossCalls) {
  TestPredictionServer server(Echo);
  auto service = Connect(server.address());
  ASSERT_NE(service, nullptr);
  for (int i = 0; i < 5; ++i) {
    const Result result =
        CallPredict(*service, RequestWithInput("x", absl::StrCat("call ", i)),
                    absl::Seconds(30));
    ASSERT_TRUE(result.status.ok()) << result.status;
    EXPECT_EQ(result.response.outputs().at("x").tensor_content(),
              absl::StrCat("call ", i));
  }
  EXPECT_EQ(server.received().size(), 5);
}

// The server must see the deadline the client asked for, to the millisecond:
// not truncated to whole seconds. gRPC's wire encoding only rounds up, and the
// server's clock is this process's, so its deadline is never earlier than the
// one the client set; the later bound only allows for the time in transit.
void ExpectServerSeesDeadline(absl::Duration timeout) {
  TestPredictionServer server(Echo);
  auto service = Connect(server.address());
  ASSERT_NE(service, nullptr);
  const gpr_timespec before = GRPC_CORE(gpr_now)(GPR_CLOCK_MONOTONIC);
  const Result result =
      CallPredict(*service, RequestWithInput("x", "t"), timeout);
  ASSERT_TRUE(result.status.ok()) << result.status;
  const auto received = server.received();
  ASSERT_EQ(received.size(), 1);

  const double deadline_after_start_ms =
      GRPC_CORE(gpr_timespec_to_micros)(
          GRPC_CORE(gpr_time_sub)(received[0].deadline, before)) /
      1000;
  const double timeout_ms = absl::ToDoubleMilliseconds(timeout);
  EXPECT_GE(deadline_after_start_ms, timeout_ms - 1)
      << "the deadline was shortened";
  EXPECT_LT(deadline_after_start_ms, timeout_ms + 400)
      << "the deadline was lengthened";
}

TEST(PredictionServiceGrpcTest, DeadlineOf1500MillisecondsStays1500) {
  ExpectServerSeesDeadline(absl::Milliseconds(1500));
}

TEST(PredictionServiceGrpcTest, DeadlineUnderOneSecondIsKept) {
  ExpectServerSeesDeadline(absl::Milliseconds(500));
}

TEST(PredictionServiceGrpcTest, SixtyFourMebibyteTensorsTravelBothWays) {
  TestPredictionServer server(Echo);
  auto service = Connect(server.address());
  ASSERT_NE(service, nullptr);
  std::string bytes(64 << 20, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 7);

  const Result result =
      CallPredict(*service, RequestWithInput("big", bytes), absl::Seconds(60));

  ASSERT_TRUE(result.status.ok()) << result.status;
  ASSERT_EQ(result.response.outputs().count("big"), 1);
  EXPECT_TRUE(result.response.outputs().at("big").tensor_content() == bytes);
}

TEST(PredictionServiceGrpcTest, RequestIsReleasedOnceSerialized) {
  // The server holds the call, so the request is checked while it is on the
  // wire: its tensors must not stay in memory beside the bytes gRPC sends.
  TestPredictionServer server([](const PredictRequest&) {
    Answer answer;
    answer.hold = true;
    return answer;
  });
  auto service = Connect(server.address());
  ASSERT_NE(service, nullptr);
  std::unique_ptr<PredictionServiceGrpc::Rpc> rpc(
      *service->CreateRpc(absl::Seconds(60)));
  PredictRequest request = RequestWithInput("x", std::string(1 << 20, 'r'));
  const std::string sent_bytes = request.SerializeAsString();
  PredictResponse response;
  absl::Notification done;
  service->Predict(rpc.get(), &request, &response,
                   [&](absl::Status) { done.Notify(); });

  EXPECT_EQ(request.ByteSizeLong(), 0);
  EXPECT_TRUE(server.AwaitCalls(1)) << "the call never reached the server";
  rpc->TryCancel();
  AwaitCallback(done, *rpc, absl::ZeroDuration());
  const auto received = server.received();
  ASSERT_EQ(received.size(), 1);
  EXPECT_TRUE(received[0].request.SerializeAsString() == sent_bytes);
}

TEST(PredictionServiceGrpcTest, LargeAndSmallInputsArriveIntact) {
  // Large tensor_content travels in slices of its own; everything around it
  // (small inputs, a large one with typed values too, the fields after the
  // inputs) must arrive as sent.
  TestPredictionServer server(Echo);
  auto service = Connect(server.address());
  ASSERT_NE(service, nullptr);
  std::string large(3 << 20, '\0');
  for (size_t i = 0; i < large.size(); ++i) large[i] = static_cast<char>(i * 13);
  PredictRequest request = RequestWithInput("large", large);
  request.mutable_model_spec()->set_signature_name("serving_default");
  request.mutable_model_spec()->mutable_version()->set_value(7);
  (*request.mutable_inputs())["small"] =
      RequestWithInput("small", "tiny").inputs().at("small");
  TensorProto& mixed = (*request.mutable_inputs())["mixed"];
  mixed = RequestWithInput("mixed", std::string(1 << 20, 'm')).inputs().at("mixed");
  mixed.add_float_val(1.5f);
  request.add_output_filter("large");
  request.add_output_filter("small");

  const Result result = CallPredict(*service, request, absl::Seconds(60));

  ASSERT_TRUE(result.status.ok()) << result.status;
  const auto received = server.received();
  ASSERT_EQ(received.size(), 1);
  const PredictRequest& got = received[0].request;
  EXPECT_EQ(got.ByteSizeLong(), request.ByteSizeLong());
  EXPECT_EQ(got.model_spec().SerializeAsString(),
            request.model_spec().SerializeAsString());
  ASSERT_EQ(got.inputs().size(), 3);
  for (const auto& [alias, tensor] : request.inputs()) {
    ASSERT_EQ(got.inputs().count(alias), 1) << alias;
    EXPECT_TRUE(got.inputs().at(alias).SerializeAsString() ==
                tensor.SerializeAsString())
        << alias;
  }
  ASSERT_EQ(got.output_filter_size(), 2);
  EXPECT_EQ(got.output_filter(0), "large");
  EXPECT_EQ(got.output_filter(1), "small");
  EXPECT_TRUE(result.response.outputs().at("large").tensor_content() == large);
}

TEST(PredictionServiceGrpcTest, ServerErrorKeepsItsCodeAndMessage) {
  TestPredictionServer server([](const PredictRequest&) {
    Answer answer;
    answer.code = GRPC_STATUS_NOT_FOUND;
    answer.message = "Servable not found for request: Latest(echo)";
    return answer;
  });
  auto service = Connect(server.address());
  ASSERT_NE(service, nullptr);

  const Result result =
      CallPredict(*service, RequestWithInput("x", "t"), absl::Seconds(30));

  EXPECT_EQ(result.status.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(result.status.message(),
            "Servable not found for request: Latest(echo)");
}

TEST(PredictionServiceGrpcTest, UnreachableTargetIsUnavailableBeforeDeadline) {
  auto service = Connect(absl::StrCat("127.0.0.1:", UnusedPort()));
  ASSERT_NE(service, nullptr);
  // A refused connection ends the call with UNAVAILABLE; had it waited for
  // the (long) deadline, the code would be DEADLINE_EXCEEDED.
  const Result result =
      CallPredict(*service, RequestWithInput("x", "t"), absl::Seconds(60));
  EXPECT_EQ(result.status.code(), absl::StatusCode::kUnavailable)
      << result.status;
}

TEST(PredictionServiceGrpcTest, WithRetriesUnreachableTargetWaitsForDeadline) {
  PredictionServiceChannelOptions options;
  options.retry_unavailable = true;
  auto service = Connect(absl::StrCat("127.0.0.1:", UnusedPort()), options);
  ASSERT_NE(service, nullptr);
  // With retries on, the call waits for the target instead of failing at
  // once, so it ends only when its deadline passes.
  const Result result = CallPredict(*service, RequestWithInput("x", "t"),
                                    absl::Milliseconds(500));
  EXPECT_EQ(result.status.code(), absl::StatusCode::kDeadlineExceeded)
      << result.status;
}

TEST(PredictionServiceGrpcTest, HeldCallEndsWithDeadlineExceeded) {
  TestPredictionServer server([](const PredictRequest&) {
    Answer answer;
    answer.hold = true;
    return answer;
  });
  auto service = Connect(server.address());
  ASSERT_NE(service, nullptr);
  const Result result = CallPredict(*service, RequestWithInput("x", "t"),
                                    absl::Milliseconds(300));
  EXPECT_EQ(result.status.code(), absl::StatusCode::kDeadlineExceeded)
      << result.status;
}

TEST(PredictionServiceGrpcTest, TryCancelEndsCallInFlight) {
  TestPredictionServer server([](const PredictRequest&) {
    Answer answer;
    answer.hold = true;
    return answer;
  });
  auto service = Connect(server.address());
  ASSERT_NE(service, nullptr);
  std::unique_ptr<PredictionServiceGrpc::Rpc> rpc(
      *service->CreateRpc(absl::Seconds(60)));
  PredictRequest request = RequestWithInput("x", "t");
  PredictResponse response;
  absl::Notification done;
  absl::Status status;
  service->Predict(rpc.get(), &request, &response, [&](absl::Status s) {
    status = std::move(s);
    done.Notify();
  });
  // EXPECT, not ASSERT: returning now would free what the call still uses.
  EXPECT_TRUE(server.AwaitCalls(1)) << "the call never reached the server";

  rpc->TryCancel();

  AwaitCallback(done, *rpc, absl::ZeroDuration());
  EXPECT_EQ(status.code(), absl::StatusCode::kCancelled) << status;
  EXPECT_TRUE(server.AwaitClientCancellations(1))
      << "the server never saw the client cancel";
}

TEST(PredictionServiceGrpcTest, TryCancelBeforePredictFailsWithoutSending) {
  TestPredictionServer server(Echo);
  auto service = Connect(server.address());
  ASSERT_NE(service, nullptr);
  std::unique_ptr<PredictionServiceGrpc::Rpc> rpc(
      *service->CreateRpc(absl::Seconds(60)));
  rpc->TryCancel();
  PredictRequest request = RequestWithInput("x", "t");
  PredictResponse response;
  absl::Status status;
  int callbacks = 0;
  service->Predict(rpc.get(), &request, &response, [&](absl::Status s) {
    status = std::move(s);
    ++callbacks;
  });
  // The call never started, so the callback ran before Predict returned.
  EXPECT_EQ(callbacks, 1);
  EXPECT_EQ(status.code(), absl::StatusCode::kCancelled);
  // A call that does go out proves the server would have recorded one.
  ASSERT_TRUE(
      CallPredict(*service, RequestWithInput("x", "t"), absl::Seconds(30))
          .status.ok());
  EXPECT_EQ(server.received().size(), 1);
}

TEST(PredictionServiceGrpcTest, DestroyingWithCallsInFlightCancelsThem) {
  TestPredictionServer server([](const PredictRequest&) {
    Answer answer;
    answer.hold = true;
    return answer;
  });
  auto service = Connect(server.address());
  ASSERT_NE(service, nullptr);
  constexpr int kCalls = 3;
  std::vector<std::unique_ptr<PredictionServiceGrpc::Rpc>> rpcs;
  std::vector<PredictRequest> requests(kCalls, RequestWithInput("x", "t"));
  std::vector<PredictResponse> responses(kCalls);
  absl::Mutex mu;
  std::vector<absl::Status> statuses;
  for (int i = 0; i < kCalls; ++i) {
    rpcs.emplace_back(*service->CreateRpc(absl::Seconds(60)));
    service->Predict(rpcs.back().get(), &requests[i], &responses[i],
                     [&](absl::Status s) {
                       absl::MutexLock lock(&mu);
                       statuses.push_back(std::move(s));
                     });
  }
  // EXPECT, not ASSERT: the reset below must still run to end the calls.
  EXPECT_TRUE(server.AwaitCalls(kCalls))
      << "the calls never reached the server";

  service.reset();  // returns only after every callback has run

  absl::MutexLock lock(&mu);
  ASSERT_EQ(statuses.size(), kCalls);
  for (const absl::Status& status : statuses) {
    EXPECT_EQ(status.code(), absl::StatusCode::kCancelled) << status;
  }
}

// The kernel's callback can drop the last reference to the kernel, so the
// service may be destroyed on its own completion-queue thread, which then
// cannot join itself.
TEST(PredictionServiceGrpcTest, DestroyingFromItsOwnCallbackWorks) {
  TestPredictionServer server(Echo);
  std::unique_ptr<PredictionServiceGrpc> service = Connect(server.address());
  ASSERT_NE(service, nullptr);
  PredictionServiceGrpc* const raw = service.release();
  std::unique_ptr<PredictionServiceGrpc::Rpc> rpc(
      *raw->CreateRpc(absl::Seconds(30)));
  PredictRequest request = RequestWithInput("x", "t");
  PredictResponse response;
  absl::Status status;
  absl::Notification destroyed;
  raw->Predict(rpc.get(), &request, &response, [&, raw](absl::Status s) {
    status = std::move(s);
    delete raw;
    destroyed.Notify();
  });
  AwaitCallback(destroyed, *rpc, absl::Seconds(30));
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(response.outputs().at("x").tensor_content(), "t");
}

// The threads of this process now.
int ThreadCount() {
  DIR* tasks = opendir("/proc/self/task");
  EXPECT_NE(tasks, nullptr);
  if (tasks == nullptr) return -1;
  int count = 0;
  while (const dirent* entry = readdir(tasks)) {
    count += entry->d_name[0] != '.';
  }
  closedir(tasks);
  return count;
}

TEST(PredictionServiceGrpcTest, StubsWithTheSameSettingsShareOneChannel) {
  TestPredictionServer server(Echo);
  const int before = PredictionServiceGrpc::OpenChannelCount();
  std::vector<std::unique_ptr<PredictionServiceGrpc>> stubs;
  for (int i = 0; i < 3; ++i) stubs.push_back(Connect(server.address()));
  EXPECT_EQ(PredictionServiceGrpc::OpenChannelCount(), before + 1);
  PredictionServiceChannelOptions retrying;
  retrying.retry_unavailable = true;
  stubs.push_back(Connect(server.address(), retrying));
  EXPECT_EQ(PredictionServiceGrpc::OpenChannelCount(), before + 2)
      << "other settings need a channel of their own";
  for (auto& stub : stubs) {
    ASSERT_NE(stub, nullptr);
    EXPECT_TRUE(
        CallPredict(*stub, RequestWithInput("x", "t"), absl::Seconds(30))
            .status.ok());
  }
  stubs.clear();
  EXPECT_EQ(PredictionServiceGrpc::OpenChannelCount(), before)
      << "the last stub of a channel closes it";
}

TEST(PredictionServiceGrpcTest, ThreadsDoNotGrowWithStubsOrChannels) {
  TestPredictionServer server(Echo);
  {
    // Starts the completion-queue pool and gRPC's own threads.
    auto first = Connect(server.address());
    ASSERT_NE(first, nullptr);
    ASSERT_TRUE(
        CallPredict(*first, RequestWithInput("x", "t"), absl::Seconds(30))
            .status.ok());
  }
  const int threads_before = ThreadCount();
  constexpr int kStubs = 100;
  std::vector<std::unique_ptr<PredictionServiceGrpc>> stubs;
  for (int i = 0; i < kStubs; ++i) {
    // Distinct settings, so every stub has a channel of its own.
    PredictionServiceChannelOptions options;
    options.max_reconnect_backoff_millis = 2000 + i;
    stubs.push_back(Connect(server.address(), options));
    ASSERT_NE(stubs.back(), nullptr);
    ASSERT_TRUE(CallPredict(*stubs.back(), RequestWithInput("x", "t"),
                            absl::Seconds(30))
                    .status.ok());
  }
  const int threads_after = ThreadCount();
  std::printf("threads: %d before, %d with %d more stubs and channels\n",
              threads_before, threads_after, kStubs);
  EXPECT_LE(threads_after - threads_before, 4);
}

TEST(PredictionServiceGrpcTest, SeveralAddressesAreBalancedRoundRobin) {
  TestPredictionServer first(Echo);
  TestPredictionServer second(Echo);
  auto service = Connect(absl::StrCat("ipv4:127.0.0.1:", first.port(),
                                      ",127.0.0.1:", second.port()));
  ASSERT_NE(service, nullptr);
  // Round-robin alternates between the connected backends; the bound only
  // covers the moments before the second connection is up.
  for (int i = 0;
       i < 200 && (first.received().empty() || second.received().empty());
       ++i) {
    ASSERT_TRUE(
        CallPredict(*service, RequestWithInput("x", "t"), absl::Seconds(30))
            .status.ok());
  }
  EXPECT_FALSE(first.received().empty());
  EXPECT_FALSE(second.received().empty());
}

TEST(PredictionServiceGrpcTest, AcceptsHostPortAndGrpcUris) {
  for (const std::string target :
       {"localhost:8500", "127.0.0.1:8500", "[::1]:8500",
        "dns:///localhost:8500", "dns:localhost:8500", "ipv4:127.0.0.1:8500",
        "ipv4:127.0.0.1:8500,127.0.0.1:8501", "ipv6:[::1]:8500",
        "unix:/tmp/model.sock", "model-server.example.com:8500"}) {
    EXPECT_TRUE(ValidateTargetAddress(target).ok())
        << target << ": " << ValidateTargetAddress(target);
  }
}

TEST(PredictionServiceGrpcTest, InvalidTargetFailsCreateNamingIt) {
  for (const std::string target :
       {"", "localhost", "localhost:", "localhost:http", "localhost:99999",
        "host name:8500", "ipv4:", "ipv4:300.0.0.1:8500", "ipv4:127.0.0.1",
        "ipv4:127.0.0.1:8500,nonsense", "ipv6:::1:8500", "bogus:///x",
        "::1:8500"}) {
    std::unique_ptr<PredictionServiceGrpc> service;
    const absl::Status status = PredictionServiceGrpc::Create(target, &service);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << target;
    EXPECT_THAT(status.message(),
                HasSubstr(absl::StrCat("target_address '", target, "'")));
    EXPECT_EQ(service, nullptr);
  }
}

#ifndef REMOTE_PREDICT_OP_LINK_GRPC
TEST(GrpcCoreApiTest, MissingLibraryIsAnErrorThatSaysWhatToInstall) {
  grpc_core_api::GrpcCore core;
  const absl::Status status = grpc_core_api::LoadFromLibrary(
      {"libgrpc-that-is-not-installed.so.999"}, &core);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(),
              AllOf(HasSubstr("libgrpc-that-is-not-installed.so.999"),
                    HasSubstr("apt-get install libgrpc29")));
  EXPECT_EQ(core.grpc_init, nullptr);
}

TEST(GrpcCoreApiTest, LibraryWithoutTheFunctionsIsAnErrorNotAnAbort) {
  // zlib loads fine but has none of gRPC's functions.
  grpc_core_api::GrpcCore core;
  const absl::Status status =
      grpc_core_api::LoadFromLibrary({"libz.so.1"}, &core);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(),
              AllOf(HasSubstr("libz.so.1"), HasSubstr("grpc_channel_create"),
                    HasSubstr("1.51")));
  EXPECT_EQ(core.grpc_init, nullptr) << "a partly filled table was kept";
}
#endif  // REMOTE_PREDICT_OP_LINK_GRPC

TEST(PredictionServiceGrpcTest, GrpcStatusCodesMapOneToOne) {
  const std::vector<std::pair<grpc_status_code, absl::StatusCode>> codes = {
      {GRPC_STATUS_OK, absl::StatusCode::kOk},
      {GRPC_STATUS_CANCELLED, absl::StatusCode::kCancelled},
      {GRPC_STATUS_UNKNOWN, absl::StatusCode::kUnknown},
      {GRPC_STATUS_INVALID_ARGUMENT, absl::StatusCode::kInvalidArgument},
      {GRPC_STATUS_DEADLINE_EXCEEDED, absl::StatusCode::kDeadlineExceeded},
      {GRPC_STATUS_NOT_FOUND, absl::StatusCode::kNotFound},
      {GRPC_STATUS_ALREADY_EXISTS, absl::StatusCode::kAlreadyExists},
      {GRPC_STATUS_PERMISSION_DENIED, absl::StatusCode::kPermissionDenied},
      {GRPC_STATUS_RESOURCE_EXHAUSTED, absl::StatusCode::kResourceExhausted},
      {GRPC_STATUS_FAILED_PRECONDITION, absl::StatusCode::kFailedPrecondition},
      {GRPC_STATUS_ABORTED, absl::StatusCode::kAborted},
      {GRPC_STATUS_OUT_OF_RANGE, absl::StatusCode::kOutOfRange},
      {GRPC_STATUS_UNIMPLEMENTED, absl::StatusCode::kUnimplemented},
      {GRPC_STATUS_INTERNAL, absl::StatusCode::kInternal},
      {GRPC_STATUS_UNAVAILABLE, absl::StatusCode::kUnavailable},
      {GRPC_STATUS_DATA_LOSS, absl::StatusCode::kDataLoss},
      {GRPC_STATUS_UNAUTHENTICATED, absl::StatusCode::kUnauthenticated},
  };
  for (const auto& [grpc_code, absl_code] : codes) {
    EXPECT_EQ(StatusCodeFromGrpc(grpc_code), absl_code) << grpc_code;
  }
}

// Runs openssl to make a CA, a server certificate for "localhost" and a client
// certificate, all in the test's temporary directory.
TlsFiles MakeTlsFiles() {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string dir = absl::StrCat(tmp != nullptr ? tmp : "/tmp",
                                       "/remote_predict_tls_", getpid());
  const std::string script = absl::StrCat(
      "set -e; mkdir -p ", dir, "; cd ", dir, "; ",
      "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=test-ca "
      "-keyout ca.key -out ca.crt; ",
      "printf 'subjectAltName=DNS:localhost\\n' > server.ext; ",
      "openssl req -newkey rsa:2048 -nodes -subj /CN=localhost "
      "-keyout server.key -out server.csr; ",
      "openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key "
      "-CAcreateserial -days 1 -extfile server.ext -out server.crt; ",
      "openssl req -newkey rsa:2048 -nodes -subj /CN=test-client "
      "-keyout client.key -out client.csr; ",
      "openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key "
      "-CAcreateserial -days 1 -out client.crt");
  const std::string command = absl::StrCat(
      "/bin/sh -c '", absl::StrReplaceAll(script, {{"'", "'\\''"}}),
      "' >/dev/null 2>&1");
  EXPECT_EQ(std::system(command.c_str()), 0) << "openssl failed: " << command;
  auto read = [&dir](const std::string& name) {
    std::ifstream file(absl::StrCat(dir, "/", name));
    std::stringstream contents;
    contents << file.rdbuf();
    return contents.str();
  };
  return {read("ca.crt"), read("server.crt"), read("server.key"),
          read("client.crt"), read("client.key")};
}

TEST(PredictionServiceGrpcTest, MutualTlsCallSucceeds) {
  const TlsFiles tls = MakeTlsFiles();
  ASSERT_FALSE(tls.client_key.empty());
  TestPredictionServer server(Echo, &tls);
  PredictionServiceChannelOptions options;
  options.use_tls = true;
  options.ssl_root_certs = tls.root_cert;
  options.ssl_client_cert = tls.client_cert;
  options.ssl_client_key = tls.client_key;
  options.ssl_target_name_override = "localhost";
  auto service = Connect(server.address(), options);
  ASSERT_NE(service, nullptr);

  const Result result =
      CallPredict(*service, RequestWithInput("x", "secret"), absl::Seconds(30));

  ASSERT_TRUE(result.status.ok()) << result.status;
  EXPECT_EQ(result.response.outputs().at("x").tensor_content(), "secret");
}

TEST(PredictionServiceGrpcTest, TlsServerRefusesClientWithoutCertificate) {
  const TlsFiles tls = MakeTlsFiles();
  ASSERT_FALSE(tls.root_cert.empty());
  TestPredictionServer server(Echo, &tls);
  PredictionServiceChannelOptions options;
  options.use_tls = true;
  options.ssl_root_certs = tls.root_cert;
  options.ssl_target_name_override = "localhost";
  auto service = Connect(server.address(), options);
  ASSERT_NE(service, nullptr);

  const Result result =
      CallPredict(*service, RequestWithInput("x", "t"), absl::Seconds(30));

  EXPECT_EQ(result.status.code(), absl::StatusCode::kUnavailable)
      << result.status;
  EXPECT_TRUE(server.received().empty());
}

TEST(PredictionServiceGrpcTest, PlaintextClientCannotTalkToTlsServer) {
  const TlsFiles tls = MakeTlsFiles();
  ASSERT_FALSE(tls.root_cert.empty());
  TestPredictionServer server(Echo, &tls);
  auto service = Connect(server.address());
  ASSERT_NE(service, nullptr);
  const Result result =
      CallPredict(*service, RequestWithInput("x", "t"), absl::Seconds(30));
  EXPECT_EQ(result.status.code(), absl::StatusCode::kUnavailable)
      << result.status;
  EXPECT_TRUE(server.received().empty());
}

}  // namespace
}  // namespace serving
}  // namespace tensorflow
