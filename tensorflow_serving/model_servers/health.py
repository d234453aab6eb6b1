"""--enable_grpc_healthcheck_service: the standard grpc.health.v1.Health service.

TensorFlow Serving turns on gRPC's default health service and marks its two services
SERVING once they are up, under the short names "ModelService" and
"PredictionService". Health clients also ask by full service name and for the server
as a whole (""), so those are answered too. On shutdown every status turns
NOT_SERVING before the port closes, so load balancers stop sending requests.
"""

from grpc_health.v1 import health
from grpc_health.v1 import health_pb2
from grpc_health.v1 import health_pb2_grpc

SERVICE_NAMES = (
    "",
    "ModelService",
    "PredictionService",
    "tensorflow.serving.ModelService",
    "tensorflow.serving.PredictionService",
)


class HealthService:
  """The Health servicer of one gRPC server."""

  def __init__(self):
    self._servicer = health.HealthServicer()

  def add_to_server(self, server) -> None:
    health_pb2_grpc.add_HealthServicer_to_server(self._servicer, server)

  def set_serving(self) -> None:
    for name in SERVICE_NAMES:
      self._servicer.set(name, health_pb2.HealthCheckResponse.SERVING)

  def shut_down(self) -> None:
    """All statuses NOT_SERVING; later checks and watches see NOT_SERVING."""
    self._servicer.enter_graceful_shutdown()
