"""GetModelMetadata: a model version's signatures as a packed SignatureDefMap.

Like TensorFlow Serving, the only metadata field is "signature_def".
"""

from typing import Sequence

from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.model_servers import servable as servable_lib
from tensorflow_serving.model_servers import serving_errors

SIGNATURE_DEF = "signature_def"


def signature_def_map(servable: servable_lib.Servable) -> get_model_metadata_pb2.SignatureDefMap:
  signature_map = get_model_metadata_pb2.SignatureDefMap()
  for key, signature in servable.signatures.items():
    signature_map.signature_def[key].CopyFrom(signature)
  return signature_map


def fill_metadata(servable: servable_lib.Servable, metadata_fields: Sequence[str],
                  response: get_model_metadata_pb2.GetModelMetadataResponse) -> None:
  if not metadata_fields:
    raise serving_errors.invalid_argument(
        f"GetModelMetadataRequest must ask for at least one metadata_field ('{SIGNATURE_DEF}')")
  for field in metadata_fields:
    if field != SIGNATURE_DEF:
      raise serving_errors.invalid_argument(
          f"Metadata field {field} is not supported; the only field is '{SIGNATURE_DEF}'")
  response.model_spec.name = servable.name
  response.model_spec.version.value = servable.version
  response.metadata[SIGNATURE_DEF].Pack(signature_def_map(servable))
