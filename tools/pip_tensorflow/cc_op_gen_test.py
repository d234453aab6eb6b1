"""Tests for cc_op_gen, the stand-in for TensorFlow's C++ op-wrapper generator.

Most cases feed OpDefs written in text format to `generate` and read the C++
that comes out; the rest load a real op library shipped in the TensorFlow
wheel, in-process and through the command line.
"""

import codecs
import os
import re
import subprocess
import sys

from absl.testing import absltest
from google.protobuf import text_format
import tensorflow as tf
from tensorflow.core.framework import op_def_pb2
from tensorflow.core.framework import tensor_pb2

from tools.pip_tensorflow import cc_op_gen
from tools.pip_tensorflow import op_library

# The OpDef that REGISTER_OP("TfServingRemotePredict") produces upstream; a
# `list(type)` attr used by an argument gets a minimum length of one.
_REMOTE_PREDICT = """
name: "TfServingRemotePredict"
input_arg { name: "input_tensor_aliases" type: DT_STRING }
input_arg { name: "input_tensors" type_list_attr: "T" }
input_arg { name: "output_tensor_aliases" type: DT_STRING }
output_arg { name: "status_code" type: DT_INT32 }
output_arg { name: "status_error_message" type: DT_STRING }
output_arg { name: "output_tensors" type_list_attr: "output_types" }
attr { name: "T" type: "list(type)" has_minimum: true minimum: 1 }
attr { name: "target_address" type: "string" default_value { s: "" } }
attr { name: "model_name" type: "string" default_value { s: "" } }
attr { name: "model_version" type: "int" default_value { i: -1 } }
attr { name: "fail_op_on_rpc_error" type: "bool" default_value { b: true } }
attr {
  name: "max_rpc_deadline_millis" type: "int" default_value { i: 30000 }
}
attr {
  name: "signature_name" type: "string"
  default_value { s: "serving_default" }
}
attr { name: "output_types" type: "list(type)" has_minimum: true minimum: 1 }
summary: "Invokes Predict on a remote graph."
is_stateful: true
"""

# The microfrontend op library is part of the TensorFlow wheel, so it serves as
# a real shared object for the loading path.
_AUDIO_LIBRARY = os.path.join(
    os.path.dirname(tf.__file__),
    "lite/experimental/microfrontend/python/ops/_audio_microfrontend_op.so")


def _op_list(*op_defs: str) -> op_def_pb2.OpList:
  ops = op_def_pb2.OpList()
  for op_def in op_defs:
    text_format.Parse(op_def, ops.op.add())
  return ops


def _generate(*op_defs: str) -> tuple[str, str]:
  return cc_op_gen.generate(_op_list(*op_defs), "some/pkg/cc/ops/test_ops.h")


def _flat(text: str) -> str:
  """Collapses line breaks and indents so wrapped C++ reads as one line."""
  return re.sub(r"\s+", " ", text).replace("( ", "(")


def _class_body(header: str, name: str) -> str:
  match = re.search(rf"^class {name} {{\n(.*?)^}};", header, re.M | re.S)
  assert match, f"no class {name} in:\n{header}"
  return match.group(1)


def _definitions(source: str, name: str) -> str:
  """Every constructor definition of class `name`, in order."""
  return "\n".join(
      re.findall(rf"^{name}::{name}\(.*?^(?:}}|.*\{{\}})$", source,
                 re.M | re.S))


class RemotePredictTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.header, self.source = _generate(_REMOTE_PREDICT)
    self.body = _flat(_class_body(self.header, "TfServingRemotePredict"))
    self.defs = _flat(_definitions(self.source, "TfServingRemotePredict"))

  def test_header_frame(self):
    self.assertIn("#ifndef SOME_PKG_CC_OPS_TEST_OPS_H_\n", self.header)
    self.assertIn("#endif  // SOME_PKG_CC_OPS_TEST_OPS_H_\n", self.header)
    self.assertIn('#include "some/pkg/cc/ops/test_ops.h"', self.source)
    for text in (self.header, self.source):
      self.assertIn("namespace tensorflow {\nnamespace ops {\n", text)

  def test_constructors_take_inputs_then_required_attrs(self):
    params = ("const ::tensorflow::Scope& scope, "
              "::tensorflow::Input input_tensor_aliases, "
              "::tensorflow::InputList input_tensors, "
              "::tensorflow::Input output_tensor_aliases, "
              "DataTypeSlice output_types")
    self.assertIn(f"TfServingRemotePredict({params});", self.body)
    self.assertIn(
        f"TfServingRemotePredict({params}, "
        "const TfServingRemotePredict::Attrs& attrs);", self.body)
    # T follows from input_tensors, so it is no parameter.
    self.assertNotRegex(self.body, r"DataTypeSlice T\b")

  def test_attrs_setters_and_defaults(self):
    for setter, cpp, member, default in (
        ("TargetAddress", "::absl::string_view", "target_address_", '""'),
        ("ModelName", "::absl::string_view", "model_name_", '""'),
        ("ModelVersion", "int64_t", "model_version_", "-1"),
        ("FailOpOnRpcError", "bool", "fail_op_on_rpc_error_", "true"),
        ("MaxRpcDeadlineMillis", "int64_t", "max_rpc_deadline_millis_",
         "30000"),
        ("SignatureName", "::absl::string_view", "signature_name_",
         '"serving_default"'),
    ):
      with self.subTest(setter):
        self.assertIn(
            f"TF_MUST_USE_RESULT Attrs {setter}({cpp} x) {{ "
            f"Attrs ret = *this; ret.{member} = x; return ret; }}", self.body)
        self.assertIn(f"{cpp} {member} = {default};", self.body)
        self.assertIn(
            f"static Attrs {setter}({cpp} x) {{ "
            f"return Attrs().{setter}(x); }}", self.body)

  def test_members_and_no_conversions_for_three_outputs(self):
    self.assertIn(
        "::tensorflow::Operation operation; "
        "::tensorflow::Output status_code; "
        "::tensorflow::Output status_error_message; "
        "::tensorflow::OutputList output_tensors;", self.body)
    self.assertNotIn("operator", self.body)

  def test_builder_adds_inputs_then_attrs(self):
    self.assertIn(
        'auto builder = ::tensorflow::NodeBuilder(unique_name, '
        '"TfServingRemotePredict") '
        ".Input(_input_tensor_aliases) .Input(_input_tensors) "
        ".Input(_output_tensor_aliases) "
        '.Attr("output_types", output_types) '
        '.Attr("target_address", attrs.target_address_) '
        '.Attr("model_name", attrs.model_name_) '
        '.Attr("model_version", attrs.model_version_) '
        '.Attr("fail_op_on_rpc_error", attrs.fail_op_on_rpc_error_) '
        '.Attr("max_rpc_deadline_millis", attrs.max_rpc_deadline_millis_) '
        '.Attr("signature_name", attrs.signature_name_);', self.defs)
    self.assertIn(
        "auto _input_tensors = "
        "::tensorflow::ops::AsNodeOutList(scope, input_tensors);", self.defs)
    self.assertIn(
        "auto _input_tensor_aliases = "
        "::tensorflow::ops::AsNodeOut(scope, input_tensor_aliases);",
        self.defs)
    self.assertIn(
        'const auto unique_name = '
        'scope.GetUniqueNameForOp("TfServingRemotePredict");', self.defs)
    self.assertIn(
        "scope.UpdateBuilder(&builder); "
        "scope.UpdateStatus(builder.Finalize(scope.graph(), &ret)); "
        "if (!scope.ok()) return; "
        "scope.UpdateStatus(scope.DoShapeInference(ret)); "
        "this->operation = Operation(ret);", self.defs)

  def test_outputs_are_sliced_by_name_range(self):
    self.assertIn(
        "::tensorflow::NameRangesForNode(*ret, ret->op_def(), nullptr, "
        "&_outputs_range);", self.defs)
    self.assertIn(
        'this->status_code = Output(ret, _outputs_range["status_code"].first);',
        self.defs)
    self.assertIn(
        "this->status_error_message = "
        'Output(ret, _outputs_range["status_error_message"].first);',
        self.defs)
    self.assertIn(
        'for (int32_t i = _outputs_range["output_tensors"].first; '
        'i < _outputs_range["output_tensors"].second; ++i) '
        "this->output_tensors.push_back(Output(ret, i));", self.defs)

  def test_short_constructor_forwards_default_attrs(self):
    self.assertIn(
        ": TfServingRemotePredict(scope, input_tensor_aliases, input_tensors, "
        "output_tensor_aliases, output_types, "
        "TfServingRemotePredict::Attrs()) {}", self.defs)


class OutputShapeTest(absltest.TestCase):

  def test_single_output_converts_to_output_and_input(self):
    header, source = _generate("""
        name: "Double"
        input_arg { name: "x" type_attr: "T" }
        output_arg { name: "y" type_attr: "T" }
        attr { name: "T" type: "type" }
        """)
    body = _flat(_class_body(header, "Double"))
    self.assertIn(
        "Double(const ::tensorflow::Scope& scope, ::tensorflow::Input x);",
        body)
    self.assertNotIn("Attrs", body)
    self.assertIn("operator ::tensorflow::Output() const { return y; }", body)
    self.assertIn("operator ::tensorflow::Input() const { return y; }", body)
    self.assertIn("::tensorflow::Node* node() const { return y.node(); }", body)
    self.assertIn("this->y = Output(ret, 0);", source)
    self.assertNotIn("NameRangesForNode", source)

  def test_single_list_output_is_indexable(self):
    header, source = _generate("""
        name: "Pieces"
        input_arg { name: "value" type: DT_FLOAT }
        output_arg { name: "output" type: DT_FLOAT number_attr: "num" }
        attr { name: "num" type: "int" has_minimum: true minimum: 1 }
        """)
    body = _flat(_class_body(header, "Pieces"))
    # An output's length attr is not inferred from inputs: callers pass it.
    self.assertIn(
        "Pieces(const ::tensorflow::Scope& scope, ::tensorflow::Input value, "
        "int64_t num);", body)
    self.assertIn(
        "::tensorflow::Output operator[](size_t index) const { "
        "return output[index]; }", body)
    self.assertIn("::tensorflow::OutputList output;", body)
    self.assertIn(
        "for (int32_t i = 0; i < ret->num_outputs(); ++i) "
        "this->output.push_back(Output(ret, i));", _flat(source))
    self.assertIn('.Attr("num", num);', _flat(source))

  def test_plain_outputs_take_fixed_indices(self):
    header, source = _generate("""
        name: "Both"
        input_arg { name: "a" type: DT_FLOAT }
        output_arg { name: "low" type: DT_FLOAT }
        output_arg { name: "high" type: DT_INT32 }
        """)
    self.assertNotIn("operator", _class_body(header, "Both"))
    self.assertIn("this->low = Output(ret, 0);", source)
    self.assertIn("this->high = Output(ret, 1);", source)

  def test_no_outputs_converts_to_operation(self):
    header, source = _generate("""
        name: "Sink"
        input_arg { name: "x" type: DT_INT32 }
        """)
    body = _flat(_class_body(header, "Sink"))
    self.assertIn(
        "operator ::tensorflow::Operation() const { return operation; }", body)
    self.assertNotIn("Output(ret", source)


class AttrTest(absltest.TestCase):

  def test_attrs_inferred_from_inputs_are_not_parameters(self):
    header, _ = _generate("""
        name: "Gather"
        input_arg { name: "x" type_attr: "T" }
        input_arg { name: "xs" type_attr: "T" number_attr: "N" }
        input_arg { name: "mixed" type_list_attr: "Tlist" }
        output_arg { name: "y" type_attr: "Tout" }
        attr { name: "T" type: "type" }
        attr { name: "N" type: "int" }
        attr { name: "Tlist" type: "list(type)" }
        attr { name: "Tout" type: "type" }
        """)
    self.assertIn(
        "Gather(const ::tensorflow::Scope& scope, ::tensorflow::Input x, "
        "::tensorflow::InputList xs, ::tensorflow::InputList mixed, "
        "DataType Tout);", _flat(_class_body(header, "Gather")))

  def test_required_attr_types(self):
    header, _ = _generate("""
        name: "Kinds"
        attr { name: "s" type: "string" }
        attr { name: "i" type: "int" }
        attr { name: "f" type: "float" }
        attr { name: "b" type: "bool" }
        attr { name: "t" type: "type" }
        attr { name: "ts" type: "list(type)" }
        attr { name: "shape" type: "shape" }
        attr { name: "value" type: "tensor" }
        attr { name: "is" type: "list(int)" }
        attr { name: "ss" type: "list(string)" }
        """)
    self.assertIn(
        "Kinds(const ::tensorflow::Scope& scope, ::absl::string_view s, "
        "int64_t i, float f, bool b, DataType t, DataTypeSlice ts, "
        "PartialTensorShape shape, TensorProto value, "
        "::absl::Span<const int> is, "
        "::absl::Span<const ::tensorflow::tstring> ss);",
        _flat(_class_body(header, "Kinds")))

  def test_default_values(self):
    header, _ = _generate(r"""
        name: "Defaults"
        attr { name: "f" type: "float" default_value { f: 0.025 } }
        attr { name: "whole" type: "float" default_value { f: 7500 } }
        attr { name: "low" type: "float" default_value { f: -inf } }
        attr { name: "t" type: "type" default_value { type: DT_HALF } }
        attr {
          name: "i" type: "int" default_value { i: -9223372036854775808 }
        }
        attr { name: "s" type: "string" default_value { s: "a\"b\\c?" } }
        attr { name: "nul" type: "string" default_value { s: "x\0001" } }
        attr {
          name: "unknown" type: "shape"
          default_value { shape { unknown_rank: true } }
        }
        attr { name: "scalar" type: "shape" default_value { shape {} } }
        attr {
          name: "matrix" type: "shape"
          default_value { shape { dim { size: 2 } dim { size: -1 } } }
        }
        attr {
          name: "ints" type: "list(int)" default_value { list { i: 1 i: 2 } }
        }
        attr { name: "no_ints" type: "list(int)" default_value { list {} } }
        attr {
          name: "types" type: "list(type)"
          default_value { list { type: DT_FLOAT type: DT_INT64 } }
        }
        attr {
          name: "names" type: "list(string)"
          default_value { list { s: "a" s: "b\000" } }
        }
        """)
    body = _flat(_class_body(header, "Defaults"))
    for member in (
        "float f_ = 0.025f;",
        "float whole_ = 7500.0f;",
        "float low_ = -std::numeric_limits<float>::infinity();",
        "DataType t_ = DT_HALF;",
        "int64_t i_ = (-9223372036854775807LL - 1);",
        r'::absl::string_view s_ = "a\"b\\c\077";',
        r'::absl::string_view nul_ = ::absl::string_view("x\0001", 3);',
        "PartialTensorShape unknown_ = ::tensorflow::PartialTensorShape();",
        "PartialTensorShape scalar_ = "
        "::tensorflow::PartialTensorShape(::absl::Span<const int64_t>());",
        "PartialTensorShape matrix_ = "
        "::tensorflow::PartialTensorShape({2, -1});",
        "::absl::Span<const int> ints_ = Default_ints();",
        "static const int kValues[] = {1, 2};",
        "::absl::Span<const int> no_ints_ = {};",
        "DataTypeSlice types_ = Default_types();",
        "static const DataType kValues[] = {DT_FLOAT, DT_INT64};",
        r'static const ::tensorflow::tstring kValues[] = '
        r'{"a", ::tensorflow::tstring("b\000", 2)};',
    ):
      with self.subTest(member):
        self.assertIn(member, body)

  def test_tensor_default_round_trips(self):
    header, _ = _generate("""
        name: "Fill"
        attr {
          name: "color" type: "tensor"
          default_value {
            tensor {
              dtype: DT_UINT8 tensor_shape { dim { size: 4 } }
              int_val: 255 int_val: 0 int_val: 0 int_val: 255
            }
          }
        }
        """)
    body = _flat(_class_body(header, "Fill"))
    self.assertIn("TensorProto color_ = Default_color();", body)
    match = re.search(r'std::string\("((?:[^"\\]|\\.)*)", (\d+)\)', body)
    self.assertIsNotNone(match)
    data = codecs.escape_decode(match.group(1))[0]
    self.assertLen(data, int(match.group(2)))
    self.assertEqual(
        tensor_pb2.TensorProto.FromString(data),
        text_format.Parse(
            "dtype: DT_UINT8 tensor_shape { dim { size: 4 } } "
            "int_val: 255 int_val: 0 int_val: 0 int_val: 255",
            tensor_pb2.TensorProto()))

  def test_unsupported_attr_type_names_op_and_attr(self):
    with self.assertRaisesRegex(
        cc_op_gen.OpWrapperError, r"op MapFn: attr 'f' has type 'func'"):
      _generate("""
          name: "MapFn"
          attr { name: "f" type: "func" }
          """)

  def test_setter_names_are_camel_case(self):
    self.assertEqual(cc_op_gen.camel_case("fail_op_on_rpc_error"),
                     "FailOpOnRpcError")
    self.assertEqual(cc_op_gen.camel_case("T"), "T")
    self.assertEqual(cc_op_gen.camel_case("out_type"), "OutType")


class NamingTest(absltest.TestCase):

  def test_reserved_names_get_an_underscore(self):
    header, source = _generate("""
        name: "Reserved"
        input_arg { name: "default" type: DT_INT32 }
        input_arg { name: "scope" type: DT_INT32 }
        output_arg { name: "operation" type: DT_INT32 }
        output_arg { name: "node" type: DT_INT32 }
        attr { name: "class" type: "int" }
        """)
    body = _flat(_class_body(header, "Reserved"))
    self.assertIn(
        "Reserved(const ::tensorflow::Scope& scope, "
        "::tensorflow::Input default_, ::tensorflow::Input scope_, "
        "int64_t class_);", body)
    self.assertIn("::tensorflow::Output operation_;", body)
    self.assertIn("::tensorflow::Output node_;", body)
    flat = _flat(source)
    self.assertIn("::tensorflow::ops::AsNodeOut(scope, default_);", flat)
    self.assertIn('.Input(_default_) .Input(_scope_) .Attr("class", class_);',
                  flat)

  def test_clashing_names_are_rejected(self):
    with self.assertRaisesRegex(cc_op_gen.OpWrapperError,
                                r"op Clash: output 'operation' and output "
                                r"'operation_' would share the C\+\+ name "
                                r"operation_"):
      _generate("""
          name: "Clash"
          output_arg { name: "operation" type: DT_INT32 }
          output_arg { name: "operation_" type: DT_INT32 }
          """)

  def test_setter_named_like_the_class_is_rejected(self):
    with self.assertRaisesRegex(
        cc_op_gen.OpWrapperError,
        r"op Color: attr 'color' \(setter Color\) and the class itself would "
        r"share the C\+\+ name Color"):
      _generate("""
          name: "Color"
          attr { name: "color" type: "int" default_value { i: 1 } }
          """)

  def test_empty_op_list_is_rejected(self):
    with self.assertRaisesRegex(cc_op_gen.OpWrapperError, "no ops"):
      cc_op_gen.generate(op_def_pb2.OpList(), "x.h")


class SelectOpsTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.ops = _op_list('name: "First"', 'name: "Second"')

  def test_all_ops_by_default(self):
    selected = cc_op_gen.select_ops(self.ops, [], "lib.so")
    self.assertEqual([op.name for op in selected.op], ["First", "Second"])

  def test_named_ops_only(self):
    selected = cc_op_gen.select_ops(self.ops, ["Second"], "lib.so")
    self.assertEqual([op.name for op in selected.op], ["Second"])

  def test_unknown_name_lists_registered_ops(self):
    with self.assertRaisesRegex(
        cc_op_gen.OpWrapperError,
        r"asks for Third, which lib.so does not register "
        r"\(it registers: First, Second\)"):
      cc_op_gen.select_ops(self.ops, ["Third"], "lib.so")

  def test_library_without_ops_is_rejected(self):
    with self.assertRaisesRegex(cc_op_gen.OpWrapperError,
                                "lib.so registers no new ops"):
      cc_op_gen.select_ops(op_def_pb2.OpList(), [], "lib.so")


class OpLibraryTest(absltest.TestCase):

  def test_loads_ops_from_shared_object(self):
    op_list = op_library.load_op_list(_AUDIO_LIBRARY)
    self.assertEqual([op.name for op in op_list.op], ["AudioMicrofrontend"])
    header, _ = cc_op_gen.generate(op_list, "audio.h")
    body = _flat(_class_body(header, "AudioMicrofrontend"))
    self.assertIn("float even_smoothing_ = 0.025f;", body)
    self.assertIn("DataType out_type_ = DT_UINT16;", body)

  def test_missing_library_is_named(self):
    missing = os.path.join(self.create_tempdir().full_path, "nope.so")
    with self.assertRaisesRegex(op_library.OpLibraryError,
                                f"cannot load op library {missing}"):
      op_library.load_op_list(missing)

  def _run(self, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, cc_op_gen.__file__, *flags],
        capture_output=True, text=True, check=False)

  def test_command_line_writes_header_and_source(self):
    out = self.create_tempdir().full_path
    header = os.path.join(out, "cc", "ops", "audio.h")
    source = os.path.join(out, "cc", "ops", "audio.cc")
    result = self._run(f"--op_library={_AUDIO_LIBRARY}",
                       f"--header_out={header}", f"--source_out={source}",
                       "--header_include=pkg/cc/ops/audio.h")
    self.assertEqual(result.returncode, 0, result.stderr)
    with open(header) as f:
      self.assertIn("class AudioMicrofrontend {", f.read())
    with open(source) as f:
      self.assertIn('#include "pkg/cc/ops/audio.h"', f.read())

  def test_command_line_reports_unknown_op_name(self):
    out = self.create_tempdir().full_path
    result = self._run(f"--op_library={_AUDIO_LIBRARY}",
                       f"--header_out={out}/a.h", f"--source_out={out}/a.cc",
                       "--header_include=a.h", "--op_names=Missing")
    self.assertEqual(result.returncode, 1)
    self.assertIn("--op_names asks for Missing", result.stderr)
    self.assertFalse(os.path.exists(os.path.join(out, "a.h")))


if __name__ == "__main__":
  absltest.main()
