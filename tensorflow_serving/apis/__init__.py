"""Bridges `tensorflow_serving.apis` to the installed tensorflow-serving-api.

The `*_pb2` modules come from the wheel; see `tensorflow_serving/__init__.py`.
"""

import pkgutil

__path__ = pkgutil.extend_path(__path__, __name__)
