"""REST connections are held only within their timeouts; SIGTERM exits within its grace.

Raw sockets on loopback play the hostile clients: a slowloris sending its headers a
byte at a time, a request whose Content-Length promises more body than it sends,
and connections that never send anything. Each must be closed within its configured
timeout (plus a margin for a loaded machine), and while many are held a good request
is still answered. The shutdown case runs model work far longer than the grace
period, checks that status and metadata are answered while every REST worker is busy,
and asserts the server exits 0 within grace + 5 s.
"""

import os
import select
import signal
import socket
import subprocess
import threading
import time

import grpc
import numpy as np
import tensorflow as tf

from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc
from tensorflow_serving.model_servers import model_server_test_util as util

HEADER_TIMEOUT_S = 1.0
BODY_TIMEOUT_S = 1.0
IDLE_TIMEOUT_S = 2.0
# Scheduling slack on a shared 2-core machine; the bound under test is the timeout.
MARGIN_S = 3.0
GRACE_S = 2.0
PREDICT = "/v1/models/half_plus_two:predict"


def _connect(port):
  return socket.create_connection(("127.0.0.1", port), timeout=30)


def _closed_by_server(sock, timeout):
  """Reads until the server closes; returns what it sent, or None if still open."""
  received = b""
  deadline = time.monotonic() + timeout
  while time.monotonic() < deadline:
    readable, _, _ = select.select([sock], [], [], deadline - time.monotonic())
    if not readable:
      break
    try:
      chunk = sock.recv(65536)
    except ConnectionResetError:
      return received
    if not chunk:
      return received
    received += chunk
  return None


def _cpu_seconds(pid):
  with open(f"/proc/{pid}/stat") as f:
    fields = f.read().rsplit(")", 1)[1].split()
  return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class ConnectionBoundsTest(util.ServerTestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    root = tf.compat.v1.test.get_temp_dir()
    cls.model_dir = os.path.join(root, "half_plus_two")
    util.export_half_plus_two(cls.model_dir, 123)
    cls.counter_dir = os.path.join(root, "counter")
    util.export_counting_model(cls.counter_dir, 1)
    cls.start_server(root, [
        "--model_name=half_plus_two", f"--model_base_path={cls.model_dir}",
        f"--rest_api_header_read_timeout_in_ms={int(HEADER_TIMEOUT_S * 1000)}",
        f"--rest_api_body_read_timeout_in_ms={int(BODY_TIMEOUT_S * 1000)}",
        f"--rest_api_idle_timeout_in_ms={int(IDLE_TIMEOUT_S * 1000)}",
    ], ["half_plus_two"])

  def _assert_good_request_answered(self):
    status, body = util.curl("POST", self.server.rest_url + PREDICT, '{"instances": [1.0]}')
    self.assertEqual((status, body), (200, '{"predictions": [2.5]}'))

  def test_slowloris_is_closed_within_the_header_timeout(self):
    with _connect(self.server.rest_port) as sock:
      started = time.monotonic()
      sock.sendall(b"POST " + PREDICT.encode() + b" HTTP/1.1\r\nHost: localhost\r\n")
      closed = None
      for byte in b"X-Slow: " + b"a" * 200:
        try:
          sock.sendall(bytes([byte]))
        except (BrokenPipeError, ConnectionResetError):
          closed = b""
          break
        closed = _closed_by_server(sock, 0.1)  # The client's own pace: a byte per 0.1 s.
        if closed is not None:
          break
      elapsed = time.monotonic() - started
    self.assertIsNotNone(closed, "the slowloris connection was never closed")
    self.assertLess(elapsed, HEADER_TIMEOUT_S + MARGIN_S)
    self._assert_good_request_answered()

  def test_lying_content_length_is_closed_within_the_body_timeout(self):
    with _connect(self.server.rest_port) as sock:
      started = time.monotonic()
      sock.sendall(b"POST " + PREDICT.encode() + b" HTTP/1.1\r\nHost: localhost\r\n"
                   b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
                   b'{"instances"')
      received = _closed_by_server(sock, BODY_TIMEOUT_S + MARGIN_S)
      elapsed = time.monotonic() - started
    self.assertIsNotNone(received, "the connection was held past the body timeout")
    self.assertLess(elapsed, BODY_TIMEOUT_S + MARGIN_S)
    self.assertTrue(received.startswith(b"HTTP/1.1 408"), received[:200])
    self.assertIn(b"--rest_api_body_read_timeout_in_ms", received)
    self._assert_good_request_answered()

  def test_silent_connection_is_closed_within_the_idle_timeout(self):
    with _connect(self.server.rest_port) as sock:
      started = time.monotonic()
      received = _closed_by_server(sock, IDLE_TIMEOUT_S + MARGIN_S)
      elapsed = time.monotonic() - started
    self.assertEqual(received, b"")
    self.assertLess(elapsed, IDLE_TIMEOUT_S + MARGIN_S)

  def test_kept_alive_connection_serves_then_idles_out(self):
    request = (b"POST " + PREDICT.encode() + b" HTTP/1.1\r\nHost: localhost\r\n"
               b"Content-Length: 20\r\n\r\n" + b'{"instances": [1.0]}')
    with _connect(self.server.rest_port) as sock:
      for _ in range(2):
        sock.sendall(request)
        response = b""
        while not response.endswith(b'{"predictions": [2.5]}'):
          chunk = sock.recv(65536)
          self.assertTrue(chunk, f"closed early after {response!r}")
          response += chunk
        self.assertTrue(response.startswith(b"HTTP/1.1 200"), response)
      started = time.monotonic()
      self.assertEqual(_closed_by_server(sock, IDLE_TIMEOUT_S + MARGIN_S), b"")
      self.assertLess(time.monotonic() - started, IDLE_TIMEOUT_S + MARGIN_S)

  def test_held_connections_do_not_stop_good_requests(self):
    held = []
    try:
      for index in range(200):
        sock = _connect(self.server.rest_port)
        held.append(sock)
        if index % 2:
          sock.sendall(b"POST " + PREDICT.encode() + b" HTTP/1.1\r\nHost: x\r\n")
      for _ in range(3):
        self._assert_good_request_answered()
    finally:
      for sock in held:
        sock.close()


class BoundedShutdownTest(tf.test.TestCase):

  def test_sigterm_with_model_work_longer_than_the_grace(self):
    root = self.create_tempdir().full_path
    counter = os.path.join(root, "counter")
    util.export_counting_model(counter, 1)
    server = util.ServerProcess.start(root, [
        "--model_name=counter", f"--model_base_path={counter}",
        f"--shutdown_grace_period_in_ms={int(GRACE_S * 1000)}",
        "--rest_api_timeout_in_ms=600000", "--rest_api_num_threads=1",
    ])
    outcomes = []
    try:
      server.wait_until_available("counter")
      stub = prediction_service_pb2_grpc.PredictionServiceStub(server.channel())
      request = predict_pb2.PredictRequest()
      request.model_spec.name = "counter"
      request.inputs["n"].CopyFrom(tf.make_tensor_proto(np.int64(10**13)))

      def grpc_call():
        try:
          stub.Predict(request, timeout=600)
          outcomes.append("finished")
        except grpc.RpcError as e:
          outcomes.append(e.code())

      def rest_call():
        try:
          outcomes.append(util.curl("POST", server.rest_url + "/v1/models/counter:predict",
                                    '{"inputs": {"n": 10000000000000}}')[0])
        except AssertionError as e:  # curl saw the connection end.
          outcomes.append(str(e)[:40])

      # Two REST calls: one runs, one waits for the single REST worker.
      calls = [threading.Thread(target=grpc_call), threading.Thread(target=rest_call),
               threading.Thread(target=rest_call)]
      idle_cpu = _cpu_seconds(server.process.pid)
      for call in calls:
        call.start()
      # The model work is running once the server burns CPU for it.
      deadline = time.monotonic() + 60
      while _cpu_seconds(server.process.pid) < idle_cpu + 1.0:
        self.assertLess(time.monotonic(), deadline, "the model work never started")
        try:
          server.process.wait(0.1)
        except subprocess.TimeoutExpired:
          pass
      # With every REST worker busy, status and metadata are still answered.
      for path in ("/v1/models/counter", "/v1/models/counter/metadata"):
        status, _ = util.curl("GET", server.rest_url + path)
        self.assertEqual(status, 200, path)
      self.assertTrue(all(call.is_alive() for call in calls))
      self.assertIsNone(server.process.poll())
      started, sent_at = time.monotonic(), time.strftime("%H:%M:%S")
      server.process.send_signal(signal.SIGTERM)
      code = server.wait_exit(GRACE_S + 30)
      elapsed = time.monotonic() - started
      for call in calls:
        call.join(60)
    finally:
      server.stop()
    self.assertEqual(code, 0, server.log())
    self.assertLess(elapsed, GRACE_S + 5, f"SIGTERM sent at {sent_at}\n{server.log()}")
    # Cancelling the model work ended it, not main's last-resort exit.
    self.assertIn("cancelled the model work", server.log())
    self.assertNotIn("overran its grace period", server.log())
    self.assertNotIn("finished", outcomes)
    self.assertLen(outcomes, 3)


if __name__ == "__main__":
  tf.test.main()
