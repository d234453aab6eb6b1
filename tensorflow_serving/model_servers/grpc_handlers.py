"""Registers gRPC servicers so that no client bytes end in INTERNAL.

The generated `add_*Servicer_to_server` functions parse requests inside grpcio, which
answers INTERNAL ("Exception deserializing request!") when the bytes are not the
request message, and INTERNAL ("Failed to serialize response!") when a reply passes
protobuf's 2 GiB limit. Here the parser hands the servicer a marker instead of
raising, so the call ends INVALID_ARGUMENT naming the message type, and a reply too
large to serialise ends RESOURCE_EXHAUSTED before grpcio tries.
"""

from typing import Any, Callable

import grpc
from google.protobuf import descriptor as descriptor_lib
from google.protobuf import message
from google.protobuf import message_factory

# protobuf refuses to serialise a message of 2 GiB or more.
MAX_REPLY_BYTES = (1 << 31) - 1


class _Unparseable:
  """Stands in for a request whose bytes are not the expected message."""

  def __init__(self, type_name: str, error: Exception):
    self.type_name = type_name
    self.error = error


def _parser(message_class) -> Callable[[bytes], Any]:
  type_name = message_class.DESCRIPTOR.full_name

  def parse(data: bytes):
    try:
      return message_class.FromString(data)
    except (message.DecodeError, ValueError, RuntimeError) as e:
      return _Unparseable(type_name, e)

  return parse


def _guarded(method_name: str, behaviour: Callable[[Any, grpc.ServicerContext], Any]):

  def handle(request, context: grpc.ServicerContext):
    if isinstance(request, _Unparseable):
      context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                    f"{method_name}: the request is not a valid {request.type_name} "
                    f"protocol buffer: {request.error}")
    reply = behaviour(request, context)
    size = len(reply) if isinstance(reply, bytes) else reply.ByteSize()
    if size > MAX_REPLY_BYTES:
      context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"{method_name}: the reply would be {size} bytes, over the "
                    f"{MAX_REPLY_BYTES}-byte limit of a protocol buffer; ask for fewer or "
                    "smaller outputs (output_filter) or send smaller batches")
    return reply

  return handle


def _serialized(reply) -> bytes:
  # A servicer may answer with the reply's wire bytes, built without a message.
  return reply if isinstance(reply, bytes) else reply.SerializeToString()


def add_servicer(server: grpc.Server, servicer: Any,
                 service: descriptor_lib.ServiceDescriptor) -> None:
  """Registers every unary method of `service` on `server`, served by `servicer`."""
  handlers = {}
  for method in service.methods:
    request_class = message_factory.GetMessageClass(method.input_type)
    handlers[method.name] = grpc.unary_unary_rpc_method_handler(
        _guarded(f"{service.full_name}/{method.name}", getattr(servicer, method.name)),
        request_deserializer=_parser(request_class),
        response_serializer=_serialized)
  server.add_generic_rpc_handlers(
      (grpc.method_handlers_generic_handler(service.full_name, handlers),))
