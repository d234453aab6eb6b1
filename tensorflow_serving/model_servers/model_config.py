"""Reading and checking the server's configuration files.

- ModelServerConfig: from --model_name/--model_base_path or an ASCII
  --model_config_file (only `model_config_list`; each model needs a unique name and a
  base path, platform "tensorflow").
- SSLConfig, MonitoringConfig and the TensorFlow session ConfigProto: ASCII files.
- --grpc_channel_arguments: "key=value,key=value" into gRPC server options.

Every problem raises ConfigError naming the file, model or argument at fault.
"""

from typing import List, Tuple, Union

from google.protobuf import text_format

from tensorflow.core.protobuf import config_pb2
from tensorflow_serving.config import model_server_config_pb2
from tensorflow_serving.model_servers import config_protos
from tensorflow_serving.model_servers import server_flags

TENSORFLOW_PLATFORM = "tensorflow"


ConfigError = server_flags.ConfigError


def read_text_proto(path: str, message, what: str):
  """Parses an ASCII protobuf file into `message`; raises ConfigError naming it."""
  try:
    with open(path, "r", encoding="utf-8") as f:
      text = f.read()
  except OSError as e:
    raise ConfigError(f"cannot read {what} file '{path}': {e.strerror}") from e
  try:
    text_format.Parse(text, message)
  except text_format.ParseError as e:
    raise ConfigError(f"{what} file '{path}' is not a valid ASCII {message.DESCRIPTOR.name}: "
                      f"{text_format_error(message, e)}") from e
  return message


def text_format_error(message, error: text_format.ParseError) -> str:
  """protobuf's own wording of a text-format error, which scripts search logs for."""
  detail = str(error)
  line, column = error.GetLine(), error.GetColumn()
  if line is not None:
    # ParseError's str() is "LINE:COLUMN : detail"; protobuf's C++ writes "LINE:COLUMN: ".
    prefix = f"{line}:{column} : " if column is not None else f"{line} : "
    if detail.startswith(prefix):
      detail = detail[len(prefix):]
    detail = f"{line}:{column or 0}: {detail}"
  return f"Error parsing text-format {message.DESCRIPTOR.full_name}: {detail}"


def single_model_config(model_name: str, base_path: str) -> model_server_config_pb2.ModelServerConfig:
  config = model_server_config_pb2.ModelServerConfig()
  model = config.model_config_list.config.add()
  model.name = model_name
  model.base_path = base_path
  model.model_platform = TENSORFLOW_PLATFORM
  return config


def read_model_server_config(path: str) -> model_server_config_pb2.ModelServerConfig:
  config = read_text_proto(path, model_server_config_pb2.ModelServerConfig(),
                            "--model_config_file")
  try:
    validate_model_server_config(config)
  except ConfigError as e:
    raise ConfigError(f"--model_config_file '{path}': {e}") from e
  return config


def initial_model_server_config(
    options: server_flags.ServerOptions) -> model_server_config_pb2.ModelServerConfig:
  if options.model_config_file:
    return read_model_server_config(options.model_config_file)
  if not options.model_name:
    raise ConfigError("--model_name is empty; name the model served from --model_base_path")
  config = single_model_config(options.model_name, options.model_base_path)
  validate_model_server_config(config)
  return config


def validate_model_server_config(config: model_server_config_pb2.ModelServerConfig) -> None:
  """Raises ConfigError unless this server can serve `config` as written."""
  if config.HasField("custom_model_config"):
    raise ConfigError("custom_model_config is not supported; list the models in "
                      "model_config_list")
  names = set()
  for model in config.model_config_list.config:
    if not model.name:
      raise ConfigError("a model in model_config_list has no name")
    if model.name in names:
      raise ConfigError(f"model name '{model.name}' appears more than once in model_config_list")
    names.add(model.name)
    if not model.base_path:
      raise ConfigError(f"model '{model.name}' has no base_path")
    if model.model_platform not in ("", TENSORFLOW_PLATFORM):
      raise ConfigError(f"model '{model.name}' has model_platform '{model.model_platform}'; "
                        f"this server serves only '{TENSORFLOW_PLATFORM}' SavedModels")
    if model.HasField("logging_config"):
      raise ConfigError(f"model '{model.name}' sets logging_config; request logging is not "
                        "supported by this server")
    policy = model.model_version_policy
    if policy.WhichOneof("policy_choice") == "specific" and not policy.specific.versions:
      raise ConfigError(f"model '{model.name}' has a 'specific' version policy with no versions")
    if policy.WhichOneof("policy_choice") == "latest" and policy.latest.num_versions < 0:
      raise ConfigError(f"model '{model.name}': latest.num_versions must not be negative")
    for label, version in model.version_labels.items():
      if not label:
        raise ConfigError(f"model '{model.name}' has an empty version label")
      if version < 0:
        raise ConfigError(f"model '{model.name}': label '{label}' names negative version {version}")


def read_ssl_config(path: str):
  config = read_text_proto(path, config_protos.SSLConfig(), "--ssl_config_file")
  if not config.server_key or not config.server_cert:
    raise ConfigError(f"--ssl_config_file '{path}' must set both server_key and server_cert "
                      "(PEM contents, not file names)")
  if config.client_verify and not config.custom_ca:
    raise ConfigError(f"--ssl_config_file '{path}' sets client_verify but no custom_ca to "
                      "verify client certificates against")
  return config


def read_monitoring_config(path: str):
  config = read_text_proto(path, config_protos.MonitoringConfig(), "--monitoring_config_file")
  prometheus = config.prometheus_config
  if prometheus.enable:
    if not prometheus.path:
      prometheus.path = server_flags.DEFAULT_PROMETHEUS_PATH
    if not prometheus.path.startswith("/"):
      raise ConfigError(f"--monitoring_config_file '{path}': prometheus_config.path "
                        f"'{prometheus.path}' must start with '/'")
  return config


def session_config(options: server_flags.ServerOptions) -> config_pb2.ConfigProto:
  """The ConfigProto every model's session is created with."""
  config = config_pb2.ConfigProto()
  if options.tensorflow_session_config_file:
    read_text_proto(options.tensorflow_session_config_file, config,
                     "--tensorflow_session_config_file")
  if options.tensorflow_session_parallelism > 0:
    config.intra_op_parallelism_threads = options.tensorflow_session_parallelism
    config.inter_op_parallelism_threads = options.tensorflow_session_parallelism
  if options.tensorflow_intra_op_parallelism > 0:
    config.intra_op_parallelism_threads = options.tensorflow_intra_op_parallelism
  if options.tensorflow_inter_op_parallelism > 0:
    config.inter_op_parallelism_threads = options.tensorflow_inter_op_parallelism
  if options.per_process_gpu_memory_fraction > 0:
    config.gpu_options.per_process_gpu_memory_fraction = options.per_process_gpu_memory_fraction
  return config


def grpc_channel_arguments(spec: str) -> List[Tuple[str, Union[int, str]]]:
  """Parses --grpc_channel_arguments; integer-looking values are passed as ints."""
  arguments = []
  for item in spec.split(","):
    item = item.strip()
    if not item:
      continue
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
      raise ConfigError(f"--grpc_channel_arguments entry '{item}' is not key=value")
    value = value.strip()
    try:
      arguments.append((key.strip(), int(value)))
    except ValueError:
      arguments.append((key.strip(), value))
  return arguments

