"""SSLConfig, MonitoringConfig, BatchingParameters: TF Serving config messages the wheel lacks.

The tensorflow-serving-api wheel ships model_server_config_pb2 but not
ssl_config.proto, monitoring_config.proto or session_bundle_config.proto, which
`--ssl_config_file`, `--monitoring_config_file` and `--batching_parameters_file` are
written in. This module declares those messages
(same package, names, field names and numbers as TensorFlow Serving's) in a private
descriptor pool, so the same text files parse here and in tensorflow_model_server.
"""

from google.protobuf import descriptor_pb2
from google.protobuf import descriptor_pool
from google.protobuf import message_factory
from google.protobuf import wrappers_pb2

_PACKAGE = "tensorflow.serving"
_FIELD = descriptor_pb2.FieldDescriptorProto


def _file(name, messages, dependencies=(), package=_PACKAGE):
  """messages: [(message name, [(field, number, type, type_name or None[, label])])]."""
  proto = descriptor_pb2.FileDescriptorProto(name=name, package=package, syntax="proto3",
                                             dependency=list(dependencies))
  for message_name, fields in messages:
    message = proto.message_type.add(name=message_name)
    for field_name, number, field_type, type_name, *label in fields:
      field = message.field.add(name=field_name, number=number, type=field_type,
                                label=label[0] if label else _FIELD.LABEL_OPTIONAL)
      if type_name:
        field.type_name = type_name
  return proto


_POOL = descriptor_pool.DescriptorPool()
_POOL.Add(_file("tensorflow_serving/config/ssl_config.proto", [
    ("SSLConfig", [
        ("server_key", 1, _FIELD.TYPE_STRING, None),
        ("server_cert", 2, _FIELD.TYPE_STRING, None),
        ("custom_ca", 3, _FIELD.TYPE_STRING, None),
        ("client_verify", 4, _FIELD.TYPE_BOOL, None),
    ]),
]))
_POOL.Add(_file("tensorflow_serving/config/monitoring_config.proto", [
    ("PrometheusConfig", [
        ("enable", 1, _FIELD.TYPE_BOOL, None),
        ("path", 2, _FIELD.TYPE_STRING, None),
    ]),
    ("MonitoringConfig", [
        ("prometheus_config", 1, _FIELD.TYPE_MESSAGE, f".{_PACKAGE}.PrometheusConfig"),
    ]),
]))

_WRAPPERS = wrappers_pb2.DESCRIPTOR.name
_POOL.Add(descriptor_pb2.FileDescriptorProto.FromString(wrappers_pb2.DESCRIPTOR.serialized_pb))
_POOL.Add(_file("tensorflow_serving/servables/tensorflow/session_bundle_config.proto", [
    ("BatchingParameters", [
        ("max_batch_size", 1, _FIELD.TYPE_MESSAGE, ".google.protobuf.Int64Value"),
        ("batch_timeout_micros", 2, _FIELD.TYPE_MESSAGE, ".google.protobuf.Int64Value"),
        ("max_enqueued_batches", 3, _FIELD.TYPE_MESSAGE, ".google.protobuf.Int64Value"),
        ("num_batch_threads", 4, _FIELD.TYPE_MESSAGE, ".google.protobuf.Int64Value"),
        ("thread_pool_name", 5, _FIELD.TYPE_MESSAGE, ".google.protobuf.StringValue"),
        ("allowed_batch_sizes", 6, _FIELD.TYPE_INT64, None, _FIELD.LABEL_REPEATED),
        ("pad_variable_length_inputs", 7, _FIELD.TYPE_BOOL, None),
        ("enable_large_batch_splitting", 8, _FIELD.TYPE_MESSAGE, ".google.protobuf.BoolValue"),
        ("max_execution_batch_size", 9, _FIELD.TYPE_MESSAGE, ".google.protobuf.Int64Value"),
    ]),
], dependencies=[_WRAPPERS]))

# tensorflow.ProfilerService's messages (tsl/profiler/protobuf), which the pip TensorFlow
# ships only as C++: just the fields the embedded profiler service reads or writes; the
# parser skips the others. ProfileResponse.xspace carries a serialized XSpace as bytes
# (the same wire format as the message).
_POOL.Add(_file("tsl/profiler/protobuf/profiler_service.proto", [
    ("ProfileOptions", [
        ("host_tracer_level", 2, _FIELD.TYPE_UINT32, None),
        ("device_tracer_level", 3, _FIELD.TYPE_UINT32, None),
        ("python_tracer_level", 4, _FIELD.TYPE_UINT32, None),
    ]),
    ("ProfileRequest", [
        ("duration_ms", 1, _FIELD.TYPE_UINT64, None),
        ("opts", 4, _FIELD.TYPE_MESSAGE, ".tensorflow.ProfileOptions"),
        ("repository_root", 5, _FIELD.TYPE_STRING, None),
        ("session_id", 6, _FIELD.TYPE_STRING, None),
        ("host_name", 7, _FIELD.TYPE_STRING, None),
        ("emit_xspace", 9, _FIELD.TYPE_BOOL, None),
    ]),
    ("ProfileResponse", [
        ("empty_trace", 7, _FIELD.TYPE_BOOL, None),
        ("xspace", 8, _FIELD.TYPE_BYTES, None),
    ]),
], package="tensorflow"))

SSLConfig = message_factory.GetMessageClass(_POOL.FindMessageTypeByName(f"{_PACKAGE}.SSLConfig"))
PrometheusConfig = message_factory.GetMessageClass(
    _POOL.FindMessageTypeByName(f"{_PACKAGE}.PrometheusConfig"))
MonitoringConfig = message_factory.GetMessageClass(
    _POOL.FindMessageTypeByName(f"{_PACKAGE}.MonitoringConfig"))
BatchingParameters = message_factory.GetMessageClass(
    _POOL.FindMessageTypeByName(f"{_PACKAGE}.BatchingParameters"))
ProfileRequest = message_factory.GetMessageClass(
    _POOL.FindMessageTypeByName("tensorflow.ProfileRequest"))
ProfileResponse = message_factory.GetMessageClass(
    _POOL.FindMessageTypeByName("tensorflow.ProfileResponse"))
