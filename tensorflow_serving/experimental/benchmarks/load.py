"""Closed-loop load: C concurrent callers, each sending its next request when the last returns.

One asyncio loop drives all callers (grpc.aio for gRPC, aiohttp's client for REST), and
the requests are prepared bytes whose answers are read but not decoded, so the client
costs the same whichever server answers: the model server or a bare echo floor. Each
run stops after a number of requests or a time, whichever comes first, and begins with
an untimed warm-up on the same connections.
"""

import asyncio
import time
from typing import Awaitable, Callable

import aiohttp
import grpc

_UNLIMITED = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]


async def _closed_loop(call: Callable[[], Awaitable[None]], concurrency: int,
                       max_requests: int, max_seconds: float) -> float:
  """Runs up to `max_requests` calls on `concurrency` callers; returns requests/second."""
  loop = asyncio.get_running_loop()
  started = 0
  completed = 0
  stop_at = loop.time() + max_seconds

  async def caller():
    nonlocal started, completed
    while started < max_requests and loop.time() < stop_at:
      started += 1
      await call()
      completed += 1

  begin = time.perf_counter()
  await asyncio.gather(*(caller() for _ in range(concurrency)))
  return completed / (time.perf_counter() - begin)


async def _grpc_qps(address: str, method_path: str, payload: bytes, concurrency: int,
                    max_requests: int, max_seconds: float, warmup_seconds: float) -> float:
  async with grpc.aio.insecure_channel(address, options=_UNLIMITED) as channel:
    method = channel.unary_unary(method_path)

    async def call():
      await method(payload, timeout=60.0)

    await _closed_loop(call, concurrency, max_requests, warmup_seconds)
    return await _closed_loop(call, concurrency, max_requests, max_seconds)


async def _http_qps(url: str, body: bytes, concurrency: int, max_requests: int,
                    max_seconds: float, warmup_seconds: float) -> float:
  connector = aiohttp.TCPConnector(limit=concurrency)
  headers = {"Content-Type": "application/json"}
  async with aiohttp.ClientSession(connector=connector) as session:

    async def call():
      async with session.post(url, data=body, headers=headers) as response:
        await response.read()
        if response.status != 200:
          raise RuntimeError(f"POST {url} returned HTTP {response.status}: "
                             f"{(await response.text())[:200]}")

    await _closed_loop(call, concurrency, max_requests, warmup_seconds)
    return await _closed_loop(call, concurrency, max_requests, max_seconds)


def grpc_qps(address: str, method_path: str, payload: bytes, *, concurrency: int,
             max_requests: int, max_seconds: float, warmup_seconds: float) -> float:
  """Requests per second of unary `method_path` on `address`, sending `payload`."""
  return asyncio.run(_grpc_qps(address, method_path, payload, concurrency, max_requests,
                               max_seconds, warmup_seconds))


def http_qps(url: str, body: bytes, *, concurrency: int, max_requests: int,
             max_seconds: float, warmup_seconds: float) -> float:
  """Requests per second of POST `url` with JSON `body`."""
  return asyncio.run(_http_qps(url, body, concurrency, max_requests, max_seconds,
                               warmup_seconds))
