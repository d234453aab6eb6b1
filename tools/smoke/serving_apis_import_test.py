"""Proves py_test runs the virtualenv's TensorFlow and reaches the serving APIs.

The workspace has its own `tensorflow_serving/` package; the wheel's API modules
must still import through it.
"""

import numpy as np
import tensorflow as tf

from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc


class ServingApisImportTest(tf.test.TestCase):

  def test_predict_request_round_trip(self):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "half_plus_two"
    request.model_spec.signature_name = "serving_default"
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array([1.0, 2.0, 5.0], np.float32)))

    parsed = predict_pb2.PredictRequest.FromString(request.SerializeToString())

    self.assertEqual(parsed.model_spec.name, "half_plus_two")
    self.assertAllEqual(tf.make_ndarray(parsed.inputs["x"]), [1.0, 2.0, 5.0])

  def test_prediction_service_stub_is_the_wheels(self):
    self.assertTrue(hasattr(prediction_service_pb2_grpc, "PredictionServiceStub"))
    self.assertIn("site-packages", prediction_service_pb2_grpc.__file__)


if __name__ == "__main__":
  tf.test.main()
