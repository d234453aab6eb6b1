"""SSLConfig and MonitoringConfig: TensorFlow Serving config messages the wheel lacks.

The tensorflow-serving-api wheel ships model_server_config_pb2 but not
ssl_config.proto or monitoring_config.proto, which `--ssl_config_file` and
`--monitoring_config_file` are written in. This module declares those two messages
(same package, names, field names and numbers as TensorFlow Serving's) in a private
descriptor pool, so the same text files parse here and in tensorflow_model_server.
"""

from google.protobuf import descriptor_pb2
from google.protobuf import descriptor_pool
from google.protobuf import message_factory

_PACKAGE = "tensorflow.serving"
_FIELD = descriptor_pb2.FieldDescriptorProto


def _file(name, messages):
  """messages: [(message name, [(field, number, type, type_name or None)])]."""
  proto = descriptor_pb2.FileDescriptorProto(name=name, package=_PACKAGE, syntax="proto3")
  for message_name, fields in messages:
    message = proto.message_type.add(name=message_name)
    for field_name, number, field_type, type_name in fields:
      field = message.field.add(name=field_name, number=number, type=field_type,
                                label=_FIELD.LABEL_OPTIONAL)
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

SSLConfig = message_factory.GetMessageClass(_POOL.FindMessageTypeByName(f"{_PACKAGE}.SSLConfig"))
PrometheusConfig = message_factory.GetMessageClass(
    _POOL.FindMessageTypeByName(f"{_PACKAGE}.PrometheusConfig"))
MonitoringConfig = message_factory.GetMessageClass(
    _POOL.FindMessageTypeByName(f"{_PACKAGE}.MonitoringConfig"))
