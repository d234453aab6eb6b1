// What the benchmark's two C-core floor programs (c_core_predict_server and
// c_core_predict_client) share: --name=value flags, reading a file, and a gRPC
// byte buffer flattened into one slice. They link only Debian's gRPC C core:
// no TensorFlow and no protobuf runtime, so nothing but gRPC is measured.

#ifndef TENSORFLOW_SERVING_EXPERIMENTAL_BENCHMARKS_C_CORE_COMMON_H_
#define TENSORFLOW_SERVING_EXPERIMENTAL_BENCHMARKS_C_CORE_COMMON_H_

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/slice.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <utility>

namespace tensorflow {
namespace serving {
namespace benchmarks {

constexpr char kPredictMethod[] =
    "/tensorflow.serving.PredictionService/Predict";

// Prints `message` and the program's usage on stderr and exits with status 2.
[[noreturn]] inline void UsageError(const std::string& message,
                                    const char* usage) {
  std::fprintf(stderr, "error: %s\n\n%s", message.c_str(), usage);
  std::exit(2);
}

// --name=value flags. Every flag given must be one of `known` (name ->
// default); the defaults fill in the rest.
class Flags {
 public:
  Flags(int argc, char** argv, std::map<std::string, std::string> known,
        const char* usage)
      : values_(std::move(known)), usage_(usage) {
    for (int i = 1; i < argc; ++i) {
      const std::string arg = argv[i];
      const size_t equals = arg.find('=');
      if (arg.rfind("--", 0) != 0 || equals == std::string::npos) {
        UsageError("expected --name=value, got '" + arg + "'", usage_);
      }
      const std::string name = arg.substr(2, equals - 2);
      if (values_.count(name) == 0) {
        UsageError("unknown flag --" + name, usage_);
      }
      values_[name] = arg.substr(equals + 1);
    }
  }

  const std::string& String(const std::string& name) const {
    return values_.at(name);
  }

  // The flag as an integer of at least `minimum`, or a usage error.
  long long Int(const std::string& name, long long minimum) const {
    const std::string& text = values_.at(name);
    char* end = nullptr;
    const long long value = std::strtoll(text.c_str(), &end, 10);
    if (text.empty() || *end != '\0' || value < minimum) {
      UsageError("--" + name + "=" + text + " is not an integer >= " +
                     std::to_string(minimum),
                 usage_);
    }
    return value;
  }

  double Double(const std::string& name) const {
    const std::string& text = values_.at(name);
    char* end = nullptr;
    const double value = std::strtod(text.c_str(), &end);
    if (text.empty() || *end != '\0' || value <= 0) {
      UsageError("--" + name + "=" + text + " is not a positive number",
                 usage_);
    }
    return value;
  }

 private:
  std::map<std::string, std::string> values_;
  const char* usage_;
};

// The whole file, or exits with status 1 naming the flag and the file.
inline std::string ReadFileOrDie(const std::string& flag,
                                 const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "error: --%s: cannot read '%s'\n", flag.c_str(),
                 path.c_str());
    std::exit(1);
  }
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

// The message's bytes as one slice (the caller unrefs it); an empty slice if
// the buffer cannot be read.
inline grpc_slice FlattenByteBuffer(grpc_byte_buffer* buffer) {
  grpc_byte_buffer_reader reader;
  if (buffer == nullptr || !grpc_byte_buffer_reader_init(&reader, buffer)) {
    return grpc_empty_slice();
  }
  grpc_slice bytes = grpc_byte_buffer_reader_readall(&reader);
  grpc_byte_buffer_reader_destroy(&reader);
  return bytes;
}

}  // namespace benchmarks
}  // namespace serving
}  // namespace tensorflow

#endif  // TENSORFLOW_SERVING_EXPERIMENTAL_BENCHMARKS_C_CORE_COMMON_H_
