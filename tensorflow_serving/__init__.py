"""The workspace's `tensorflow_serving` package.

The installed tensorflow-serving-api wheel also provides `tensorflow_serving`
(the API and config protos). Extending `__path__` makes both trees one package,
so `tensorflow_serving.apis.predict_pb2` and this workspace's
`tensorflow_serving.experimental` import side by side.
"""

import pkgutil

__path__ = pkgutil.extend_path(__path__, __name__)
