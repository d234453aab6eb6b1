// The benchmark's C-core floor client: the same unary Predict call, made one
// at a time on gRPC's C core with fixed request bytes, and timed. Nothing else
// is in its path (no Python, no TensorFlow, no protobuf runtime), so its
// latency against c_core_predict_server is the least one call costs here.
//
//   c_core_predict_client --target=127.0.0.1:PORT --request_file=PATH
//       [--calls=100] [--warmup_calls=10] [--max_seconds=10]
//       [--response_file=PATH]
//
// Makes --warmup_calls untimed calls, then timed calls until --calls were made
// or --max_seconds passed (at least one), and prints on stdout one JSON object:
//   {"seconds": [per-call wall time, ...], "request_bytes": N,
//    "response_bytes": N}
// --response_file receives the last reply's bytes, for the caller to check.
// Any call that does not end OK fails the program (status 1), naming the
// gRPC status and its message.

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>

#include <chrono>  // NOLINT(build/c++11): the steady clock.
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "tensorflow_serving/experimental/benchmarks/c_core_common.h"

namespace tensorflow {
namespace serving {
namespace benchmarks {
namespace {

constexpr char kUsage[] =
    "usage: c_core_predict_client --target=127.0.0.1:PORT "
    "--request_file=PATH [--calls=100] [--warmup_calls=10] "
    "[--max_seconds=10] [--response_file=PATH]\n"
    "  Times unary PredictionService/Predict calls with the bytes of "
    "--request_file; prints JSON.\n";

constexpr int kDeadlineSeconds = 60;

// One channel and completion queue; calls are made one at a time.
class Client {
 public:
  explicit Client(const std::string& target) {
    grpc_arg args[2];
    args[0].type = GRPC_ARG_INTEGER;
    args[0].key = const_cast<char*>(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH);
    args[0].value.integer = -1;
    args[1].type = GRPC_ARG_INTEGER;
    args[1].key = const_cast<char*>(GRPC_ARG_MAX_SEND_MESSAGE_LENGTH);
    args[1].value.integer = -1;
    const grpc_channel_args channel_args = {2, args};
    grpc_channel_credentials* credentials = grpc_insecure_credentials_create();
    channel_ = grpc_channel_create(target.c_str(), credentials, &channel_args);
    grpc_channel_credentials_release(credentials);
    queue_ = grpc_completion_queue_create_for_next(nullptr);
  }

  ~Client() {
    grpc_completion_queue_shutdown(queue_);
    while (grpc_completion_queue_next(queue_,
                                      gpr_inf_future(GPR_CLOCK_REALTIME),
                                      nullptr)
               .type != GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(queue_);
    grpc_channel_destroy(channel_);
  }

  // One Predict call; on success the reply's bytes are in `response` (if not
  // null). Returns "" or the error.
  std::string Call(const grpc_slice& request, std::string* response) {
    const gpr_timespec deadline = gpr_time_add(
        gpr_now(GPR_CLOCK_MONOTONIC),
        gpr_time_from_seconds(kDeadlineSeconds, GPR_TIMESPAN));
    const grpc_slice method = grpc_slice_from_static_string(kPredictMethod);
    grpc_call* call =
        grpc_channel_create_call(channel_, nullptr, GRPC_PROPAGATE_DEFAULTS,
                                 queue_, method, nullptr, deadline, nullptr);
    grpc_slice request_slice = request;
    grpc_byte_buffer* request_buffer =
        grpc_raw_byte_buffer_create(&request_slice, 1);
    grpc_metadata_array initial_metadata, trailing_metadata;
    grpc_metadata_array_init(&initial_metadata);
    grpc_metadata_array_init(&trailing_metadata);
    grpc_byte_buffer* response_buffer = nullptr;
    grpc_status_code status = GRPC_STATUS_UNKNOWN;
    grpc_slice details = grpc_empty_slice();

    grpc_op ops[6] = {};
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = request_buffer;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial_metadata;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &response_buffer;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &trailing_metadata;
    ops[5].data.recv_status_on_client.status = &status;
    ops[5].data.recv_status_on_client.status_details = &details;
    std::string error;
    if (grpc_call_start_batch(call, ops, 6, call, nullptr) != GRPC_CALL_OK) {
      error = "could not start the call";
    } else {
      const grpc_event event = grpc_completion_queue_next(
          queue_, gpr_inf_future(GPR_CLOCK_REALTIME), nullptr);
      if (event.type != GRPC_OP_COMPLETE || event.tag != call) {
        error = "unexpected completion queue event";
      } else if (status != GRPC_STATUS_OK) {
        error = "gRPC status " + std::to_string(status) + ": " +
                std::string(reinterpret_cast<const char*>(
                                GRPC_SLICE_START_PTR(details)),
                            GRPC_SLICE_LENGTH(details));
      } else if (response != nullptr) {
        grpc_slice bytes = FlattenByteBuffer(response_buffer);
        response->assign(
            reinterpret_cast<const char*>(GRPC_SLICE_START_PTR(bytes)),
            GRPC_SLICE_LENGTH(bytes));
        grpc_slice_unref(bytes);
      }
    }
    if (response_buffer != nullptr) grpc_byte_buffer_destroy(response_buffer);
    grpc_byte_buffer_destroy(request_buffer);
    grpc_slice_unref(details);
    grpc_metadata_array_destroy(&initial_metadata);
    grpc_metadata_array_destroy(&trailing_metadata);
    grpc_call_unref(call);
    return error;
  }

 private:
  grpc_channel* channel_;
  grpc_completion_queue* queue_;
};

int Main(int argc, char** argv) {
  const Flags flags(argc, argv,
                    {{"target", ""},
                     {"request_file", ""},
                     {"calls", "100"},
                     {"warmup_calls", "10"},
                     {"max_seconds", "10"},
                     {"response_file", ""}},
                    kUsage);
  if (flags.String("target").empty()) UsageError("--target is needed", kUsage);
  if (flags.String("request_file").empty()) {
    UsageError("--request_file is needed", kUsage);
  }
  const std::string request_bytes =
      ReadFileOrDie("request_file", flags.String("request_file"));
  const long long calls = flags.Int("calls", 1);
  const long long warmup_calls = flags.Int("warmup_calls", 0);
  const double max_seconds = flags.Double("max_seconds");

  grpc_init();
  int exit_code = 0;
  {
    Client client(flags.String("target"));
    grpc_slice request =
        grpc_slice_from_copied_buffer(request_bytes.data(), request_bytes.size());
    std::string response;
    std::string error;
    for (long long i = 0; i < warmup_calls && error.empty(); ++i) {
      error = client.Call(request, nullptr);
    }
    std::vector<double> seconds;
    using Clock = std::chrono::steady_clock;
    const Clock::time_point stop_at =
        Clock::now() + std::chrono::duration_cast<Clock::duration>(
                           std::chrono::duration<double>(max_seconds));
    while (error.empty() && static_cast<long long>(seconds.size()) < calls) {
      const bool last_chance = static_cast<long long>(seconds.size()) + 1 == calls;
      const Clock::time_point start = Clock::now();
      // Only the reply that is kept is copied out, after the clock stopped.
      error = client.Call(request, nullptr);
      const Clock::time_point end = Clock::now();
      seconds.push_back(std::chrono::duration<double>(end - start).count());
      if (last_chance || end >= stop_at) break;
    }
    if (error.empty()) error = client.Call(request, &response);
    grpc_slice_unref(request);
    if (!error.empty()) {
      std::fprintf(stderr, "error: Predict on %s failed: %s\n",
                   flags.String("target").c_str(), error.c_str());
      exit_code = 1;
    } else {
      if (!flags.String("response_file").empty()) {
        std::ofstream out(flags.String("response_file"), std::ios::binary);
        out << response;
        if (!out) {
          std::fprintf(stderr, "error: --response_file: cannot write '%s'\n",
                       flags.String("response_file").c_str());
          exit_code = 1;
        }
      }
      std::printf("{\"seconds\": [");
      for (size_t i = 0; i < seconds.size(); ++i) {
        std::printf("%s%.9f", i == 0 ? "" : ", ", seconds[i]);
      }
      std::printf("], \"request_bytes\": %zu, \"response_bytes\": %zu}\n",
                  request_bytes.size(), response.size());
    }
  }
  grpc_shutdown();
  return exit_code;
}

}  // namespace
}  // namespace benchmarks
}  // namespace serving
}  // namespace tensorflow

int main(int argc, char** argv) {
  return tensorflow::serving::benchmarks::Main(argc, argv);
}
