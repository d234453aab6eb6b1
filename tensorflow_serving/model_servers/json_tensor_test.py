"""Tests the REST JSON <-> tensor and tf.Example conversions."""

import json

from absl.testing import absltest
from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import classification_pb2
from tensorflow_serving.apis import regression_pb2
from tensorflow_serving.model_servers import json_tensor
from tensorflow_serving.model_servers import serving_errors
from tensorflow_serving.model_servers import tensor_limits


def _signature(**inputs):
  signature = meta_graph_pb2.SignatureDef()
  for name, dtype in inputs.items():
    signature.inputs[name].name = name + ":0"
    signature.inputs[name].dtype = dtype
  return signature


class PredictRequestTest(parameterized.TestCase):

  def test_row_format_single_input(self):
    inputs, request_format = json_tensor.predict_inputs(
        {"instances": [1.0, 2.0, 5.0]}, _signature(x=types_pb2.DT_FLOAT))
    self.assertEqual(request_format, json_tensor.ROW)
    self.assertEqual(inputs["x"].dtype, np.float32)
    np.testing.assert_array_equal(inputs["x"], [1.0, 2.0, 5.0])

  def test_row_format_named_inputs_are_batched(self):
    inputs, _ = json_tensor.predict_inputs(
        {"instances": [{"a": [1, 2], "s": "x"}, {"a": [3, 4], "s": {"b64": "AP8="}}]},
        _signature(a=types_pb2.DT_INT64, s=types_pb2.DT_STRING))
    np.testing.assert_array_equal(inputs["a"], [[1, 2], [3, 4]])
    self.assertEqual(inputs["a"].dtype, np.int64)
    self.assertEqual(list(inputs["s"]), [b"x", b"\x00\xff"])

  def test_columnar_format(self):
    inputs, request_format = json_tensor.predict_inputs(
        {"inputs": {"a": [[1.5]], "b": True}},
        _signature(a=types_pb2.DT_DOUBLE, b=types_pb2.DT_BOOL))
    self.assertEqual(request_format, json_tensor.COLUMNAR)
    self.assertEqual(inputs["a"].shape, (1, 1))
    self.assertEqual(inputs["b"].shape, ())
    self.assertTrue(inputs["b"])

  def test_nan_and_infinity_tokens(self):
    inputs, _ = json_tensor.predict_inputs(
        json_tensor.parse_request(b'{"inputs": [NaN, Infinity, -Infinity]}'),
        _signature(x=types_pb2.DT_FLOAT))
    self.assertTrue(np.isnan(inputs["x"][0]))
    self.assertEqual(list(inputs["x"][1:]), [np.inf, -np.inf])

  @parameterized.named_parameters(
      ("string_for_int", {"instances": ["a"]}, "Type: String is not of expected type: int32"),
      ("float_for_int", {"inputs": [1.5]}, "is not of expected type: int32"),
      ("bool_for_int", {"inputs": [True]}, "is not of expected type: int32"),
      ("int_out_of_range", {"inputs": [2**40]}, "out of range for type: int32"),
      ("ragged", {"inputs": [[1], [2, 3]]}, "unexpected size"),
      ("ragged_instances", {"instances": [[1], [2, 3]]}, "Expecting shape"),
      ("deeper", {"inputs": [[1], 2]}, "incorrect level"),
      ("both_keys", {"inputs": [1], "instances": [1]}, "only one of"),
      ("no_keys", {"signature_name": "x"}, "Missing 'inputs' or 'instances' key"),
      ("instances_not_list", {"instances": 3}, "to be an list/array"),
      ("instances_empty", {"instances": []}, "No values in 'instances' array"),
      ("mixed_instances", {"instances": [1, {"x": 1}]}, "Expecting value/list but got object"),
  )
  def test_bad_single_int_input(self, document, message):
    with self.assertRaisesRegex(serving_errors.ServingError, message) as raised:
      json_tensor.predict_inputs(document, _signature(x=types_pb2.DT_INT32))
    self.assertEqual(raised.exception.http_status(), 400)

  @parameterized.named_parameters(
      ("plain_instances", {"instances": [1]}, "expecting list of objects"),
      ("wrong_keys", {"instances": [{"a": 1}]}, "keys must be equal to: a,b"),
      ("missing_column", {"inputs": {"a": 1}}, "Missing named input: b"),
      ("extra_column", {"inputs": {"a": 1, "b": 2, "c": 3}}, r"unknown input\(s\) \['c'\]"),
  )
  def test_bad_two_inputs(self, document, message):
    with self.assertRaisesRegex(serving_errors.ServingError, message):
      json_tensor.predict_inputs(document, _signature(a=types_pb2.DT_INT32, b=types_pb2.DT_INT32))

  def test_bfloat16_and_half(self):
    inputs, _ = json_tensor.predict_inputs(
        {"inputs": {"b": [1.5, 2], "h": [0.5]}},
        _signature(b=types_pb2.DT_BFLOAT16, h=types_pb2.DT_HALF))
    self.assertEqual(inputs["b"].dtype.name, "bfloat16")
    self.assertEqual(inputs["h"].dtype, np.float16)
    self.assertEqual([float(v) for v in inputs["b"]], [1.5, 2.0])

  def test_deeply_nested_lists(self):
    document = json_tensor.parse_request(b"{\"inputs\": " + b"[" * 900 + b"1" + b"]" * 900 + b"}")
    with self.assertRaisesRegex(serving_errors.ServingError, "nested too deeply"):
      json_tensor.predict_inputs(document, _signature(x=types_pb2.DT_INT32))

  def test_lossy_float(self):
    with self.assertRaisesRegex(serving_errors.ServingError, "without loss of precision"):
      json_tensor.predict_inputs({"inputs": [2**30 + 1]}, _signature(x=types_pb2.DT_FLOAT))

  def test_bad_base64(self):
    with self.assertRaisesRegex(serving_errors.ServingError, "not valid base64"):
      json_tensor.predict_inputs({"inputs": [{"b64": "!!"}]}, _signature(x=types_pb2.DT_STRING))

  @parameterized.parameters(b"", b"{", b"[1]", b"\xff")
  def test_unparseable_bodies(self, body):
    with self.assertRaisesRegex(serving_errors.ServingError, "JSON|Is not object"):
      json_tensor.parse_request(body)


  @parameterized.named_parameters(
      ("overflowing_double", b'{"instances": [1e400]}', "too big|infinity"),
      ("overflow_next_to_nan", b'{"instances": [NaN, 1e400]}', "too big"),
      ("five_thousand_digits", b'{"instances": [' + b"9" * 5000 + b"]}", "infinity|too big"),
      ("not_utf8", b'{"instances": ["\xff"]}', "UTF-8"),
      ("not_utf8_with_nan", b'{"instances": [NaN, "\xff"]}', "UTF-8"),
  )
  def test_numbers_and_bytes_json_cannot_carry(self, body, message):
    with self.assertRaisesRegex(serving_errors.ServingError, "JSON Parse error: .*" + message):
      json_tensor.parse_request(body)

  def test_bools_among_numbers_are_refused(self):
    for dtype in (types_pb2.DT_FLOAT, types_pb2.DT_INT64):
      with self.assertRaisesRegex(serving_errors.ServingError, "Type: Bool is not of expected"):
        json_tensor.predict_inputs({"inputs": [1, True]}, _signature(x=dtype))

  def test_large_numeric_tensors_take_the_vectorised_path(self):
    values = np.arange(100000, dtype=np.float32) / 7
    inputs, _ = json_tensor.predict_inputs(
        json_tensor.parse_request(b'{"instances": [' + b", ".join(
            json_tensor.format_float(float(v), True).encode() for v in values) + b"]}"),
        _signature(x=types_pb2.DT_FLOAT), may_hold_bools=False)
    np.testing.assert_array_equal(inputs["x"], values)
    named, _ = json_tensor.predict_inputs(
        {"instances": [{"a": [i, i], "b": 1.5} for i in range(1000)]},
        _signature(a=types_pb2.DT_INT32, b=types_pb2.DT_DOUBLE))
    self.assertEqual(named["a"].shape, (1000, 2))
    self.assertEqual(named["b"].dtype, np.float64)

  def test_decoded_bytes_are_charged_to_the_budget(self):
    with self.assertRaisesRegex(serving_errors.ServingError,
                                r"input 'x' of shape \[3\].*--max_request_tensor_bytes") as raised:
      json_tensor.predict_inputs({"inputs": [1.0, 2.0, 3.0]}, _signature(x=types_pb2.DT_FLOAT),
                                 tensor_limits.Budget(8))
    self.assertEqual(raised.exception.http_status(), 429)

  def test_ragged_value_too_large_to_search_is_refused(self):
    value = [[0.0]] * (1 << 20) + [[1.0, 2.0]]
    with self.assertRaisesRegex(serving_errors.ServingError, "not a dense tensor of float"):
      json_tensor.predict_inputs({"inputs": value}, _signature(x=types_pb2.DT_FLOAT))


class PredictResponseTest(absltest.TestCase):

  def test_row_format_unwraps_single_output(self):
    self.assertEqual(
        json_tensor.predict_response({"y": np.array([2.5, 3.0, 4.5], np.float32)}, json_tensor.ROW),
        '{"predictions": [2.5, 3.0, 4.5]}')

  def test_row_format_multiple_outputs_and_bytes(self):
    text = json_tensor.predict_response(
        {"y": np.array([[0.2], [1e-5]], np.float32), "z_bytes": np.array([b"a", b"\xff"], object),
         "s": np.array([b"hi", b"\xff"], object)}, json_tensor.ROW)
    self.assertEqual(json.loads(text), {"predictions": [
        {"s": "hi", "y": [0.2], "z_bytes": {"b64": "YQ=="}},
        {"s": {"b64": "/w=="}, "y": [1e-05], "z_bytes": {"b64": "/w=="}}]})
    self.assertIn("[0.2]", text)  # Not 0.20000000298023224.

  def test_columnar_format(self):
    text = json_tensor.predict_response(
        {"a": np.array([[1, 2]], np.int64), "b": np.array(True)}, json_tensor.COLUMNAR)
    self.assertEqual(text, '{"outputs": {"a": [[1, 2]], "b": true}}')
    self.assertEqual(json_tensor.predict_response({"y": np.array(3.0)}, json_tensor.COLUMNAR),
                     '{"outputs": 3.0}')

  def test_row_format_needs_a_common_batch(self):
    with self.assertRaisesRegex(serving_errors.ServingError, "inconsistent batch size"):
      json_tensor.predict_response({"a": np.zeros([2]), "b": np.zeros([3])}, json_tensor.ROW)

  def test_float_formatting(self):
    self.assertEqual(json_tensor.format_float(3.0, True), "3.0")
    self.assertEqual(json_tensor.format_float(float(np.float32(0.1)), True), "0.1")
    self.assertEqual(json_tensor.format_float(1e6, False), "1e+06")
    self.assertEqual(json_tensor.format_float(1 / 3, False), "0.33333333333333331")
    self.assertEqual(json_tensor.format_float(float("nan"), True), "NaN")
    self.assertEqual(json_tensor.format_float(float("-inf"), True), "-Infinity")


  def test_vectorised_writer_matches_format_float(self):
    rng = np.random.default_rng(7)
    magnitudes = 10.0 ** rng.integers(-40, 40, 3000)
    specials = [0.0, -0.0, 1.0, 3e6, 1e7, 123456.0, 1234567.0, 1e-5, 0.1, 16777216.0, 1e16,
                np.nan, np.inf, -np.inf]
    for dtype in (np.float16, np.float32, np.float64):
      with np.errstate(all="ignore"):
        array = np.concatenate([
            rng.standard_normal(3000) * magnitudes,                   # full precision
            np.round(rng.uniform(-1e3, 1e3, 3000), 2),                  # short
            np.round(rng.uniform(-1, 1, 3000), 4),
            rng.integers(-10**9, 10**9, 1000).astype(np.float64),       # whole numbers
            10.0 ** np.arange(-45, 39), 2.0 ** np.arange(-149, 128),    # edges
            specials]).astype(dtype)
      single = np.dtype(dtype).itemsize <= 4
      expected = "[" + ", ".join(json_tensor.format_float(float(v), single) for v in array) + "]"
      self.assertEqual(
          json_tensor.predict_response({"y": array}, json_tensor.COLUMNAR),
          '{"outputs": ' + expected + "}", dtype)


  def test_fast_float_writer_matches_format_float_on_random_values(self):
    # The writer derives %g text with numpy arithmetic; format_float is the reference.
    rng = np.random.default_rng(11)
    edges = [0.0, -0.0, 1e22, 1e23, 9.999995e5, 999999.5, 99999.95, 1e-4, 9.99995e-5, 0.0001,
             1e-5, 10000.25, 1234565.0, 16777217.0, 2.0**-149, -(2.0**-149), 2.0**-126,
             3.4028234663852886e38, 1.7976931348623157e308, 5e-324, 2.2250738585072014e-308]
    with np.errstate(all="ignore"):
      cases = self._random_float_cases(rng, edges)
    for dtype, parts in cases.items():
      with np.errstate(all="ignore"):
        array = np.concatenate([np.asarray(p).astype(dtype) for p in parts])
        floats = array.astype(np.float64).tolist()
      single = np.dtype(dtype).itemsize <= 4
      expected = [json_tensor.format_float(v, single) for v in floats]
      got = json_tensor._write(array, "y")[1:-1].split(", ")
      mismatches = [(v, e, g) for v, e, g in zip(floats, expected, got) if e != g]
      self.assertEqual(len(got), len(expected), dtype)
      self.assertEqual(mismatches[:5], [], dtype)
      # Nested shapes: the same text, the lists around it as the template writes them.
      shaped = array[:24].reshape(2, 3, 4)
      self.assertEqual(json_tensor._write(shaped, "y"),
                       json_tensor._template(shaped.shape) % tuple(expected[:24]), dtype)

  def _random_float_cases(self, rng, edges):
    bits32 = rng.integers(0, 2**32, 200000, dtype=np.uint64).astype(np.uint32)
    bits64 = rng.integers(0, 2**64 - 1, 200000, dtype=np.uint64)
    return {
        np.float32: [bits32.view(np.float32),
                     rng.standard_normal(50000) * 10.0 ** rng.integers(-46, 39, 50000),
                     np.round(rng.uniform(-1e4, 1e4, 50000), rng.integers(0, 7)),
                     rng.integers(-2**25, 2**25, 50000).astype(np.float64),
                     np.arange(0, 2**20) / 7, edges],
        np.float64: [bits64.view(np.float64),
                     rng.standard_normal(50000) * 10.0 ** rng.integers(-320, 309, 50000),
                     np.round(rng.uniform(-1e4, 1e4, 50000), 3),
                     rng.integers(-2**54, 2**54, 50000).astype(np.float64), edges],
        np.float16: [rng.integers(0, 2**16, 70000, dtype=np.uint16).view(np.float16)],
        tf.bfloat16.as_numpy_dtype: [
            rng.integers(0, 2**16, 70000, dtype=np.uint16).view(tf.bfloat16.as_numpy_dtype)],
    }


class ExamplesTest(absltest.TestCase):

  def test_examples_and_context(self):
    model_input = json_tensor.examples_input({
        "context": {"lang": "en"},
        "examples": [{"x": 1.5, "ids": [1, 2], "flag": True, "raw": {"b64": "AP8="}}]})
    self.assertEqual(model_input.WhichOneof("kind"), "example_list_with_context")
    self.assertEqual(
        model_input.example_list_with_context.context.features.feature["lang"].bytes_list.value,
        [b"en"])
    feature = model_input.example_list_with_context.examples[0].features.feature
    self.assertEqual(list(feature["x"].float_list.value), [1.5])
    self.assertEqual(list(feature["ids"].int64_list.value), [1, 2])
    self.assertEqual(list(feature["flag"].int64_list.value), [1])
    self.assertEqual(list(feature["raw"].bytes_list.value), [b"\x00\xff"])

  def test_bad_examples(self):
    for document, message in [
        ({}, "'examples' is expected"),
        ({"examples": []}, "empty array"),
        ({"examples": [1]}, "must be JSON object"),
        ({"examples": [{"x": [1, 1.5]}]}, "Unexpected element type in feature: x"),
        ({"examples": [{"x": [[1]]}]}, "unexpected JSON type: Array"),
        ({"examples": [{"x": None}]}, "unexpected JSON type: Null"),
    ]:
      with self.assertRaisesRegex(serving_errors.ServingError, message):
        json_tensor.examples_input(document)

  def test_results(self):
    classification = classification_pb2.ClassificationResult()
    classes = classification.classifications.add().classes
    classes.add(label="cat", score=0.75)
    classes.add(label="dog", score=0.25)
    self.assertEqual(json_tensor.classification_response(classification),
                     '{"results": [[["cat", 0.75], ["dog", 0.25]]]}')
    regression = regression_pb2.RegressionResult()
    regression.regressions.add(value=3.0)
    regression.regressions.add(value=0.1)
    self.assertEqual(json_tensor.regression_response(regression), '{"results": [3.0, 0.1]}')


if __name__ == "__main__":
  absltest.main()
