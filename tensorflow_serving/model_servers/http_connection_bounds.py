"""Bounds on how long a REST client can hold a connection without finishing a request.

aiohttp closes a connection that stays idle for its keep-alive timeout, but a client
that has started a request may dribble its headers a byte at a time (slowloris) for
that whole time. `BoundedTCPSite` listens like aiohttp's TCPSite, with each
connection's protocol wrapped in a `_Guard`: the first bytes of a request start the
header timer, and the connection is closed unless the request's headers are complete
(the server's handler calls `request_started`) within --rest_api_header_read_timeout_in_ms.
The body and idle bounds are enforced by the HTTP server (body read under a timeout)
and by aiohttp's keep-alive timeout.
"""

import asyncio
from typing import Dict, Optional

from aiohttp import web


class _Guard(asyncio.Protocol):
  """Delegates to aiohttp's protocol; closes the connection if a request's headers stall."""

  def __init__(self, handler: asyncio.Protocol, site: "BoundedTCPSite"):
    self._handler = handler
    self._site = site
    self._transport: Optional[asyncio.BaseTransport] = None
    self._busy = False
    self._header_timer: Optional[asyncio.TimerHandle] = None

  def connection_made(self, transport: asyncio.BaseTransport) -> None:
    self._transport = transport
    self._site.guards[transport] = self
    self._handler.connection_made(transport)

  def data_received(self, data: bytes) -> None:
    if not self._busy and self._header_timer is None and data:
      self._header_timer = asyncio.get_running_loop().call_later(
          self._site.header_timeout_seconds, self._headers_too_slow)
    self._handler.data_received(data)

  def eof_received(self):
    return self._handler.eof_received()

  def connection_lost(self, exc: Optional[Exception]) -> None:
    self._cancel_timer()
    self._site.guards.pop(self._transport, None)
    self._handler.connection_lost(exc)

  def pause_writing(self) -> None:
    self._handler.pause_writing()

  def resume_writing(self) -> None:
    self._handler.resume_writing()

  def request_started(self) -> None:
    self._busy = True
    self._cancel_timer()

  def request_finished(self) -> None:
    self._busy = False

  def _cancel_timer(self) -> None:
    if self._header_timer is not None:
      self._header_timer.cancel()
      self._header_timer = None

  def _headers_too_slow(self) -> None:
    self._header_timer = None
    if not self._busy and self._transport is not None:
      self._transport.close()


class BoundedTCPSite(web.BaseSite):
  """aiohttp's TCPSite with a header-read timeout on every connection."""

  def __init__(self, runner: web.BaseRunner, host: str, port: int,
               header_timeout_seconds: float):
    super().__init__(runner)
    self._host = host
    self._port = port
    self.header_timeout_seconds = header_timeout_seconds
    self.guards: Dict[asyncio.BaseTransport, _Guard] = {}

  @property
  def name(self) -> str:
    return f"http://{self._host}:{self._port}"

  async def start(self) -> None:
    await super().start()
    factory = self._runner.server
    self._server = await asyncio.get_running_loop().create_server(
        lambda: _Guard(factory(), self), self._host, self._port, reuse_address=True)

  def guard(self, transport: Optional[asyncio.BaseTransport]) -> Optional[_Guard]:
    return self.guards.get(transport) if transport is not None else None
