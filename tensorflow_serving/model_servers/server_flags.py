"""Command-line flags of the model server: tensorflow_model_server's names and defaults.

`ServerOptions` is the one table of flags. Each field is one flag: its type, its
default (TensorFlow Serving's), its help text and how this server treats it:
  supported    the flag does what it does in TensorFlow Serving;
  no effect    accepted with any value; it changes nothing a client can observe here
               (the reason is in `FlagSpec.note`);
  default only accepted at its default value; any other value is rejected by name,
               because a deployment that relies on it must learn that this server
               does not do it rather than run silently without it.
`define_flags()` registers the absl flags from the table, `options_from_flags()` fills
a ServerOptions from them and `validate_options()` checks the values. Every problem
raises ConfigError, the one error type of the server's configuration (flags and files).

Flags beyond TensorFlow Serving's (supported):
  --custom_op_library_paths     comma-separated op libraries (.so) to load before models.
  --rest_api_max_request_bytes  largest REST request body accepted (413 beyond it).
  --max_request_tensor_bytes    limit on a request's decoded input tensors.
  --rest_api_header_read_timeout_in_ms, --rest_api_body_read_timeout_in_ms,
  --rest_api_idle_timeout_in_ms bounds on how long a REST connection may be held.
  --shutdown_grace_period_in_ms how long SIGTERM lets running requests finish.
"""

import dataclasses
import os
from typing import Any, Dict, List, Optional

from absl import flags

DEFAULT_PROMETHEUS_PATH = "/monitoring/prometheus/metrics"

SUPPORTED = "supported"
NO_EFFECT = "no effect"
DEFAULT_ONLY = "default only"


class ConfigError(ValueError):
  """A flag value or configuration file the server cannot use; names the culprit."""


@dataclasses.dataclass(frozen=True)
class FlagSpec:
  name: str        # the command-line name
  field: str       # the ServerOptions attribute
  kind: type       # bool, int, float, str or list (comma-separated strings)
  default: Any
  help: str
  support: str
  note: str = ""


def _flag(default, help_text: str, *, name: str = "", support: str = SUPPORTED,
          note: str = ""):
  metadata = {"flag": name, "help": help_text, "support": support, "note": note}
  if isinstance(default, list):
    return dataclasses.field(default_factory=lambda: list(default), metadata=metadata)
  return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass
class ServerOptions:
  """Everything the server needs from its command line: one field per flag."""
  # gRPC
  grpc_port: int = _flag(8500, "TCP port for the gRPC API (0 disables it).", name="port")
  grpc_socket_path: str = _flag("", "If non-empty, also serve the gRPC API on this UNIX "
                                "socket path.")
  grpc_channel_arguments: str = _flag(
      "", "Comma-separated gRPC server arguments, e.g. grpc.max_connection_age_ms=2000.")
  grpc_max_threads: int = _flag(0, "Threads handling gRPC calls (0: chosen from the CPU "
                                "count, at least 32).")
  enable_grpc_healthcheck_service: bool = _flag(
      False, "Serve grpc.health.v1.Health with statuses for tensorflow.serving.ModelService "
      "and tensorflow.serving.PredictionService.")
  use_alts_credentials: bool = _flag(False, "Use Google ALTS credentials.",
                                     support=DEFAULT_ONLY, note="ALTS needs Google Cloud")
  ssl_config_file: str = _flag("", "ASCII SSLConfig file; if set, the gRPC API is served "
                               "over TLS.")
  # REST
  rest_api_port: int = _flag(0, "TCP port for the HTTP/REST API; 0 disables it. Must "
                             "differ from --port.")
  rest_api_num_threads: int = _flag(0, "Threads running REST requests' models (0: chosen "
                                    "from the CPU count).")
  rest_api_timeout_in_ms: int = _flag(30000, "Timeout of a REST request's model run, in "
                                      "milliseconds (<= 0: none).")
  rest_api_enable_cors_support: bool = _flag(False, "Add CORS headers to REST responses.")
  rest_api_max_request_bytes: int = _flag(64 << 20, "Largest REST request body accepted; "
                                          "bigger requests get HTTP 413.")
  rest_api_header_read_timeout_in_ms: int = _flag(
      30000, "A REST connection that has started a request must send all its headers "
      "within this time, or it is closed.")
  rest_api_body_read_timeout_in_ms: int = _flag(
      60000, "A REST request's body must arrive within this time after its headers, or "
      "the connection is closed.")
  rest_api_idle_timeout_in_ms: int = _flag(
      75000, "An idle REST connection (kept alive, no request started) is closed after "
      "this time.")
  monitoring_config_file: str = _flag("", "ASCII MonitoringConfig file; enables Prometheus "
                                      "metrics on the REST port.")
  # Models
  model_name: str = _flag("default", "Name of the model (ignored with --model_config_file).")
  model_base_path: str = _flag(
      "", "Directory holding the model's numbered version directories (ignored with "
      "--model_config_file, otherwise required).")
  model_config_file: str = _flag(
      "", "ASCII ModelServerConfig file with the models to serve (overrides --model_name "
      "and --model_base_path).")
  model_config_file_poll_wait_seconds: int = _flag(
      0, "Seconds between re-reads of --model_config_file; 0 reads it once.")
  file_system_poll_wait_seconds: int = _flag(
      1, "Seconds between scans of model base paths for new or removed versions; 0 scans "
      "once at start-up and on each config change.")
  num_load_threads: int = _flag(0, "Threads loading model versions (0 means 1).")
  num_unload_threads: int = _flag(0, "Threads unloading model versions (0 means 1).")
  max_num_load_retries: int = _flag(5, "Retries of a failed version load before it is "
                                    "reported as failed.")
  load_retry_interval_micros: int = _flag(60 * 1000 * 1000,
                                          "Microseconds between load retries.")
  allow_version_labels_for_unavailable_models: bool = _flag(
      False, "Allow a new version label to name a version that is not available yet.")
  saved_model_tags: str = _flag("serve", "Comma-separated tags of the MetaGraphDef to load "
                                "from each SavedModel.")
  enable_model_warmup: bool = _flag(
      True, "Replay assets.extra/tf_serving_warmup_requests of each version before it "
      "becomes AVAILABLE.")
  num_request_iterations_for_warmup: int = _flag(
      0, "Times each warm-up request is replayed (used only if > 0; otherwise once).")
  custom_op_library_paths: list = _flag(
      [], "Comma-separated TensorFlow op libraries (.so) loaded before any model, for "
      "models using custom ops.")
  platform_config_file: str = _flag("", "ASCII PlatformConfigMap file.", support=DEFAULT_ONLY,
                                    note="this server serves TensorFlow SavedModels only")
  # Requests
  enable_serialization_as_tensor_content: bool = _flag(
      False, "Write Predict response tensors packed in tensor_content instead of the typed "
      "repeated fields (float_val, ...).")
  enable_signature_method_name_check: bool = _flag(
      False, "Require Classify/Regress/MultiInference signatures to declare the classify/"
      "regress method name (TF2 exports declare predict).")
  enable_batching: bool = _flag(
      False, "Merge concurrent runs of the same model version and signature into one "
      "session run.")
  batching_parameters_file: str = _flag(
      "", "ASCII BatchingParameters file for --enable_batching (TF Serving's defaults "
      "otherwise).")
  enable_per_model_batching_parameters: bool = _flag(
      False, "With --enable_batching, read each version's batching_params.pbtxt instead of "
      "--batching_parameters_file (only its num_batch_threads is shared); a version "
      "without one is not batched.")
  max_request_tensor_bytes: int = _flag(
      2 << 30, "Largest total size, in bytes, of a request's input tensors once decoded "
      "(as their shapes declare); bigger requests get RESOURCE_EXHAUSTED.")
  shutdown_grace_period_in_ms: int = _flag(
      30000, "On SIGTERM, running requests get this long to finish; then their model "
      "work is cancelled and the server exits.")
  # TensorFlow sessions
  tensorflow_session_parallelism: int = _flag(
      0, "Threads of each model's TensorFlow session (0: TensorFlow decides).")
  tensorflow_intra_op_parallelism: int = _flag(
      0, "Intra-op threads of each session (0: TensorFlow decides).")
  tensorflow_inter_op_parallelism: int = _flag(
      0, "Inter-op threads of each session (0: TensorFlow decides).")
  tensorflow_session_config_file: str = _flag(
      "", "ASCII tensorflow.ConfigProto for every model's session; the parallelism flags "
      "override its thread settings.")
  per_process_gpu_memory_fraction: float = _flag(
      0.0, "Fraction of each GPU's memory a session may take (0: TensorFlow decides).")
  mixed_precision: str = _flag("", "Mixed precision mode ('bfloat16').", support=DEFAULT_ONLY,
                               note="mixed precision rewriting is not implemented")
  thread_pool_factory_config_file: str = _flag(
      "", "ASCII ThreadPoolFactoryConfig file.", support=DEFAULT_ONLY,
      note="custom thread pool factories are C++ plug-ins")
  # TensorFlow Lite
  prefer_tflite_model: bool = _flag(
      False, "Serve a version's model.tflite with the TF Lite interpreter instead of its "
      "saved_model.pb (versions without one fall back to the SavedModel).")
  num_tflite_pools: int = _flag(0, "TF Lite interpreter pools per model (0: the CPU count).")
  num_tflite_interpreters_per_pool: int = _flag(1, "TF Lite interpreters per pool.")
  # Accepted for compatibility; nothing a client observes depends on them here.
  enable_profiler: bool = _flag(
      True, "Serve tensorflow.ProfilerService on the gRPC port, for "
      "profiler_client.trace('grpc://host:port', ...) and TensorBoard's profile capture.")
  flush_filesystem_caches: bool = _flag(
      True, "Flush filesystem caches after the initial load.", support=NO_EFFECT,
      note="the loader keeps no filesystem caches")
  remove_unused_fields_from_bundle_metagraph: bool = _flag(
      True, "Drop unused MetaGraphDef fields after loading.", support=NO_EFFECT,
      note="a memory saving only")
  skip_initialize_tpu: bool = _flag(False, "Skip TPU initialisation.", support=NO_EFFECT,
                                    note="no TPU support")
  xla_cpu_compilation_enabled: bool = _flag(False, "Enable the XLA:CPU JIT.",
                                            support=NO_EFFECT,
                                            note="the pip TensorFlow's JIT is always enabled")
  xla_gpu_compilation_enabled: bool = _flag(False, "Enable the XLA:CPU and XLA:GPU JIT.",
                                            support=NO_EFFECT,
                                            note="the pip TensorFlow's JIT is always enabled")
  version: bool = _flag(False, "Print the server and TensorFlow versions and exit.")

  def effective_grpc_max_threads(self) -> int:
    # Generous by default: a model that calls back into this server through
    # TfServingRemotePredict holds one worker per level of nesting.
    return self.grpc_max_threads if self.grpc_max_threads > 0 else max(32, 4 * _cpu_count())

  def effective_rest_api_num_threads(self) -> int:
    return self.rest_api_num_threads if self.rest_api_num_threads > 0 else max(16, 4 * _cpu_count())

  def tflite_interpreter_count(self) -> int:
    pools = self.num_tflite_pools if self.num_tflite_pools > 0 else _cpu_count()
    return pools * max(1, self.num_tflite_interpreters_per_pool)

  def saved_model_tag_list(self) -> List[str]:
    return [tag.strip() for tag in self.saved_model_tags.split(",") if tag.strip()]


def _cpu_count() -> int:
  return os.cpu_count() or 1


def _kind(field: dataclasses.Field) -> type:
  return {"bool": bool, "int": int, "float": float, "str": str, "list": list}[
      field.type if isinstance(field.type, str) else field.type.__name__]


def flag_specs() -> List[FlagSpec]:
  """The table: every tensorflow_model_server flag and this server's extras."""
  specs = []
  for field in dataclasses.fields(ServerOptions):
    default = (field.default_factory() if field.default is dataclasses.MISSING
               else field.default)
    specs.append(FlagSpec(name=field.metadata["flag"] or field.name, field=field.name,
                          kind=_kind(field), default=default, help=field.metadata["help"],
                          support=field.metadata["support"], note=field.metadata["note"]))
  return specs


_DEFINE = {bool: flags.DEFINE_bool, int: flags.DEFINE_integer, float: flags.DEFINE_float,
           str: flags.DEFINE_string, list: flags.DEFINE_list}


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
  """Registers every flag of the table on `flag_values`."""
  for spec in flag_specs():
    help_text = spec.help if spec.support == SUPPORTED else (
        f"{spec.help} [{spec.support} here: {spec.note}]")
    _DEFINE[spec.kind](spec.name, spec.default, help_text, flag_values=flag_values)


def parse_argv(argv, flag_values: flags.FlagValues = flags.FLAGS) -> List[str]:
  """absl flags parser for app.run."""
  return flag_values(list(argv))


def options_from_flags(flag_values: flags.FlagValues = flags.FLAGS) -> ServerOptions:
  """Builds ServerOptions from parsed flags; raises ConfigError for unusable values."""
  values: Dict[str, Any] = {spec.field: flag_values[spec.name].value for spec in flag_specs()}
  options = ServerOptions(**values)
  validate_options(options)
  return options


def unsupported_setting(options: ServerOptions) -> Optional[str]:
  """The first flag set to a value this server cannot honour, as an error message."""
  for spec in flag_specs():
    value = getattr(options, spec.field)
    if spec.support == DEFAULT_ONLY and value != spec.default:
      return (f"--{spec.name}={value}: this TensorFlow Serving flag is accepted only at its "
              f"default ({spec.default!r}) here because {spec.note}; remove it from the "
              "command line")
  return None


def validate_options(options: ServerOptions) -> None:
  """Raises ConfigError for flag values that cannot work, alone or together."""
  problem = unsupported_setting(options)
  if problem:
    raise ConfigError(problem)
  for flag, port in (("--port", options.grpc_port), ("--rest_api_port", options.rest_api_port)):
    if not 0 <= port <= 65535:
      raise ConfigError(f"{flag}={port} is not a TCP port (0-65535)")
  if options.grpc_port == 0 and not options.grpc_socket_path:
    raise ConfigError("--port=0 disables gRPC; set --port or --grpc_socket_path")
  if options.rest_api_port and options.rest_api_port == options.grpc_port:
    raise ConfigError(f"--rest_api_port={options.rest_api_port} equals --port; "
                      "give the REST API its own port")
  if not options.model_config_file and not options.model_base_path:
    raise ConfigError("no model to serve: set --model_base_path (with --model_name) "
                      "or --model_config_file")
  if options.rest_api_max_request_bytes <= 0:
    raise ConfigError("--rest_api_max_request_bytes must be positive")
  for name in ("max_request_tensor_bytes", "rest_api_header_read_timeout_in_ms",
               "rest_api_body_read_timeout_in_ms", "rest_api_idle_timeout_in_ms"):
    if getattr(options, name) <= 0:
      raise ConfigError(f"--{name} must be positive")
  if options.shutdown_grace_period_in_ms < 0:
    raise ConfigError("--shutdown_grace_period_in_ms must not be negative")
  if not options.saved_model_tag_list():
    raise ConfigError("--saved_model_tags is empty; the usual tag is 'serve'")
  if not 0.0 <= options.per_process_gpu_memory_fraction <= 1.0:
    raise ConfigError(f"--per_process_gpu_memory_fraction="
                      f"{options.per_process_gpu_memory_fraction} is not between 0 and 1")
  if options.num_request_iterations_for_warmup < 0:
    raise ConfigError("--num_request_iterations_for_warmup must not be negative")
