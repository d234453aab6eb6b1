// PredictionService/Predict over gRPC's C core: channel set-up, the
// completion-queue thread, and the life of one unary call.

#include "tensorflow_serving/experimental/tensorflow/ops/remote_predict/kernels/prediction_service_grpc.h"

#include <arpa/inet.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>  // NOLINT(build/c++11): the completion-queue threads.
#include <unordered_set>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/io/zero_copy_stream.h"
#include "tensorflow_serving/experimental/tensorflow/ops/remote_predict/kernels/grpc_core_api.h"

namespace tensorflow {
namespace serving {
namespace {

constexpr char kPredictMethod[] =
    "/tensorflow.serving.PredictionService/Predict";
// The first wait before reconnecting to a target that went away; later waits
// grow from it up to PredictionServiceChannelOptions' maximum.
constexpr int kInitialReconnectBackoffMillis = 100;
constexpr char kTargetHelp[] =
    "; use host:port (e.g. localhost:8500) or a gRPC URI such as "
    "dns:///host:port or ipv4:10.0.0.1:8500,10.0.0.2:8500";

// gRPC's service config for a channel: round-robin over several addresses;
// with retries, Predict waits for the target to be ready and retries
// UNAVAILABLE (gRPC allows at most 5 attempts), all within the call's deadline.
std::string ServiceConfig(bool several_addresses, bool retry_unavailable) {
  std::vector<std::string> parts;
  if (several_addresses) {
    parts.push_back(R"("loadBalancingConfig":[{"round_robin":{}}])");
  }
  if (retry_unavailable) {
    parts.push_back(
        R"("methodConfig":[{)"
        R"("name":[{"service":"tensorflow.serving.PredictionService",)"
        R"("method":"Predict"}],)"
        R"("waitForReady":true,)"
        R"("retryPolicy":{"maxAttempts":5,"initialBackoff":"0.1s",)"
        R"("maxBackoff":"1s","backoffMultiplier":2,)"
        R"("retryableStatusCodes":["UNAVAILABLE"]}}])");
  }
  if (parts.empty()) return "";
  return absl::StrCat("{", absl::StrJoin(parts, ","), "}");
}

absl::Status InvalidTarget(const std::string& target, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(
      "Invalid target_address '", target, "': ", why, kTargetHelp));
}

bool IsPort(absl::string_view port) {
  int value;
  return !port.empty() && port.size() <= 5 &&
         std::all_of(port.begin(), port.end(), absl::ascii_isdigit) &&
         absl::SimpleAtoi(port, &value) && value > 0 && value <= 65535;
}

// Splits "host:port" or "[v6]:port"; the host keeps no brackets.
bool SplitHostPort(absl::string_view host_port, absl::string_view* host,
                   absl::string_view* port) {
  if (absl::StartsWith(host_port, "[")) {
    const size_t close = host_port.find(']');
    if (close == absl::string_view::npos || close + 1 >= host_port.size() ||
        host_port[close + 1] != ':') {
      return false;
    }
    *host = host_port.substr(1, close - 1);
    *port = host_port.substr(close + 2);
  } else {
    const size_t colon = host_port.rfind(':');
    if (colon == absl::string_view::npos) return false;
    *host = host_port.substr(0, colon);
    *port = host_port.substr(colon + 1);
    if (absl::StrContains(*host, ':')) return false;  // v6 needs brackets
  }
  return !host->empty();
}

// Checks an ipv4: or ipv6: URI's comma-separated address list, which gRPC's
// resolvers for those schemes require to be numeric with ports.
absl::Status ValidateAddressList(const std::string& target,
                                 absl::string_view list, int family) {
  // "ipv4:///1.2.3.4:5" is allowed too: gRPC ignores an empty authority.
  absl::ConsumePrefix(&list, "//");
  absl::ConsumePrefix(&list, "/");
  if (list.empty()) return InvalidTarget(target, "it lists no addresses");
  for (absl::string_view address : absl::StrSplit(list, ',')) {
    absl::string_view host, port;
    unsigned char parsed[16];
    if (!SplitHostPort(address, &host, &port) || !IsPort(port) ||
        inet_pton(family, std::string(host).c_str(), parsed) != 1) {
      return InvalidTarget(target,
                           absl::StrCat("'", address, "' is not a numeric ",
                                        family == AF_INET ? "IPv4" : "IPv6",
                                        " address with a port"));
    }
  }
  return absl::OkStatus();
}

// Deadline `timeout` from now on the monotonic clock, which wall-clock
// adjustments cannot move.
gpr_timespec DeadlineFromNow(absl::Duration timeout) {
  if (timeout == absl::InfiniteDuration()) {
    return GRPC_CORE(gpr_inf_future)(GPR_CLOCK_MONOTONIC);
  }
  const int64_t micros =
      std::max<int64_t>(0, absl::ToInt64Microseconds(timeout));
  return GRPC_CORE(gpr_time_add)(
      GRPC_CORE(gpr_now)(GPR_CLOCK_MONOTONIC),
      GRPC_CORE(gpr_time_from_micros)(micros, GPR_TIMESPAN));
}

std::string SliceToString(const grpc_slice& slice) {
  return std::string(reinterpret_cast<const char*>(GRPC_SLICE_START_PTR(slice)),
                     GRPC_SLICE_LENGTH(slice));
}

// Serializes `message` straight into a gRPC byte buffer, without an
// intermediate string: a 64 MiB tensor is copied once, not twice.
absl::StatusOr<grpc_byte_buffer*> SerializeToByteBuffer(
    const google::protobuf::MessageLite& message) {
  const size_t size = message.ByteSizeLong();
  if (size > INT_MAX) {
    return absl::InvalidArgumentError(absl::StrCat(
        "PredictRequest is ", size,
        " bytes, over protobuf's 2 GiB limit; send smaller tensors"));
  }
  grpc_slice slice = GRPC_CORE(grpc_slice_malloc)(size);
  message.SerializeWithCachedSizesToArray(GRPC_SLICE_START_PTR(slice));
  grpc_byte_buffer* buffer = GRPC_CORE(grpc_raw_byte_buffer_create)(&slice, 1);
  GRPC_CORE(grpc_slice_unref)(slice);
  return buffer;
}

// Tensor contents at least this large travel in slices of their own, moved
// out of the request, instead of being copied into the request's bytes.
constexpr size_t kAdoptedContentMinBytes = 256 << 10;

size_t VarintSize(uint64_t value) {
  size_t size = 1;
  for (; value >= 0x80; value >>= 7) ++size;
  return size;
}

void AppendVarint(uint64_t value, std::string* out) {
  for (; value >= 0x80; value >>= 7) {
    out->push_back(static_cast<char>((value & 0x7f) | 0x80));
  }
  out->push_back(static_cast<char>(value));
}

// The key of a length-delimited field (a string, bytes or a message).
void AppendLengthDelimitedKey(int field_number, uint64_t length,
                              std::string* out) {
  AppendVarint((static_cast<uint64_t>(field_number) << 3) | 2, out);
  AppendVarint(length, out);
}

// The bytes of one message as gRPC slices: small pieces gathered and copied
// together, large strings adopted as slices of their own without a copy.
class SliceList {
 public:
  SliceList() = default;
  SliceList(const SliceList&) = delete;
  SliceList& operator=(const SliceList&) = delete;
  ~SliceList() {
    for (grpc_slice& slice : slices_) GRPC_CORE(grpc_slice_unref)(slice);
  }

  // Bytes to be copied into the next gathered slice.
  std::string* pending() { return &pending_; }

  void Adopt(std::string bytes) {
    Flush();
    size_ += bytes.size();
    auto* owned = new std::string(std::move(bytes));
    slices_.push_back(GRPC_CORE(grpc_slice_new_with_user_data)(
        owned->data(), owned->size(),
        [](void* string) { delete static_cast<std::string*>(string); },
        owned));
  }

  size_t size() const { return size_ + pending_.size(); }

  grpc_byte_buffer* ToByteBuffer() {
    Flush();
    return GRPC_CORE(grpc_raw_byte_buffer_create)(slices_.data(),
                                                  slices_.size());
  }

 private:
  void Flush() {
    if (pending_.empty()) return;
    size_ += pending_.size();
    slices_.push_back(GRPC_CORE(grpc_slice_from_copied_buffer)(
        pending_.data(), pending_.size()));
    pending_.clear();
  }

  std::string pending_;
  size_t size_ = 0;  // bytes already in slices_
  std::vector<grpc_slice> slices_;
};

// Whether `tensor`'s tensor_content can travel as a slice of its own: it is
// large, and nothing that protobuf writes after it (fields above 4) is set,
// so its bytes are the other fields' followed by the content.
bool CanAdoptContent(const TensorProto& tensor) {
  const size_t content = tensor.tensor_content().size();
  if (content < kAdoptedContentMinBytes) return false;
  TensorProto before_content;
  before_content.set_dtype(tensor.dtype());
  if (tensor.has_tensor_shape()) {
    *before_content.mutable_tensor_shape() = tensor.tensor_shape();
  }
  before_content.set_version_number(tensor.version_number());
  return before_content.ByteSizeLong() + 1 + VarintSize(content) + content ==
         tensor.ByteSizeLong();
}

// Serializes `request` into a gRPC byte buffer and clears it. The bytes are
// those request->SerializeAsString() gives, in the same order; large
// tensor_content strings are moved into slices of their own, so a 64 MiB
// tensor is not copied at all here.
absl::StatusOr<grpc_byte_buffer*> SerializeAndClearRequest(
    PredictRequest* request) {
  const size_t size = request->ByteSizeLong();
  bool adopt_any = false;
  for (const auto& [alias, tensor] : request->inputs()) {
    adopt_any = adopt_any || CanAdoptContent(tensor);
  }
  if (size > INT_MAX || !adopt_any) {
    absl::StatusOr<grpc_byte_buffer*> bytes = SerializeToByteBuffer(*request);
    if (bytes.ok()) request->Clear();
    return bytes;
  }
  // Protobuf writes model_spec (field 1), then the inputs map (2) in its
  // iteration order, each entry its key (1) and value (2), then the fields
  // from 3 up; so does this.
  SliceList slices;
  if (request->has_model_spec()) {
    AppendLengthDelimitedKey(1, request->model_spec().ByteSizeLong(),
                             slices.pending());
    request->model_spec().AppendToString(slices.pending());
  }
  for (auto& [alias, tensor] : *request->mutable_inputs()) {
    const bool adopt = CanAdoptContent(tensor);
    const size_t tensor_size = tensor.ByteSizeLong();
    const size_t entry_size = 1 + VarintSize(alias.size()) + alias.size() +
                              1 + VarintSize(tensor_size) + tensor_size;
    AppendLengthDelimitedKey(2, entry_size, slices.pending());
    AppendLengthDelimitedKey(1, alias.size(), slices.pending());
    slices.pending()->append(alias);
    AppendLengthDelimitedKey(2, tensor_size, slices.pending());
    if (!adopt) {
      tensor.AppendToString(slices.pending());
      continue;
    }
    std::string content = std::move(*tensor.mutable_tensor_content());
    tensor.clear_tensor_content();
    tensor.AppendToString(slices.pending());
    AppendLengthDelimitedKey(4, content.size(), slices.pending());
    slices.Adopt(std::move(content));
  }
  request->clear_model_spec();
  request->clear_inputs();
  request->AppendToString(slices.pending());
  request->Clear();
  if (slices.size() != size) {
    return absl::InternalError(absl::StrCat(
        "PredictRequest serialized to ", slices.size(), " bytes instead of ",
        size, "; this is a bug in the Remote Predict Op's transport"));
  }
  return slices.ToByteBuffer();
}

// Reads a received byte buffer slice by slice, so that protobuf parses the
// reply where gRPC put it: no contiguous copy of the whole message first.
class ByteBufferInputStream : public google::protobuf::io::ZeroCopyInputStream {
 public:
  // `reader` must be initialised and outlive this stream.
  explicit ByteBufferInputStream(grpc_byte_buffer_reader* reader)
      : reader_(reader) {}

  bool Next(const void** data, int* size) override {
    if (backed_up_ == 0) {
      grpc_slice* slice;
      do {
        if (!GRPC_CORE(grpc_byte_buffer_reader_peek)(reader_, &slice)) {
          return false;
        }
      } while (GRPC_SLICE_LENGTH(*slice) == 0);
      chunk_ = GRPC_SLICE_START_PTR(*slice);
      // gRPC receives in frames far smaller than 2 GiB; a larger slice
      // would be split by protobuf's int sizes, so refuse it.
      if (GRPC_SLICE_LENGTH(*slice) > INT_MAX) return false;
      chunk_size_ = static_cast<int>(GRPC_SLICE_LENGTH(*slice));
      backed_up_ = chunk_size_;
    }
    *data = chunk_ + (chunk_size_ - backed_up_);
    *size = backed_up_;
    byte_count_ += backed_up_;
    backed_up_ = 0;
    return true;
  }

  void BackUp(int count) override {
    backed_up_ = count;
    byte_count_ -= count;
  }

  bool Skip(int count) override {
    const void* data;
    int size;
    while (count > 0) {
      if (!Next(&data, &size)) return false;
      if (size > count) {
        BackUp(size - count);
        return true;
      }
      count -= size;
    }
    return true;
  }

  int64_t ByteCount() const override { return byte_count_; }

 private:
  grpc_byte_buffer_reader* const reader_;
  const uint8_t* chunk_ = nullptr;
  int chunk_size_ = 0;
  // The unread tail of the current chunk, handed out again by Next.
  int backed_up_ = 0;
  int64_t byte_count_ = 0;
};

absl::Status ParseFromByteBuffer(grpc_byte_buffer* buffer,
                                 google::protobuf::MessageLite* message) {
  grpc_byte_buffer_reader reader;
  if (!GRPC_CORE(grpc_byte_buffer_reader_init)(&reader, buffer)) {
    return absl::InternalError("Could not read the PredictResponse bytes");
  }
  bool parsed;
  {
    ByteBufferInputStream stream(&reader);
    parsed = message->ParseFromZeroCopyStream(&stream);
  }
  GRPC_CORE(grpc_byte_buffer_reader_destroy)(&reader);
  if (!parsed) {
    return absl::InternalError(absl::StrCat(
        "The server's reply (", GRPC_CORE(grpc_byte_buffer_length)(buffer),
        " bytes) is not a PredictResponse"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateTargetAddress(const std::string& target) {
  if (target.empty()) return InvalidTarget(target, "it is empty");
  for (const char c : target) {
    if (absl::ascii_isspace(c) || absl::ascii_iscntrl(c)) {
      return InvalidTarget(target, "it contains whitespace");
    }
  }
  // A URI's scheme: a letter, then letters, digits, '+', '-' or '.'.
  const size_t colon = target.find(':');
  absl::string_view scheme = absl::string_view(target).substr(
      0, colon == std::string::npos ? 0 : colon);
  const bool looks_like_scheme =
      !scheme.empty() && absl::ascii_isalpha(scheme[0]) &&
      std::all_of(scheme.begin(), scheme.end(), [](char c) {
        return absl::ascii_isalnum(c) || c == '+' || c == '-' || c == '.';
      });
  const absl::string_view rest =
      colon == std::string::npos ? ""
                                 : absl::string_view(target).substr(colon + 1);
  if (looks_like_scheme && !IsPort(rest)) {
    if (scheme == "ipv4") return ValidateAddressList(target, rest, AF_INET);
    if (scheme == "ipv6") return ValidateAddressList(target, rest, AF_INET6);
    if (scheme == "dns" || scheme == "unix" || scheme == "unix-abstract") {
      if (rest.empty() || rest == "//" || rest == "///") {
        return InvalidTarget(target, "it names no host or path");
      }
      return absl::OkStatus();
    }
    // gRPC would read an unknown scheme as a DNS name and fail only when
    // connecting, so say so now.
    return InvalidTarget(
        target, absl::StrCat("'", scheme,
                             ":' is not a scheme gRPC resolves (dns, ipv4, "
                             "ipv6, unix, unix-abstract) and the rest is not a "
                             "port"));
  }
  absl::string_view host, port;
  if (!SplitHostPort(target, &host, &port)) {
    return InvalidTarget(target, "it has no host:port form");
  }
  if (!IsPort(port)) {
    return InvalidTarget(target,
                         absl::StrCat("'", port, "' is not a port (1-65535)"));
  }
  return absl::OkStatus();
}

absl::StatusCode StatusCodeFromGrpc(int grpc_code) {
  switch (grpc_code) {
    case GRPC_STATUS_OK:
      return absl::StatusCode::kOk;
    case GRPC_STATUS_CANCELLED:
      return absl::StatusCode::kCancelled;
    case GRPC_STATUS_UNKNOWN:
      return absl::StatusCode::kUnknown;
    case GRPC_STATUS_INVALID_ARGUMENT:
      return absl::StatusCode::kInvalidArgument;
    case GRPC_STATUS_DEADLINE_EXCEEDED:
      return absl::StatusCode::kDeadlineExceeded;
    case GRPC_STATUS_NOT_FOUND:
      return absl::StatusCode::kNotFound;
    case GRPC_STATUS_ALREADY_EXISTS:
      return absl::StatusCode::kAlreadyExists;
    case GRPC_STATUS_PERMISSION_DENIED:
      return absl::StatusCode::kPermissionDenied;
    case GRPC_STATUS_RESOURCE_EXHAUSTED:
      return absl::StatusCode::kResourceExhausted;
    case GRPC_STATUS_FAILED_PRECONDITION:
      return absl::StatusCode::kFailedPrecondition;
    case GRPC_STATUS_ABORTED:
      return absl::StatusCode::kAborted;
    case GRPC_STATUS_OUT_OF_RANGE:
      return absl::StatusCode::kOutOfRange;
    case GRPC_STATUS_UNIMPLEMENTED:
      return absl::StatusCode::kUnimplemented;
    case GRPC_STATUS_INTERNAL:
      return absl::StatusCode::kInternal;
    case GRPC_STATUS_UNAVAILABLE:
      return absl::StatusCode::kUnavailable;
    case GRPC_STATUS_DATA_LOSS:
      return absl::StatusCode::kDataLoss;
    case GRPC_STATUS_UNAUTHENTICATED:
      return absl::StatusCode::kUnauthenticated;
    default:
      return absl::StatusCode::kUnknown;
  }
}

namespace {

// The completion queues every call of the process reports to, each drained
// by one thread of its own. Created on first use and kept for the life of the
// process, so the number of threads does not grow with kernels or channels.
class CompletionQueuePool {
 public:
  static constexpr int kQueues = 2;

  static CompletionQueuePool& Get() {
    static CompletionQueuePool* const pool = new CompletionQueuePool;
    return *pool;
  }

  // The queue for the next call: round-robin, so no queue is a bottleneck.
  grpc_completion_queue* Next() {
    return queues_[next_.fetch_add(1, std::memory_order_relaxed) % kQueues];
  }

  // Whether the calling thread is one of the pool's.
  static bool OnPoolThread() { return on_pool_thread_; }

 private:
  CompletionQueuePool() {
    GRPC_CORE(grpc_init)();  // never shut down: the pool lives as long
    for (int i = 0; i < kQueues; ++i) {
      grpc_completion_queue* queue =
          GRPC_CORE(grpc_completion_queue_create_for_next)(nullptr);
      queues_.push_back(queue);
      std::thread(&CompletionQueuePool::Drain, queue).detach();
    }
  }

  static void Drain(grpc_completion_queue* queue);

  static thread_local bool on_pool_thread_;
  std::vector<grpc_completion_queue*> queues_;
  std::atomic<size_t> next_{0};
};

thread_local bool CompletionQueuePool::on_pool_thread_ = false;

}  // namespace

// One gRPC channel, shared by every stub created with the same target,
// credentials and channel arguments (see ChannelCache). Its last user, a stub
// or a call still in flight, closes it.
class PredictionServiceGrpc::Channel {
 public:
  Channel(std::string target, std::string key, grpc_channel* channel)
      : target_(std::move(target)), key_(std::move(key)), channel_(channel) {}

  ~Channel();

  const std::string& target() const { return target_; }
  grpc_channel* channel() const { return channel_; }

 private:
  const std::string target_;
  const std::string key_;
  grpc_channel* const channel_;
};

namespace {

// The process's open channels by key. Holds them weakly: a channel closes when
// no stub or call uses it any more.
class ChannelCache {
 public:
  using Channel = PredictionServiceGrpc::Channel;

  static ChannelCache& Get() {
    static ChannelCache* const cache = new ChannelCache;
    return *cache;
  }

  // The open channel for `key`, or a new one from `create` (which runs under
  // the cache's lock, so concurrent kernels make one channel, not several).
  absl::StatusOr<std::shared_ptr<Channel>> GetOrCreate(
      const std::string& key,
      const std::function<absl::StatusOr<std::shared_ptr<Channel>>()>& create)
      ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    auto found = channels_.find(key);
    if (found != channels_.end()) {
      if (std::shared_ptr<Channel> open = found->second.lock()) return open;
    }
    absl::StatusOr<std::shared_ptr<Channel>> created = create();
    if (created.ok()) channels_[key] = *created;
    return created;
  }

  // Forgets `key` if its channel is gone (a newer one may have replaced it).
  void Forget(const std::string& key) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    auto found = channels_.find(key);
    if (found != channels_.end() && found->second.expired()) {
      channels_.erase(found);
    }
  }

  int OpenCount() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    int open = 0;
    for (const auto& [key, channel] : channels_) open += !channel.expired();
    return open;
  }

 private:
  absl::Mutex mu_;
  std::map<std::string, std::weak_ptr<Channel>> channels_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

PredictionServiceGrpc::Channel::~Channel() {
  ChannelCache::Get().Forget(key_);
  GRPC_CORE(grpc_channel_destroy)(channel_);
  GRPC_CORE(grpc_shutdown)();
}

// The calls one stub has in flight, so that destroying the stub can cancel
// them and wait for their callbacks. Calls share it, since they may finish
// after the stub is gone.
class PredictionServiceGrpc::InFlight {
 public:
  void Add(Call* call) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    calls_.insert(call);
    ++unfinished_;
  }
  // The call is about to be deleted: cancelling it is no longer possible.
  void Remove(Call* call) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    calls_.erase(call);
  }
  // The call's callback has returned.
  void Finished() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    --unfinished_;
  }
  void CancelAll() ABSL_LOCKS_EXCLUDED(mu_);
  void AwaitAllFinished() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](int* unfinished) { return *unfinished == 0; }, &unfinished_));
  }

 private:
  absl::Mutex mu_;
  std::unordered_set<Call*> calls_ ABSL_GUARDED_BY(mu_);
  int unfinished_ ABSL_GUARDED_BY(mu_) = 0;
};

// One call on the wire: the batch's buffers, which gRPC fills in, and what to
// do when it completes. Deletes itself after running the callback.
class PredictionServiceGrpc::Call {
 public:
  Call(std::shared_ptr<Channel> channel, std::shared_ptr<InFlight> in_flight,
       Rpc* rpc, PredictResponse* response,
       std::function<void(absl::Status)> callback)
      : channel_(std::move(channel)),
        in_flight_(std::move(in_flight)),
        rpc_(rpc),
        response_(response),
        callback_(std::move(callback)) {
    GRPC_CORE(grpc_metadata_array_init)(&initial_metadata_);
    GRPC_CORE(grpc_metadata_array_init)(&trailing_metadata_);
  }

  ~Call() {
    if (request_ != nullptr) GRPC_CORE(grpc_byte_buffer_destroy)(request_);
    if (reply_ != nullptr) GRPC_CORE(grpc_byte_buffer_destroy)(reply_);
    GRPC_CORE(grpc_slice_unref)(status_details_);
    GRPC_CORE(grpc_metadata_array_destroy)(&initial_metadata_);
    GRPC_CORE(grpc_metadata_array_destroy)(&trailing_metadata_);
  }

  // Starts the unary call. On failure nothing is in flight and the caller
  // still owns this object.
  absl::Status Start(grpc_byte_buffer* request);

  // The batch completed: collects the status and the response, releases the
  // call, runs the callback and deletes this.
  void Finish();

  Rpc* rpc() const { return rpc_; }

  // The call never started: runs the callback with `status` and deletes this.
  void Abandon(absl::Status status);

 private:
  const std::shared_ptr<Channel> channel_;
  const std::shared_ptr<InFlight> in_flight_;
  Rpc* const rpc_;
  PredictResponse* const response_;
  std::function<void(absl::Status)> callback_;
  grpc_call* call_ = nullptr;
  grpc_byte_buffer* request_ = nullptr;
  grpc_byte_buffer* reply_ = nullptr;
  grpc_metadata_array initial_metadata_;
  grpc_metadata_array trailing_metadata_;
  grpc_status_code status_ = GRPC_STATUS_UNKNOWN;
  grpc_slice status_details_ = GRPC_CORE(grpc_empty_slice)();
};

absl::Status PredictionServiceGrpc::Call::Start(grpc_byte_buffer* request) {
  request_ = request;
  const grpc_slice method =
      GRPC_CORE(grpc_slice_from_static_string)(kPredictMethod);
  {
    absl::MutexLock lock(&rpc_->mu_);
    if (rpc_->cancelled_) {
      return absl::CancelledError("Predict was cancelled before it started");
    }
    call_ = GRPC_CORE(grpc_channel_create_call)(
        channel_->channel(), /*parent_call=*/nullptr, GRPC_PROPAGATE_DEFAULTS,
        CompletionQueuePool::Get().Next(), method, /*host=*/nullptr,
        DeadlineFromNow(rpc_->timeout()), /*reserved=*/nullptr);
    if (call_ == nullptr) {
      return absl::InternalError("gRPC could not create the Predict call");
    }
    rpc_->call_ = call_;
  }

  grpc_op ops[6] = {};
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[1].op = GRPC_OP_SEND_MESSAGE;
  ops[1].data.send_message.send_message = request_;
  ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
  ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
  ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial_metadata_;
  ops[4].op = GRPC_OP_RECV_MESSAGE;
  ops[4].data.recv_message.recv_message = &reply_;
  ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
  ops[5].data.recv_status_on_client.trailing_metadata = &trailing_metadata_;
  ops[5].data.recv_status_on_client.status = &status_;
  ops[5].data.recv_status_on_client.status_details = &status_details_;

  // Registered before the batch starts: the completion may arrive at once.
  in_flight_->Add(this);
  const grpc_call_error error = GRPC_CORE(grpc_call_start_batch)(
      call_, ops, 6, /*tag=*/this, /*reserved=*/nullptr);
  if (error != GRPC_CALL_OK) {
    in_flight_->Remove(this);
    in_flight_->Finished();
    {
      absl::MutexLock lock(&rpc_->mu_);
      rpc_->call_ = nullptr;
    }
    GRPC_CORE(grpc_call_unref)(call_);
    call_ = nullptr;
    return absl::InternalError(
        absl::StrCat("gRPC refused to start the Predict call (grpc_call_error ",
                     error, ")"));
  }
  return absl::OkStatus();
}

void PredictionServiceGrpc::Call::Finish() {
  in_flight_->Remove(this);
  {
    absl::MutexLock lock(&rpc_->mu_);
    rpc_->call_ = nullptr;
  }
  GRPC_CORE(grpc_call_unref)(call_);
  call_ = nullptr;

  absl::Status status;
  if (status_ != GRPC_STATUS_OK) {
    status = absl::Status(StatusCodeFromGrpc(status_),
                          SliceToString(status_details_));
  } else if (reply_ == nullptr) {
    status = absl::InternalError(
        "The server ended the Predict call with OK but sent no response");
  } else {
    status = ParseFromByteBuffer(reply_, response_);
  }
  std::function<void(absl::Status)> callback = std::move(callback_);
  std::shared_ptr<InFlight> in_flight = in_flight_;
  delete this;
  callback(std::move(status));
  in_flight->Finished();
}

void PredictionServiceGrpc::Call::Abandon(absl::Status status) {
  std::function<void(absl::Status)> callback = std::move(callback_);
  delete this;
  callback(std::move(status));
}

void CompletionQueuePool::Drain(grpc_completion_queue* queue) {
  on_pool_thread_ = true;
  while (true) {
    const grpc_event event = GRPC_CORE(grpc_completion_queue_next)(
        queue, GRPC_CORE(gpr_inf_future)(GPR_CLOCK_MONOTONIC), nullptr);
    if (event.type == GRPC_QUEUE_SHUTDOWN) break;
    if (event.type == GRPC_OP_COMPLETE) {
      // A client batch that ends in RECV_STATUS_ON_CLIENT always succeeds;
      // failures arrive as its status.
      static_cast<PredictionServiceGrpc::Call*>(event.tag)->Finish();
    }
  }
}

void PredictionServiceGrpc::InFlight::CancelAll() {
  absl::MutexLock lock(&mu_);
  for (Call* call : calls_) {
    call->rpc()->TryCancel();
  }
}

PredictionServiceGrpc::Rpc::~Rpc() = default;

void PredictionServiceGrpc::Rpc::TryCancel() {
  absl::MutexLock lock(&mu_);
  cancelled_ = true;
  if (call_ != nullptr) GRPC_CORE(grpc_call_cancel)(call_, nullptr);
}

namespace {

// What makes two channels interchangeable: the target, the credentials and
// the channel arguments (which follow from the options). Every field is
// length-prefixed, so no two option sets give the same key.
std::string ChannelKey(const std::string& target_address,
                       const PredictionServiceChannelOptions& options) {
  std::string key;
  for (const std::string* field :
       {&target_address, &options.ssl_root_certs, &options.ssl_client_cert,
        &options.ssl_client_key, &options.ssl_target_name_override}) {
    absl::StrAppend(&key, field->size(), ":", *field, ";");
  }
  absl::StrAppend(&key, options.use_tls, ";",
                  options.max_reconnect_backoff_millis, ";",
                  options.retry_unavailable);
  return key;
}

}  // namespace

absl::Status PredictionServiceGrpc::Create(
    const std::string& target_address,
    std::unique_ptr<PredictionServiceGrpc>* service) {
  return Create(target_address, PredictionServiceChannelOptions(), service);
}

absl::Status PredictionServiceGrpc::Create(
    const std::string& target_address,
    const PredictionServiceChannelOptions& options,
    std::unique_ptr<PredictionServiceGrpc>* service) {
  if (absl::Status valid = ValidateTargetAddress(target_address); !valid.ok()) {
    return valid;
  }
  if (options.ssl_client_cert.empty() != options.ssl_client_key.empty()) {
    return absl::InvalidArgumentError(
        "Mutual TLS needs both a client certificate and its private key; "
        "only one was given");
  }

  if (absl::Status loaded = grpc_core_api::EnsureLoaded(); !loaded.ok()) {
    return loaded;
  }

  const std::string key = ChannelKey(target_address, options);
  absl::StatusOr<std::shared_ptr<Channel>> channel =
      ChannelCache::Get().GetOrCreate(key, [&] {
        return OpenChannel(target_address, key, options);
      });
  if (!channel.ok()) return channel.status();
  service->reset(new PredictionServiceGrpc(*std::move(channel)));
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<PredictionServiceGrpc::Channel>>
PredictionServiceGrpc::OpenChannel(
    const std::string& target_address, const std::string& key,
    const PredictionServiceChannelOptions& options) {
  std::vector<grpc_arg> args;
  auto int_arg = [](const char* name, int value) {
    grpc_arg arg;
    arg.type = GRPC_ARG_INTEGER;
    arg.key = const_cast<char*>(name);
    arg.value.integer = value;
    return arg;
  };
  auto string_arg = [](const char* name, const std::string& value) {
    grpc_arg arg;
    arg.type = GRPC_ARG_STRING;
    arg.key = const_cast<char*>(name);
    arg.value.string = const_cast<char*>(value.c_str());
    return arg;
  };
  // Tensors have no natural size limit; gRPC's default 4 MiB receive limit
  // would fail large responses.
  args.push_back(int_arg(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, -1));
  args.push_back(int_arg(GRPC_ARG_MAX_SEND_MESSAGE_LENGTH, -1));
  // Reconnect soon after the target is back: bound gRPC's backoff, and let
  // the DNS resolver look the name up again as often.
  const int max_backoff = std::max(1, options.max_reconnect_backoff_millis);
  args.push_back(int_arg(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
                         std::min(kInitialReconnectBackoffMillis, max_backoff)));
  args.push_back(int_arg(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, max_backoff));
  args.push_back(
      int_arg(GRPC_ARG_DNS_MIN_TIME_BETWEEN_RESOLUTIONS_MS, max_backoff));
  const std::string service_config = ServiceConfig(
      absl::StrContains(target_address, ','), options.retry_unavailable);
  if (!service_config.empty()) {
    args.push_back(string_arg(GRPC_ARG_SERVICE_CONFIG, service_config));
  }
  if (!options.ssl_target_name_override.empty()) {
    args.push_back(string_arg(GRPC_SSL_TARGET_NAME_OVERRIDE_ARG,
                              options.ssl_target_name_override));
  }
  const grpc_channel_args channel_args = {args.size(), args.data()};

  GRPC_CORE(grpc_init)();
  grpc_channel_credentials* credentials;
  if (options.use_tls) {
    grpc_ssl_pem_key_cert_pair client_pair = {options.ssl_client_key.c_str(),
                                              options.ssl_client_cert.c_str()};
    credentials = GRPC_CORE(grpc_ssl_credentials_create_ex)(
        options.ssl_root_certs.empty() ? nullptr
                                       : options.ssl_root_certs.c_str(),
        options.ssl_client_cert.empty() ? nullptr : &client_pair,
        /*verify_options=*/nullptr, /*reserved=*/nullptr);
  } else {
    credentials = GRPC_CORE(grpc_insecure_credentials_create)();
  }
  grpc_channel* channel = GRPC_CORE(grpc_channel_create)(
      target_address.c_str(), credentials, &channel_args);
  GRPC_CORE(grpc_channel_credentials_release)(credentials);
  // A new channel stays IDLE until its first call, unless gRPC already knows
  // it cannot use the target: its resolver rejected the URI (TRANSIENT_FAILURE)
  // or it made a "lame" channel (SHUTDOWN). The checks above catch those cases
  // they know of with a better message; this catches the rest.
  const grpc_connectivity_state state =
      GRPC_CORE(grpc_channel_check_connectivity_state)(channel,
                                                       /*try_to_connect=*/0);
  if (state == GRPC_CHANNEL_TRANSIENT_FAILURE ||
      state == GRPC_CHANNEL_SHUTDOWN) {
    GRPC_CORE(grpc_channel_destroy)(channel);
    GRPC_CORE(grpc_shutdown)();
    return InvalidTarget(target_address, "gRPC cannot resolve it");
  }
  // The Channel owns the grpc_init reference from here on.
  return std::make_shared<Channel>(target_address, key, channel);
}

PredictionServiceGrpc::PredictionServiceGrpc(std::shared_ptr<Channel> channel)
    : channel_(std::move(channel)), in_flight_(std::make_shared<InFlight>()) {}

PredictionServiceGrpc::~PredictionServiceGrpc() {
  in_flight_->CancelAll();
  // A completion-queue thread cannot wait here: the completions it would wait
  // for may be queued behind the one it is running. The calls then finish on
  // their own; they hold what they need.
  if (!CompletionQueuePool::OnPoolThread()) in_flight_->AwaitAllFinished();
}

const std::string& PredictionServiceGrpc::target_address() const {
  return channel_->target();
}

int PredictionServiceGrpc::OpenChannelCount() {
  return ChannelCache::Get().OpenCount();
}

absl::StatusOr<PredictionServiceGrpc::Rpc*> PredictionServiceGrpc::CreateRpc(
    absl::Duration timeout) {
  return new Rpc(timeout);
}

void PredictionServiceGrpc::Predict(
    Rpc* rpc, PredictRequest* request, PredictResponse* response,
    std::function<void(absl::Status status)> callback) {
  // The bytes are all gRPC needs; a large request's tensors need not stay in
  // memory a second time while the call waits for its reply.
  absl::StatusOr<grpc_byte_buffer*> bytes = SerializeAndClearRequest(request);
  if (!bytes.ok()) {
    callback(bytes.status());
    return;
  }
  auto* call =
      new Call(channel_, in_flight_, rpc, response, std::move(callback));
  absl::Status started = call->Start(*bytes);
  if (!started.ok()) call->Abandon(std::move(started));
}

}  // namespace serving
}  // namespace tensorflow
