"""The `Input` of Classify, Regress and MultiInference as serialized tf.Examples.

`example_list_with_context` shares a context Example among all examples: each example
is fed as the serialized context followed by the serialized example, which protobuf
parses as a merge, so an example's own feature wins over a context feature of the same
name.
"""

from typing import List

from tensorflow_serving.apis import input_pb2
from tensorflow_serving.model_servers import serving_errors


def serialized_examples(model_input: input_pb2.Input) -> List[bytes]:
  kind = model_input.WhichOneof("kind")
  if kind == "example_list":
    examples = model_input.example_list.examples
    prefix = b""
  elif kind == "example_list_with_context":
    examples = model_input.example_list_with_context.examples
    prefix = model_input.example_list_with_context.context.SerializeToString()
  else:
    raise serving_errors.invalid_argument(
        "Input is empty: set input.example_list or input.example_list_with_context")
  if not examples:
    raise serving_errors.invalid_argument(f"Input.{kind} has no examples")
  return [prefix + example.SerializeToString() for example in examples]
