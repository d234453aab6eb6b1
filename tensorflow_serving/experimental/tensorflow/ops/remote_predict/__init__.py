"""The Remote Predict Op: call a TensorFlow Serving model from inside a graph.

`run` returns the remote model's outputs and raises on an RPC error;
`run_returning_status` returns the RPC's status alongside the outputs.
"""

from tensorflow_serving.experimental.tensorflow.ops.remote_predict.python.ops.remote_predict_ops import run
from tensorflow_serving.experimental.tensorflow.ops.remote_predict.python.ops.remote_predict_ops import run_returning_status
