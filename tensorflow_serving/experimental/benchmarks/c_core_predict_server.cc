// The benchmark's C-core floor server: PredictionService/Predict on gRPC's C
// core, with nothing else in the serving path (no Python, no TensorFlow, no
// protobuf runtime), so a client's time against it is the client's own cost
// plus the least one call costs on this machine.
//
//   c_core_predict_server --reply=canned --response_file=PATH [--port=0]
//                         [--threads=2]
//   c_core_predict_server --reply=echo [--port=0] [--threads=2]
//
// canned: every Predict is answered with the bytes of --response_file (a
//         serialized PredictResponse).
// echo:   every Predict is answered with the request's inputs as outputs and
//         its model_spec, re-tagged on the wire from PredictRequest's field
//         numbers to PredictResponse's; tensor bytes are shared with the
//         request, not copied.
// Other methods get UNIMPLEMENTED. Calls are served on --threads threads,
// each draining a completion queue of its own. Prints `READY <port>` on stdout
// once it serves on 127.0.0.1 and runs until SIGTERM or SIGINT.

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <signal.h>

#include <cstdint>
#include <cstdio>
#include <future>  // NOLINT(build/c++11): the shutdown notification.
#include <string>
#include <thread>  // NOLINT(build/c++11): the serving threads.
#include <vector>

#include "tensorflow_serving/experimental/benchmarks/c_core_common.h"

namespace tensorflow {
namespace serving {
namespace benchmarks {
namespace {

constexpr char kUsage[] =
    "usage: c_core_predict_server --reply=canned|echo [--response_file=PATH] "
    "[--port=0] [--threads=2]\n"
    "  --reply=canned answers every Predict with the bytes of --response_file;\n"
    "  --reply=echo answers with the request's inputs as outputs.\n"
    "Prints 'READY <port>' once it serves on 127.0.0.1; stops on SIGTERM.\n";

// Requested calls waiting on each completion queue; one more is requested as
// each arrives, so this only bounds how many arrive at the same instant.
constexpr int kPendingPerQueue = 16;

// Field numbers of the messages the echo re-tags (tensorflow_serving/apis/
// predict.proto).
constexpr uint32_t kRequestModelSpec = 1;
constexpr uint32_t kRequestInputs = 2;
constexpr uint32_t kResponseOutputs = 1;
constexpr uint32_t kResponseModelSpec = 2;
constexpr uint32_t kLengthDelimited = 2;

// Something a completion queue event is for.
class Tag {
 public:
  virtual ~Tag() = default;
  virtual void Proceed(bool ok) = 0;
};

// Reads a varint at bytes[*pos]; false if it runs past `size` or is too long.
bool ReadVarint(const uint8_t* bytes, size_t size, size_t* pos,
                uint64_t* value) {
  *value = 0;
  for (int shift = 0; shift < 64 && *pos < size; shift += 7) {
    const uint8_t byte = bytes[(*pos)++];
    *value |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) return true;
  }
  return false;
}

void AppendVarint(uint64_t value, std::string* out) {
  while (value >= 0x80) {
    out->push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out->push_back(static_cast<char>(value));
}

// Turns a serialized PredictRequest into the slices of a PredictResponse that
// carries its inputs as outputs; the fields' bytes are sub-slices of
// `request`. An empty string on success, else what is wrong with the request.
std::string EchoSlices(const grpc_slice& request,
                       std::vector<grpc_slice>* slices) {
  const uint8_t* bytes = GRPC_SLICE_START_PTR(request);
  const size_t size = GRPC_SLICE_LENGTH(request);
  size_t pos = 0;
  while (pos < size) {
    uint64_t key, length;
    if (!ReadVarint(bytes, size, &pos, &key)) return "truncated field key";
    const uint32_t field = static_cast<uint32_t>(key >> 3);
    switch (key & 7) {
      case 0:
        if (!ReadVarint(bytes, size, &pos, &length)) return "truncated varint";
        continue;
      case 1:
        length = 8;
        break;
      case 5:
        length = 4;
        break;
      case kLengthDelimited:
        if (!ReadVarint(bytes, size, &pos, &length)) return "truncated length";
        break;
      default:
        return "field " + std::to_string(field) + " has an unsupported type";
    }
    if (length > size - pos) {
      return "field " + std::to_string(field) + " runs past the message";
    }
    const uint32_t response_field =
        field == kRequestModelSpec ? kResponseModelSpec
        : field == kRequestInputs  ? kResponseOutputs
                                   : 0;
    if (response_field != 0 && (key & 7) == kLengthDelimited) {
      std::string header;
      AppendVarint((response_field << 3) | kLengthDelimited, &header);
      AppendVarint(length, &header);
      slices->push_back(
          grpc_slice_from_copied_buffer(header.data(), header.size()));
      slices->push_back(grpc_slice_sub(request, pos, pos + length));
    }
    pos += length;
  }
  return "";
}

class Server;

// One Predict call, from its arrival (with the request's bytes) to the end
// of the reply.
class PredictCall : public Tag {
 public:
  PredictCall(Server* server, grpc_completion_queue* queue);
  ~PredictCall() override;

  // Asks the server for the next Predict call on this call's queue.
  void Request();
  void Proceed(bool ok) override;

 private:
  void Reply();

  Server* const server_;
  grpc_completion_queue* const queue_;
  bool replying_ = false;
  grpc_call* call_ = nullptr;
  gpr_timespec deadline_;
  grpc_metadata_array request_metadata_;
  grpc_byte_buffer* request_ = nullptr;
  grpc_byte_buffer* response_ = nullptr;
  grpc_slice error_details_ = grpc_empty_slice();
  int cancelled_ = 0;
};

// Any other method: answered UNIMPLEMENTED without reading its message.
class UnknownCall : public Tag {
 public:
  UnknownCall(Server* server, grpc_completion_queue* queue);
  ~UnknownCall() override;

  void Request();
  void Proceed(bool ok) override;

 private:
  Server* const server_;
  grpc_completion_queue* const queue_;
  bool replying_ = false;
  grpc_call* call_ = nullptr;
  grpc_call_details details_;
  grpc_metadata_array request_metadata_;
  grpc_slice error_details_ = grpc_empty_slice();
  int cancelled_ = 0;
};

// Fulfils a promise when the server has shut down.
class ShutdownTag : public Tag {
 public:
  void Proceed(bool ok) override { done_.set_value(); }
  void Wait() { done_.get_future().wait(); }

 private:
  std::promise<void> done_;
};

class Server {
 public:
  Server(bool echo, std::string canned) : echo_(echo) {
    canned_ = grpc_slice_from_copied_buffer(canned.data(), canned.size());
  }
  ~Server() { grpc_slice_unref(canned_); }

  // Binds 127.0.0.1:`port` and starts serving on `threads` threads; returns
  // the bound port, or 0 if it cannot listen.
  int Start(int port, int threads) {
    grpc_arg args[2];
    args[0].type = GRPC_ARG_INTEGER;
    args[0].key = const_cast<char*>(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH);
    args[0].value.integer = -1;
    args[1].type = GRPC_ARG_INTEGER;
    args[1].key = const_cast<char*>(GRPC_ARG_MAX_SEND_MESSAGE_LENGTH);
    args[1].value.integer = -1;
    const grpc_channel_args channel_args = {2, args};
    server_ = grpc_server_create(&channel_args, nullptr);
    predict_ = grpc_server_register_method(
        server_, kPredictMethod, nullptr,
        GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
    for (int i = 0; i < threads; ++i) {
      queues_.push_back(grpc_completion_queue_create_for_next(nullptr));
      grpc_server_register_completion_queue(server_, queues_.back(), nullptr);
    }
    grpc_server_credentials* credentials =
        grpc_insecure_server_credentials_create();
    const std::string address = "127.0.0.1:" + std::to_string(port);
    const int bound =
        grpc_server_add_http2_port(server_, address.c_str(), credentials);
    grpc_server_credentials_release(credentials);
    if (bound == 0) return 0;
    grpc_server_start(server_);
    for (grpc_completion_queue* queue : queues_) {
      for (int i = 0; i < kPendingPerQueue; ++i) {
        (new PredictCall(this, queue))->Request();
      }
      (new UnknownCall(this, queue))->Request();
      threads_.emplace_back(&Server::Drain, queue);
    }
    return bound;
  }

  // Stops accepting calls, cancels those in flight, and joins the threads.
  void Stop() {
    ShutdownTag shutdown;
    grpc_server_shutdown_and_notify(server_, queues_[0], &shutdown);
    grpc_server_cancel_all_calls(server_);
    shutdown.Wait();
    for (grpc_completion_queue* queue : queues_) {
      grpc_completion_queue_shutdown(queue);
    }
    for (std::thread& thread : threads_) thread.join();
    grpc_server_destroy(server_);
    for (grpc_completion_queue* queue : queues_) {
      grpc_completion_queue_destroy(queue);
    }
  }

  grpc_server* server() const { return server_; }
  void* predict_method() const { return predict_; }
  bool echo() const { return echo_; }
  const grpc_slice& canned() const { return canned_; }

 private:
  static void Drain(grpc_completion_queue* queue) {
    while (true) {
      const grpc_event event = grpc_completion_queue_next(
          queue, gpr_inf_future(GPR_CLOCK_REALTIME), nullptr);
      if (event.type == GRPC_QUEUE_SHUTDOWN) return;
      static_cast<Tag*>(event.tag)->Proceed(event.success != 0);
    }
  }

  const bool echo_;
  grpc_slice canned_;
  grpc_server* server_ = nullptr;
  void* predict_ = nullptr;
  std::vector<grpc_completion_queue*> queues_;
  std::vector<std::thread> threads_;
};

PredictCall::PredictCall(Server* server, grpc_completion_queue* queue)
    : server_(server), queue_(queue) {
  grpc_metadata_array_init(&request_metadata_);
}

PredictCall::~PredictCall() {
  if (call_ != nullptr) grpc_call_unref(call_);
  if (request_ != nullptr) grpc_byte_buffer_destroy(request_);
  if (response_ != nullptr) grpc_byte_buffer_destroy(response_);
  grpc_slice_unref(error_details_);
  grpc_metadata_array_destroy(&request_metadata_);
}

void PredictCall::Request() {
  const grpc_call_error error = grpc_server_request_registered_call(
      server_->server(), server_->predict_method(), &call_, &deadline_,
      &request_metadata_, &request_, queue_, queue_, this);
  if (error != GRPC_CALL_OK) delete this;  // the server is shutting down
}

void PredictCall::Proceed(bool ok) {
  if (replying_ || !ok) {  // the reply went out, or the server shut down
    delete this;
    return;
  }
  (new PredictCall(server_, queue_))->Request();
  replying_ = true;
  Reply();
}

void PredictCall::Reply() {
  grpc_status_code status = GRPC_STATUS_OK;
  if (server_->echo()) {
    grpc_slice request = FlattenByteBuffer(request_);
    std::vector<grpc_slice> slices;
    const std::string error = EchoSlices(request, &slices);
    if (error.empty()) {
      response_ = grpc_raw_byte_buffer_create(slices.data(), slices.size());
    } else {
      status = GRPC_STATUS_INVALID_ARGUMENT;
      error_details_ = grpc_slice_from_copied_string(
          ("the request is not a PredictRequest: " + error).c_str());
    }
    for (grpc_slice& slice : slices) grpc_slice_unref(slice);
    grpc_slice_unref(request);
  } else {
    grpc_slice canned = server_->canned();
    response_ = grpc_raw_byte_buffer_create(&canned, 1);
  }
  grpc_op ops[4] = {};
  size_t count = 0;
  ops[count++].op = GRPC_OP_SEND_INITIAL_METADATA;
  if (response_ != nullptr) {
    ops[count].op = GRPC_OP_SEND_MESSAGE;
    ops[count++].data.send_message.send_message = response_;
  }
  ops[count].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
  ops[count].data.send_status_from_server.status = status;
  ops[count++].data.send_status_from_server.status_details =
      status == GRPC_STATUS_OK ? nullptr : &error_details_;
  ops[count].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
  ops[count++].data.recv_close_on_server.cancelled = &cancelled_;
  if (grpc_call_start_batch(call_, ops, count, this, nullptr) !=
      GRPC_CALL_OK) {
    std::fprintf(stderr, "error: could not start the reply batch\n");
    std::abort();
  }
}

UnknownCall::UnknownCall(Server* server, grpc_completion_queue* queue)
    : server_(server), queue_(queue) {
  grpc_call_details_init(&details_);
  grpc_metadata_array_init(&request_metadata_);
}

UnknownCall::~UnknownCall() {
  if (call_ != nullptr) grpc_call_unref(call_);
  grpc_slice_unref(error_details_);
  grpc_call_details_destroy(&details_);
  grpc_metadata_array_destroy(&request_metadata_);
}

void UnknownCall::Request() {
  const grpc_call_error error =
      grpc_server_request_call(server_->server(), &call_, &details_,
                               &request_metadata_, queue_, queue_, this);
  if (error != GRPC_CALL_OK) delete this;
}

void UnknownCall::Proceed(bool ok) {
  if (replying_ || !ok) {
    delete this;
    return;
  }
  (new UnknownCall(server_, queue_))->Request();
  replying_ = true;
  const std::string method(
      reinterpret_cast<const char*>(GRPC_SLICE_START_PTR(details_.method)),
      GRPC_SLICE_LENGTH(details_.method));
  error_details_ = grpc_slice_from_copied_string(
      ("this benchmark server serves only " + std::string(kPredictMethod) +
       ", not " + method)
          .c_str());
  grpc_op ops[3] = {};
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[1].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
  ops[1].data.send_status_from_server.status = GRPC_STATUS_UNIMPLEMENTED;
  ops[1].data.send_status_from_server.status_details = &error_details_;
  ops[2].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
  ops[2].data.recv_close_on_server.cancelled = &cancelled_;
  if (grpc_call_start_batch(call_, ops, 3, this, nullptr) != GRPC_CALL_OK) {
    std::fprintf(stderr, "error: could not start the UNIMPLEMENTED batch\n");
    std::abort();
  }
}

int Main(int argc, char** argv) {
  const Flags flags(argc, argv,
                    {{"reply", ""},
                     {"response_file", ""},
                     {"port", "0"},
                     {"threads", "2"}},
                    kUsage);
  const std::string& reply = flags.String("reply");
  if (reply != "canned" && reply != "echo") {
    UsageError("--reply must be 'canned' or 'echo', got '" + reply + "'",
               kUsage);
  }
  const bool echo = reply == "echo";
  if (echo != flags.String("response_file").empty()) {
    UsageError("--response_file is needed with --reply=canned, and only then",
               kUsage);
  }
  const std::string canned =
      echo ? "" : ReadFileOrDie("response_file", flags.String("response_file"));
  const int port = static_cast<int>(flags.Int("port", 0));
  const int threads = static_cast<int>(flags.Int("threads", 1));

  // Signals are taken by sigwait below, never by gRPC's threads.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  grpc_init();
  Server server(echo, canned);
  const int bound = server.Start(port, threads);
  if (bound == 0) {
    std::fprintf(stderr, "error: --port: cannot listen on 127.0.0.1:%d\n",
                 port);
    return 1;
  }
  std::printf("READY %d\n", bound);
  std::fflush(stdout);
  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  server.Stop();
  grpc_shutdown();
  return 0;
}

}  // namespace
}  // namespace benchmarks
}  // namespace serving
}  // namespace tensorflow

int main(int argc, char** argv) {
  return tensorflow::serving::benchmarks::Main(argc, argv);
}
