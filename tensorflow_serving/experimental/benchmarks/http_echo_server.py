"""The REST floor: a bare aiohttp server that answers every POST with the request's body.

aiohttp is the library the model server's REST front end is built on; this server does
nothing else (no JSON decoding, no TensorFlow), so it bounds what the model server's
REST API could reach on this machine.

  python -m tensorflow_serving.experimental.benchmarks.http_echo_server --port=0

prints `READY <port>` once it serves, and runs until SIGTERM.
"""

import asyncio
import signal

from absl import app
from absl import flags
from aiohttp import web

from tensorflow_serving.experimental.benchmarks import helper_process

# Large enough for any payload the benchmark sends.
_MAX_REQUEST_BYTES = 1 << 30


async def _echo(request: web.Request) -> web.Response:
  body = await request.read()
  return web.Response(body=body, content_type=request.content_type or "application/json")


async def _serve(port: int) -> None:
  app_ = web.Application(client_max_size=_MAX_REQUEST_BYTES)
  app_.router.add_route("POST", "/{tail:.*}", _echo)
  runner = web.AppRunner(app_, access_log=None, handle_signals=False)
  await runner.setup()
  site = web.TCPSite(runner, "127.0.0.1", port)
  await site.start()
  stopped = asyncio.Event()
  asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopped.set)
  bound = runner.addresses[0][1]
  helper_process.announce_ready(bound)
  await stopped.wait()
  await runner.cleanup()


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  asyncio.run(_serve(flags.FLAGS.port))


if __name__ == "__main__":
  # Defined here, not on import, like the other helper servers: importing must not add flags.
  flags.DEFINE_integer("port", 0, "Port on 127.0.0.1; 0 picks a free one.")
  app.run(main)
