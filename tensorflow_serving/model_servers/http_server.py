"""The HTTP front end: aiohttp serving the REST API and the Prometheus metrics page.

aiohttp's event loop runs on its own thread and never runs a model: each REST request
is handed to a thread pool (`--rest_api_num_threads`), so a slow model, or one whose
graph calls back into this server, cannot stall other HTTP traffic. GET requests
(status, metadata) have a small pool of their own, so a flood of large predict bodies
being parsed never delays them. Request bodies above `--rest_api_max_request_bytes` are
refused with 413 before they are read.

A connection is held only within its bounds: its request headers within the header
timeout (http_connection_bounds), its body within the body timeout (408, then the
connection is closed), and an idle kept-alive connection for the idle timeout.
Stopping closes the listening socket, lets running requests finish (bounded by the
grace period), then closes the remaining connections.
"""

import asyncio
import concurrent.futures
import threading
from typing import Optional

from absl import logging
from aiohttp import web

from tensorflow_serving.model_servers import http_connection_bounds
from tensorflow_serving.model_servers import http_rest_api
from tensorflow_serving.model_servers import json_tensor
from tensorflow_serving.model_servers import monitoring

_JSON = "application/json"
# Threads for GET requests (status and metadata), apart from the model runs.
_CONTROL_THREADS = 2
_CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, GET",
    "Access-Control-Allow-Headers": "Content-Type",
}


class HttpServer:
  """Serves `api` (and metrics, if `metrics_path`) on 0.0.0.0:`port`."""

  def __init__(self, api: http_rest_api.RestApi, port: int, *, num_threads: int,
               max_request_bytes: int, enable_cors: bool, metrics: monitoring.Metrics,
               metrics_path: Optional[str], shutdown_grace_seconds: float,
               header_timeout_seconds: float = 30.0, body_timeout_seconds: float = 60.0,
               idle_timeout_seconds: float = 75.0):
    self._api = api
    self._port = port
    self._max_request_bytes = max_request_bytes
    self._headers = dict(_CORS_HEADERS) if enable_cors else {}
    self._metrics = metrics
    self._metrics_path = metrics_path
    self._grace = shutdown_grace_seconds
    self._header_timeout = header_timeout_seconds
    self._body_timeout = body_timeout_seconds
    self._idle_timeout = idle_timeout_seconds
    self._pool = concurrent.futures.ThreadPoolExecutor(num_threads, thread_name_prefix="rest")
    self._control_pool = concurrent.futures.ThreadPoolExecutor(
        _CONTROL_THREADS, thread_name_prefix="rest_control")
    self._site: Optional[http_connection_bounds.BoundedTCPSite] = None
    self._loop = asyncio.new_event_loop()
    self._thread = threading.Thread(target=self._loop.run_forever, name="rest_event_loop",
                                    daemon=True)
    self._runner: Optional[web.AppRunner] = None

  def start(self) -> None:
    """Listens on the port; raises OSError if it cannot."""
    self._thread.start()
    try:
      asyncio.run_coroutine_threadsafe(self._start(), self._loop).result()
    except BaseException as e:
      self._shut_down()
      if isinstance(e, OSError):
        raise OSError(f"cannot listen for HTTP/REST on port {self._port} (--rest_api_port): "
                      f"{e.strerror or e}") from e
      raise
    logging.info("Exporting HTTP/REST API at 0.0.0.0:%d", self._port)

  async def _start(self) -> None:
    app = web.Application(client_max_size=self._max_request_bytes)
    app.router.add_route("*", "/{tail:.*}", self._dispatch)
    self._runner = web.AppRunner(app, access_log=None, handle_signals=False,
                                 shutdown_timeout=self._grace,
                                 keepalive_timeout=self._idle_timeout)
    await self._runner.setup()
    self._site = http_connection_bounds.BoundedTCPSite(self._runner, "0.0.0.0", self._port,
                                                       self._header_timeout)
    await self._site.start()

  def stop(self) -> None:
    """Stops accepting, waits for running requests (up to the grace period), stops.

    Model work still running on the worker threads is left to the caller to cancel;
    `join_workers()` then waits for those threads.
    """
    if self._thread.is_alive():
      self._shut_down()

  def join_workers(self) -> None:
    self._pool.shutdown(wait=True)
    self._control_pool.shutdown(wait=True)

  def _shut_down(self) -> None:
    if self._runner is not None:
      asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result()
      self._runner = None
    self._loop.call_soon_threadsafe(self._loop.stop)
    self._thread.join()
    self._pool.shutdown(wait=False, cancel_futures=True)
    self._control_pool.shutdown(wait=False, cancel_futures=True)

  def _close_with_408(self, request: web.Request) -> web.Response:
    """Answers 408 and closes at once: aiohttp would otherwise linger reading the body."""
    body = json_tensor.error_response(
        f"The request body did not arrive within {self._body_timeout:g} s "
        "(--rest_api_body_read_timeout_in_ms); is its Content-Length right?").encode("utf-8")
    head = "".join(f"{name}: {value}\r\n" for name, value in self._headers.items())
    transport = request.transport
    if transport is not None:
      transport.write(
          b"HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\n"
          + f"Content-Length: {len(body)}\r\n{head}Connection: close\r\n\r\n".encode("ascii")
          + body)
    request.protocol.force_close()  # Closes once the bytes above are flushed.
    return web.Response(status=408)

  def _response(self, status: int, text: str, content_type: str = _JSON) -> web.Response:
    return web.Response(status=status, text=text, content_type=content_type,
                        headers=self._headers)

  async def _dispatch(self, request: web.Request) -> web.Response:
    guard = self._site.guard(request.transport) if self._site is not None else None
    if guard is not None:
      guard.request_started()
    try:
      return await self._serve(request)
    finally:
      if guard is not None:
        guard.request_finished()

  async def _serve(self, request: web.Request) -> web.Response:
    path = request.rel_url.raw_path
    if self._headers and request.method == "OPTIONS":
      return web.Response(status=204, headers=self._headers)
    if self._metrics_path and path == self._metrics_path and request.method == "GET":
      return self._response(200, self._metrics.prometheus_text(),
                            content_type="text/plain")
    if not path.lower().startswith("/v1/"):
      return self._response(404, json_tensor.error_response(
          f"No such resource: {request.method} {path}; the REST API lives under /v1/models/"))
    try:
      body = await asyncio.wait_for(request.read(), self._body_timeout)
    except web.HTTPRequestEntityTooLarge:
      return self._response(413, json_tensor.error_response(
          f"Request body is larger than the {self._max_request_bytes} bytes this server accepts "
          "(--rest_api_max_request_bytes)"))
    except asyncio.TimeoutError:
      return self._close_with_408(request)
    pool = self._control_pool if request.method == "GET" else self._pool
    loop = asyncio.get_running_loop()
    status, text = await loop.run_in_executor(pool, self._api.handle, request.method,
                                              path, body)
    return self._response(status, text)
