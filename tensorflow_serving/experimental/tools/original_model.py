"""The SavedModel being split, loaded in a TF1 session: its variable values and outputs.

Both TF1 and TF2 SavedModels load this way. The tool reads tables shard by shard
(a strided or contiguous slice runs in the session, so only that shard's rows are
copied out) and runs the original signatures to check the split deployment.
"""

from typing import Dict, Mapping, Sequence

import numpy as np
import tensorflow as tf

from tensorflow_serving.experimental.tools import serving_graph


class OriginalModel:
  """A loaded SavedModel; call close() (or use `with`) to free its session."""

  def __init__(self, saved_model_dir: str, tags: Sequence[str]):
    self._graph = tf.Graph()
    self._session = tf.compat.v1.Session(graph=self._graph)
    with self._graph.as_default():
      self._meta_graph = tf.compat.v1.saved_model.loader.load(
          self._session, list(tags), saved_model_dir)

  def _value_tensor(self, variable: serving_graph.Variable) -> tf.Tensor:
    handle = self._graph.get_tensor_by_name(f"{variable.node}:0")
    if variable.resource:
      return tf.raw_ops.ReadVariableOp(resource=handle, dtype=variable.dtype)
    return handle

  def value(self, variable: serving_graph.Variable, rows: slice = slice(None)) -> np.ndarray:
    """The variable's value, or only `rows` of it (a slice along axis 0)."""
    with self._graph.as_default():
      value = self._value_tensor(variable)
      if rows != slice(None):
        rank = len(variable.shape)
        value = tf.strided_slice(value, [rows.start] + [0] * (rank - 1),
                                 [rows.stop] + list(variable.shape[1:]),
                                 [rows.step or 1] + [1] * (rank - 1))
    try:
      return self._session.run(value)
    except tf.errors.FailedPreconditionError as e:
      raise serving_graph.ShardingError(
          f"variable '{variable.node}' of the SavedModel is not restored by its saver, so the "
          "model cannot be served by TF Serving as it is. Keras 3 models must be exported with "
          "model.export(), not tf.saved_model.save().") from e

  def run(self, signature_name: str, inputs: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """Runs a signature of the original model, like Predict without output_filter."""
    signature = self._meta_graph.signature_def[signature_name]
    feeds = {signature.inputs[k].name: v for k, v in inputs.items()}
    fetches = {k: t.name for k, t in signature.outputs.items()}
    return self._session.run(fetches, feeds)

  def close(self) -> None:
    self._session.close()

  def __enter__(self) -> "OriginalModel":
    return self

  def __exit__(self, *exc_info) -> None:
    self.close()
