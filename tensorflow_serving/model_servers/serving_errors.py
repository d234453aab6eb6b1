"""Errors of the model server, carrying TensorFlow Serving's canonical status codes.

Every failure a client can see is a `ServingError` with a `grpc.StatusCode`. The gRPC
front end aborts the call with that code; the REST front end maps it to TensorFlow
Serving's HTTP status (`http_status()`), e.g. NOT_FOUND -> 404, DEADLINE_EXCEEDED -> 504.
"""

import grpc

from tensorflow_serving.apis import status_pb2

_CODE_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}

# TensorFlow Serving's mapping from canonical codes to HTTP statuses.
_HTTP_STATUS = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
    grpc.StatusCode.UNAUTHENTICATED: 401,
}


class ServingError(Exception):
  """A request or load failure with a canonical status code."""

  def __init__(self, code: grpc.StatusCode, message: str):
    super().__init__(message)
    self.code = code
    self.message = message

  def __str__(self) -> str:
    return f"{self.code.name}: {self.message}"

  def http_status(self) -> int:
    return _HTTP_STATUS.get(self.code, 500)

  def to_status_proto(self) -> status_pb2.StatusProto:
    return status_pb2.StatusProto(error_code=self.code.value[0], error_message=self.message)


def code_from_number(number: int) -> grpc.StatusCode:
  return _CODE_BY_NUMBER.get(number, grpc.StatusCode.UNKNOWN)


def invalid_argument(message: str) -> ServingError:
  return ServingError(grpc.StatusCode.INVALID_ARGUMENT, message)


def not_found(message: str) -> ServingError:
  return ServingError(grpc.StatusCode.NOT_FOUND, message)


def failed_precondition(message: str) -> ServingError:
  return ServingError(grpc.StatusCode.FAILED_PRECONDITION, message)


def unavailable(message: str) -> ServingError:
  return ServingError(grpc.StatusCode.UNAVAILABLE, message)


def deadline_exceeded(message: str) -> ServingError:
  return ServingError(grpc.StatusCode.DEADLINE_EXCEEDED, message)


def unimplemented(message: str) -> ServingError:
  return ServingError(grpc.StatusCode.UNIMPLEMENTED, message)


def internal(message: str) -> ServingError:
  return ServingError(grpc.StatusCode.INTERNAL, message)


def ok_status_proto() -> status_pb2.StatusProto:
  return status_pb2.StatusProto(error_code=0, error_message="")
