"""Command-line flags of the model server, with TensorFlow Serving's names and defaults.

`define_flags()` registers the flags this server honours; `parse_argv()` parses them
after rejecting, by name, every other `tensorflow_model_server` flag, because a
deployment script that relies on batching or warm-up must learn that this server does
not do them rather than run silently without them. `options_from_flags()` turns the
parsed values into a `ServerOptions`.

Flags beyond TensorFlow Serving's:
  --custom_op_library_paths  comma-separated op libraries (.so) to load before models.
  --rest_api_max_request_bytes  largest REST request body accepted (413 beyond it).
  --max_request_tensor_bytes  limit on a request's decoded input tensors.
  --rest_api_header_read_timeout_in_ms, --rest_api_body_read_timeout_in_ms,
  --rest_api_idle_timeout_in_ms  bounds on how long a REST connection may be held.
  --shutdown_grace_period_in_ms  how long SIGTERM lets running requests finish.
"""

import dataclasses
import os
from typing import List, Sequence

from absl import flags

# tensorflow_model_server flags this server does not implement.
UNSUPPORTED_TF_SERVING_FLAGS = frozenset([
    "batching_parameters_file",
    "enable_batching",
    "enable_grpc_healthcheck_service",
    "enable_model_warmup",
    "enable_per_model_batching_parameters",
    "enable_profiler",
    "enable_serialization_as_tensor_content",
    "enable_signature_method_name_check",
    "flush_filesystem_caches",
    "mixed_precision",
    "num_request_iterations_for_warmup",
    "num_tflite_interpreters_per_pool",
    "num_tflite_pools",
    "per_process_gpu_memory_fraction",
    "platform_config_file",
    "prefer_tflite_model",
    "remove_unused_fields_from_bundle_metagraph",
    "skip_initialize_tpu",
    "thread_pool_factory_config_file",
    "use_alts_credentials",
    "xla_cpu_compilation_enabled",
    "xla_gpu_compilation_enabled",
])

DEFAULT_PROMETHEUS_PATH = "/monitoring/prometheus/metrics"


class UnsupportedFlagError(flags.Error):
  """A TensorFlow Serving flag that this server does not implement."""


@dataclasses.dataclass
class ServerOptions:
  """Everything the server needs from its command line."""
  grpc_port: int = 8500
  grpc_socket_path: str = ""
  rest_api_port: int = 0
  rest_api_num_threads: int = 0
  rest_api_timeout_in_ms: int = 30000
  rest_api_enable_cors_support: bool = False
  rest_api_max_request_bytes: int = 64 << 20
  model_name: str = "default"
  model_base_path: str = ""
  model_config_file: str = ""
  model_config_file_poll_wait_seconds: int = 0
  file_system_poll_wait_seconds: int = 1
  num_load_threads: int = 0
  num_unload_threads: int = 0
  max_num_load_retries: int = 5
  load_retry_interval_micros: int = 60 * 1000 * 1000
  allow_version_labels_for_unavailable_models: bool = False
  saved_model_tags: str = "serve"
  tensorflow_session_parallelism: int = 0
  tensorflow_intra_op_parallelism: int = 0
  tensorflow_inter_op_parallelism: int = 0
  tensorflow_session_config_file: str = ""
  ssl_config_file: str = ""
  monitoring_config_file: str = ""
  grpc_channel_arguments: str = ""
  grpc_max_threads: int = 0
  custom_op_library_paths: List[str] = dataclasses.field(default_factory=list)
  # Limits on what a client can make the server hold (beyond TensorFlow Serving).
  max_request_tensor_bytes: int = 2 << 30
  rest_api_header_read_timeout_in_ms: int = 30000
  rest_api_body_read_timeout_in_ms: int = 60000
  rest_api_idle_timeout_in_ms: int = 75000
  shutdown_grace_period_in_ms: int = 30000

  def effective_grpc_max_threads(self) -> int:
    # Generous by default: a model that calls back into this server through
    # TfServingRemotePredict holds one worker per level of nesting.
    return self.grpc_max_threads if self.grpc_max_threads > 0 else max(32, 4 * _cpu_count())

  def effective_rest_api_num_threads(self) -> int:
    return self.rest_api_num_threads if self.rest_api_num_threads > 0 else max(16, 4 * _cpu_count())


def _cpu_count() -> int:
  return os.cpu_count() or 1


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
  """Registers the server's flags on `flag_values`."""
  d = ServerOptions()

  def string(name, default, help_text):
    flags.DEFINE_string(name, default, help_text, flag_values=flag_values)

  def integer(name, default, help_text):
    flags.DEFINE_integer(name, default, help_text, flag_values=flag_values)

  def boolean(name, default, help_text):
    flags.DEFINE_bool(name, default, help_text, flag_values=flag_values)

  integer("port", d.grpc_port, "TCP port for the gRPC API (0 disables it).")
  string("grpc_socket_path", d.grpc_socket_path,
         "If non-empty, also serve the gRPC API on this UNIX socket path.")
  integer("rest_api_port", d.rest_api_port,
          "TCP port for the HTTP/REST API; 0 disables it. Must differ from --port.")
  integer("rest_api_num_threads", d.rest_api_num_threads,
          "Threads running REST requests' models (0: chosen from the CPU count).")
  integer("rest_api_timeout_in_ms", d.rest_api_timeout_in_ms,
          "Timeout of a REST request's model run, in milliseconds (<= 0: none).")
  boolean("rest_api_enable_cors_support", d.rest_api_enable_cors_support,
          "Add CORS headers to REST responses.")
  integer("rest_api_max_request_bytes", d.rest_api_max_request_bytes,
          "Largest REST request body accepted; bigger requests get HTTP 413.")
  string("model_name", d.model_name, "Name of the model (ignored with --model_config_file).")
  string("model_base_path", d.model_base_path,
         "Directory holding the model's numbered version directories "
         "(ignored with --model_config_file, otherwise required).")
  string("model_config_file", d.model_config_file,
         "ASCII ModelServerConfig file with the models to serve (overrides --model_name "
         "and --model_base_path).")
  integer("model_config_file_poll_wait_seconds", d.model_config_file_poll_wait_seconds,
          "Seconds between re-reads of --model_config_file; 0 reads it once.")
  integer("file_system_poll_wait_seconds", d.file_system_poll_wait_seconds,
          "Seconds between scans of model base paths for new or removed versions; "
          "0 scans once at start-up and on each config change.")
  integer("num_load_threads", d.num_load_threads, "Threads loading model versions (0 means 1).")
  integer("num_unload_threads", d.num_unload_threads,
          "Threads unloading model versions (0 means 1).")
  integer("max_num_load_retries", d.max_num_load_retries,
          "Retries of a failed version load before it is reported as failed.")
  integer("load_retry_interval_micros", d.load_retry_interval_micros,
          "Microseconds between load retries.")
  boolean("allow_version_labels_for_unavailable_models",
          d.allow_version_labels_for_unavailable_models,
          "Allow a new version label to name a version that is not available yet.")
  string("saved_model_tags", d.saved_model_tags,
         "Comma-separated tags of the MetaGraphDef to load from each SavedModel.")
  integer("tensorflow_session_parallelism", d.tensorflow_session_parallelism,
          "Threads of each model's TensorFlow session (0: TensorFlow decides).")
  integer("tensorflow_intra_op_parallelism", d.tensorflow_intra_op_parallelism,
          "Intra-op threads of each session (0: TensorFlow decides).")
  integer("tensorflow_inter_op_parallelism", d.tensorflow_inter_op_parallelism,
          "Inter-op threads of each session (0: TensorFlow decides).")
  string("tensorflow_session_config_file", d.tensorflow_session_config_file,
         "ASCII tensorflow.ConfigProto for every model's session; the parallelism "
         "flags override its thread settings.")
  string("ssl_config_file", d.ssl_config_file,
         "ASCII SSLConfig file; if set, the gRPC API is served over TLS.")
  string("monitoring_config_file", d.monitoring_config_file,
         "ASCII MonitoringConfig file; enables Prometheus metrics on the REST port.")
  string("grpc_channel_arguments", d.grpc_channel_arguments,
         "Comma-separated gRPC server arguments, e.g. grpc.max_connection_age_ms=2000.")
  integer("grpc_max_threads", d.grpc_max_threads,
          "Threads handling gRPC calls (0: chosen from the CPU count, at least 32).")
  string("custom_op_library_paths", "",
         "Comma-separated TensorFlow op libraries (.so) loaded before any model, for "
         "models using custom ops.")
  boolean("version", False, "Print the server and TensorFlow versions and exit.")
  integer("max_request_tensor_bytes", d.max_request_tensor_bytes,
          "Largest total size, in bytes, of a request's input tensors once decoded "
          "(as their shapes declare); bigger requests get RESOURCE_EXHAUSTED.")
  integer("rest_api_header_read_timeout_in_ms", d.rest_api_header_read_timeout_in_ms,
          "A REST connection that has started a request must send all its headers "
          "within this time, or it is closed.")
  integer("rest_api_body_read_timeout_in_ms", d.rest_api_body_read_timeout_in_ms,
          "A REST request's body must arrive within this time after its headers, or the "
          "connection is closed.")
  integer("rest_api_idle_timeout_in_ms", d.rest_api_idle_timeout_in_ms,
          "An idle REST connection (kept alive, no request started) is closed after this time.")
  integer("shutdown_grace_period_in_ms", d.shutdown_grace_period_in_ms,
          "On SIGTERM, running requests get this long to finish; then their model work is "
          "cancelled and the server exits.")


def _flag_names(argv: Sequence[str]):
  for arg in argv:
    if arg == "--":
      return
    if arg.startswith("-") and len(arg) > 1:
      yield arg.lstrip("-").split("=", 1)[0]


def reject_unsupported_flags(argv: Sequence[str]) -> None:
  """Raises UnsupportedFlagError naming the first unsupported TF Serving flag."""
  for name in _flag_names(argv):
    base = name[2:] if name.startswith("no") and name[2:] in UNSUPPORTED_TF_SERVING_FLAGS else name
    if base in UNSUPPORTED_TF_SERVING_FLAGS:
      raise UnsupportedFlagError(
          f"flag --{base} is a TensorFlow Serving flag this server does not support; "
          "remove it from the command line")


def parse_argv(argv: Sequence[str], flag_values: flags.FlagValues = flags.FLAGS) -> List[str]:
  """absl flags parser for app.run: rejects unsupported flags, then parses."""
  reject_unsupported_flags(argv[1:])
  return flag_values(list(argv))


def _split_list(value: str) -> List[str]:
  return [item.strip() for item in value.split(",") if item.strip()]


def options_from_flags(flag_values: flags.FlagValues = flags.FLAGS) -> ServerOptions:
  """Builds ServerOptions from parsed flags; raises flags.Error on bad combinations."""
  f = flag_values
  options = ServerOptions(
      grpc_port=f.port,
      grpc_socket_path=f.grpc_socket_path,
      rest_api_port=f.rest_api_port,
      rest_api_num_threads=f.rest_api_num_threads,
      rest_api_timeout_in_ms=f.rest_api_timeout_in_ms,
      rest_api_enable_cors_support=f.rest_api_enable_cors_support,
      rest_api_max_request_bytes=f.rest_api_max_request_bytes,
      model_name=f.model_name,
      model_base_path=f.model_base_path,
      model_config_file=f.model_config_file,
      model_config_file_poll_wait_seconds=f.model_config_file_poll_wait_seconds,
      file_system_poll_wait_seconds=f.file_system_poll_wait_seconds,
      num_load_threads=f.num_load_threads,
      num_unload_threads=f.num_unload_threads,
      max_num_load_retries=f.max_num_load_retries,
      load_retry_interval_micros=f.load_retry_interval_micros,
      allow_version_labels_for_unavailable_models=f.allow_version_labels_for_unavailable_models,
      saved_model_tags=f.saved_model_tags,
      tensorflow_session_parallelism=f.tensorflow_session_parallelism,
      tensorflow_intra_op_parallelism=f.tensorflow_intra_op_parallelism,
      tensorflow_inter_op_parallelism=f.tensorflow_inter_op_parallelism,
      tensorflow_session_config_file=f.tensorflow_session_config_file,
      ssl_config_file=f.ssl_config_file,
      monitoring_config_file=f.monitoring_config_file,
      grpc_channel_arguments=f.grpc_channel_arguments,
      grpc_max_threads=f.grpc_max_threads,
      custom_op_library_paths=_split_list(f.custom_op_library_paths),
      max_request_tensor_bytes=f.max_request_tensor_bytes,
      rest_api_header_read_timeout_in_ms=f.rest_api_header_read_timeout_in_ms,
      rest_api_body_read_timeout_in_ms=f.rest_api_body_read_timeout_in_ms,
      rest_api_idle_timeout_in_ms=f.rest_api_idle_timeout_in_ms,
      shutdown_grace_period_in_ms=f.shutdown_grace_period_in_ms,
  )
  validate_options(options)
  return options


def validate_options(options: ServerOptions) -> None:
  """Raises flags.Error for flag values that cannot work together."""
  for name in ("grpc_port", "rest_api_port"):
    port = getattr(options, name)
    if not 0 <= port <= 65535:
      flag = "--port" if name == "grpc_port" else "--rest_api_port"
      raise flags.Error(f"{flag}={port} is not a TCP port (0-65535)")
  if options.grpc_port == 0 and not options.grpc_socket_path:
    raise flags.Error("--port=0 disables gRPC; set --port or --grpc_socket_path")
  if options.rest_api_port and options.rest_api_port == options.grpc_port:
    raise flags.Error(f"--rest_api_port={options.rest_api_port} equals --port; "
                      "give the REST API its own port")
  if not options.model_config_file and not options.model_base_path:
    raise flags.Error("no model to serve: set --model_base_path (with --model_name) "
                      "or --model_config_file")
  if options.rest_api_max_request_bytes <= 0:
    raise flags.Error("--rest_api_max_request_bytes must be positive")
  if not _split_list(options.saved_model_tags):
    raise flags.Error("--saved_model_tags is empty; the usual tag is 'serve'")
  for name in ("max_request_tensor_bytes", "rest_api_header_read_timeout_in_ms",
               "rest_api_body_read_timeout_in_ms", "rest_api_idle_timeout_in_ms"):
    if getattr(options, name) <= 0:
      raise flags.Error(f"--{name} must be positive")
  if options.shutdown_grace_period_in_ms < 0:
    raise flags.Error("--shutdown_grace_period_in_ms must be >= 0")

