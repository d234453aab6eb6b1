"""Writes the C++ op wrappers (`cc/ops/<name>.h/.cc`) for a custom-op library.

Stands in for TensorFlow's C++ op generator, which the pip package does not
ship. `tf_gen_op_wrapper_cc` runs it on a shared object that registers the ops;
the output has the shape of TensorFlow's generated `tensorflow/cc/ops/*_ops.h`,
so code written against a source-built wrapper compiles against this one.

Type names are the ones TensorFlow's aliases resolve to (`int64_t` for `int64`,
`absl::string_view` for `StringPiece`, `absl::Span<const T>` for
`gtl::ArraySlice<T>`): the same types, without the deprecation warnings that
the old spellings raise under GCC.
"""

import dataclasses
import math
import os
import re
import sys
from typing import Callable, Optional, Sequence

from absl import app
from absl import flags
import numpy as np
from tensorflow.core.framework import attr_value_pb2
from tensorflow.core.framework import op_def_pb2
from tensorflow.core.framework import types_pb2

from tools.pip_tensorflow import op_library

_OP_LIBRARY = flags.DEFINE_string(
    "op_library", None, "Shared object that registers the ops to wrap.")
_HEADER_OUT = flags.DEFINE_string("header_out", None, "C++ header to write.")
_SOURCE_OUT = flags.DEFINE_string("source_out", None, "C++ source to write.")
_HEADER_INCLUDE = flags.DEFINE_string(
    "header_include", None,
    "Path the source file uses to #include the header, e.g. "
    "tensorflow_serving/.../cc/ops/remote_predict_op.h.")
_OP_NAMES = flags.DEFINE_list(
    "op_names", [], "Ops to wrap; all ops the library registers when empty.")

_BANNER = "// This file is MACHINE GENERATED! Do not edit."
_LINE_WIDTH = 80


class OpWrapperError(ValueError):
  """An op cannot be expressed as a C++ wrapper class."""


# Names an argument or output member must not take: C++ keywords, the locals
# of the generated constructor, and the wrapper class's own members.
_CPP_RESERVED = frozenset("""
    alignas alignof and and_eq asm auto bitand bitor bool break case catch char
    char16_t char32_t class compl const constexpr const_cast continue decltype
    default delete do double dynamic_cast else enum explicit export extern false
    float for friend goto if inline int long mutable namespace new noexcept not
    not_eq nullptr operator or or_eq private protected public register
    reinterpret_cast return short signed sizeof static static_assert static_cast
    struct switch template this thread_local throw true try typedef typeid
    typename union unsigned using virtual void volatile wchar_t while xor xor_eq
    scope attrs ret builder unique_name operation node
    """.split())


def _safe_name(name: str) -> str:
  return name + "_" if name in _CPP_RESERVED else name


def camel_case(name: str) -> str:
  """`fail_op_on_rpc_error` -> `FailOpOnRpcError`; `T` stays `T`."""
  return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


# --- C++ literals for attr default values -----------------------------------


def _string_literal(value: bytes) -> str:
  # Octal escapes have a fixed width, so a digit after one cannot extend it.
  out = []
  for byte in value:
    char = chr(byte)
    if char in '"\\':
      out.append("\\" + char)
    elif 0x20 <= byte < 0x7F and char != "?":  # '?' could start a trigraph.
      out.append(char)
    else:
      out.append(f"\\{byte:03o}")
  return '"' + "".join(out) + '"'


def _string_value(value: bytes, cpp_type: str) -> str:
  """A `cpp_type` expression holding exactly `value`, NUL bytes included."""
  if b"\0" in value:
    return f"{cpp_type}({_string_literal(value)}, {len(value)})"
  return _string_literal(value)


def _int_literal(value: int) -> str:
  if value == -(2**63):  # Its magnitude does not fit a long long literal.
    return "(-9223372036854775807LL - 1)"
  return str(value)


def _float_literal(value: float) -> str:
  if math.isnan(value):
    return "std::numeric_limits<float>::quiet_NaN()"
  if math.isinf(value):
    sign = "-" if value < 0 else ""
    return f"{sign}std::numeric_limits<float>::infinity()"
  # The attr holds a float32; numpy prints the shortest text that reads back
  # as the same float32 (0.025 rather than 0.02500000037252903).
  text = str(np.float32(value))
  if "e" not in text and "." not in text:
    text += ".0"
  return text + "f"


def _type_literal(value: int) -> str:
  return types_pb2.DataType.Name(value)


def _shape_literal(shape) -> str:
  if shape.unknown_rank:
    return "::tensorflow::PartialTensorShape()"
  if not shape.dim:  # `({})` would be ambiguous with the copy constructor.
    return "::tensorflow::PartialTensorShape(::absl::Span<const int64_t>())"
  dims = ", ".join(_int_literal(d.size) for d in shape.dim)
  return f"::tensorflow::PartialTensorShape({{{dims}}})"


def _empty_list(values) -> Optional[str]:
  return "{}" if not values else None


@dataclasses.dataclass(frozen=True)
class _AttrType:
  """How one OpDef attr type is spelled and initialised in C++."""
  cpp: str
  # The default as a C++ expression, or None when it needs a helper function
  # (non-empty lists, tensors).
  literal: Callable[[attr_value_pb2.AttrValue], Optional[str]]
  # For list types: the element type and the elements of a default.
  element_cpp: Optional[str] = None
  elements: Optional[Callable[[attr_value_pb2.AttrValue], list[str]]] = None


_ATTR_TYPES = {
    "string": _AttrType(
        "::absl::string_view",
        lambda v: _string_value(v.s, "::absl::string_view")),
    "int": _AttrType("int64_t", lambda v: _int_literal(v.i)),
    "float": _AttrType("float", lambda v: _float_literal(v.f)),
    "bool": _AttrType("bool", lambda v: "true" if v.b else "false"),
    "type": _AttrType("DataType", lambda v: _type_literal(v.type)),
    "shape": _AttrType("PartialTensorShape",
                       lambda v: _shape_literal(v.shape)),
    "tensor": _AttrType("TensorProto", lambda v: None),
    "list(type)": _AttrType(
        "DataTypeSlice", lambda v: _empty_list(v.list.type),
        element_cpp="DataType",
        elements=lambda v: [_type_literal(t) for t in v.list.type]),
    "list(int)": _AttrType(
        "::absl::Span<const int>", lambda v: _empty_list(v.list.i),
        element_cpp="int",
        elements=lambda v: [_int_literal(i) for i in v.list.i]),
    "list(string)": _AttrType(
        "::absl::Span<const ::tensorflow::tstring>",
        lambda v: _empty_list(v.list.s),
        element_cpp="::tensorflow::tstring",
        elements=lambda v: [
            _string_value(s, "::tensorflow::tstring") for s in v.list.s
        ]),
}


def _attr_type(op: str, attr: op_def_pb2.OpDef.AttrDef) -> _AttrType:
  try:
    return _ATTR_TYPES[attr.type]
  except KeyError:
    raise OpWrapperError(
        f"op {op}: attr '{attr.name}' has type '{attr.type}', which the C++ "
        "wrapper generator does not support (supported: "
        f"{', '.join(_ATTR_TYPES)}); change the attr's type or leave the op "
        "out with --op_names") from None


def _default_helper(attr: op_def_pb2.OpDef.AttrDef,
                    attr_type: _AttrType) -> tuple[str, list[str]]:
  """(call, static function) for a default too big for a member initialiser."""
  function = f"Default_{attr.name}"
  if attr.type == "tensor":
    data = attr.default_value.tensor.SerializeToString()
    return f"{function}()", [
        f"static TensorProto {function}() {{",
        "  TensorProto proto;",
        "  proto.ParseFromString(",
        f"      std::string({_string_literal(data)}, {len(data)}));",
        "  return proto;",
        "}",
    ]
  values = ", ".join(attr_type.elements(attr.default_value))
  return f"{function}()", [
      f"static {attr_type.cpp} {function}() {{",
      f"  static const {attr_type.element_cpp} kValues[] = {{{values}}};",
      f"  return {attr_type.cpp}(kValues);",
      "}",
  ]


# --- The op, digested --------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Param:
  """A constructor parameter: an input, or an attr without a default."""
  name: str  # In C++.
  op_name: str  # In the OpDef.
  cpp: str
  doc: str
  is_list_input: bool = False


@dataclasses.dataclass(frozen=True)
class _OptionalAttr:
  name: str
  setter: str
  cpp: str
  default: str  # C++ expression initialising the Attrs member.
  helper: list[str]  # Static function the default calls, if any.
  doc: str


@dataclasses.dataclass(frozen=True)
class _Output:
  name: str  # In the OpDef.
  member: str
  is_list: bool
  doc: str


def _is_list(arg: op_def_pb2.OpDef.ArgDef) -> bool:
  return bool(arg.number_attr or arg.type_list_attr)


class _Op:
  """An OpDef split into the pieces the header and the source are made of."""

  def __init__(self, op_def: op_def_pb2.OpDef):
    self.name = op_def.name
    self.op_def = op_def
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", self.name):
      raise OpWrapperError(
          f"op name '{self.name}' cannot name a C++ class; leave the op out "
          "with --op_names")

    self.inputs = [
        _Param(_safe_name(arg.name), arg.name,
               "::tensorflow::InputList" if _is_list(arg)
               else "::tensorflow::Input",
               arg.description, is_list_input=_is_list(arg))
        for arg in op_def.input_arg
    ]
    # The node builder works these out from the inputs it is given.
    inferred = set()
    for arg in op_def.input_arg:
      inferred.update({arg.type_attr, arg.number_attr, arg.type_list_attr})

    self.required_attrs: list[_Param] = []
    self.optional_attrs: list[_OptionalAttr] = []
    for attr in op_def.attr:
      if attr.name in inferred:
        continue
      attr_type = _attr_type(self.name, attr)
      if not attr.HasField("default_value"):
        self.required_attrs.append(
            _Param(_safe_name(attr.name), attr.name, attr_type.cpp,
                   attr.description))
        continue
      default, helper = attr_type.literal(attr.default_value), []
      if default is None:
        default, helper = _default_helper(attr, attr_type)
      self.optional_attrs.append(
          _OptionalAttr(attr.name, camel_case(attr.name), attr_type.cpp,
                        default, helper, attr.description))

    self.outputs = [
        _Output(arg.name, _safe_name(arg.name), _is_list(arg), arg.description)
        for arg in op_def.output_arg
    ]
    self._check_names()

  @property
  def params(self) -> list[_Param]:
    return self.inputs + self.required_attrs

  def _check_names(self) -> None:
    scopes = (
        [(p.name, f"input '{p.op_name}'") for p in self.inputs] +
        [(p.name, f"attr '{p.op_name}'") for p in self.required_attrs],
        [(o.member, f"output '{o.name}'") for o in self.outputs] +
        [(a.setter, f"attr '{a.name}' (setter {a.setter})")
         for a in self.optional_attrs] +
        [(self.name, "the class itself"), ("Attrs", "the Attrs struct")],
    )
    for names in scopes:
      owners: dict[str, list[str]] = {}
      for cpp_name, owner in names:
        owners.setdefault(cpp_name, []).append(owner)
      for cpp_name, clash in owners.items():
        if len(clash) > 1:
          raise OpWrapperError(
              f"op {self.name}: {' and '.join(clash)} would share the C++ "
              f"name {cpp_name}; rename one of them in the op's registration")


# --- Writing C++ -------------------------------------------------------------


def _wrap(head: str, items: Sequence[str], tail: str, indent: str) -> list[str]:
  """`head` + comma-separated `items` + `tail`, broken to fit the line width.

  Continuation lines start at `indent`, or four spaces in from `head` when
  `indent` leaves too little room.
  """
  one_line = head + ", ".join(items) + tail
  if len(one_line) <= _LINE_WIDTH or not items:
    return [one_line]
  lines, current = [], head
  widest = max(len(item) for item in items) + len(tail)
  if len(indent) + widest > _LINE_WIDTH:
    indent = " " * (len(head) - len(head.lstrip()) + 4)
    lines, current = [head], indent
  for i, item in enumerate(items):
    piece = item + ("," if i + 1 < len(items) else tail)
    if current.strip() and len(current) + 1 + len(piece) > _LINE_WIDTH:
      lines.append(current)
      current = indent + piece
    elif current.strip() and not current.endswith("("):
      current += " " + piece
    else:
      current += piece
  lines.append(current)
  return lines


def _params(op: _Op, with_attrs: bool) -> list[str]:
  params = ["const ::tensorflow::Scope& scope"]
  params += [f"{p.cpp} {p.name}" for p in op.params]
  if with_attrs:
    params.append(f"const {op.name}::Attrs& attrs")
  return params


def _statement(first: str, rest: str) -> list[str]:
  """`first rest` on one line if it fits, else `rest` on a continuation line."""
  if len(first) + 1 + len(rest) <= _LINE_WIDTH:
    return [f"{first} {rest}"]
  return [first, "      " + rest]


def _doc(text: str, indent: str = "") -> list[str]:
  return [f"{indent}/// {line}".rstrip() for line in text.strip().splitlines()]


def _arg_doc(name: str, doc: str) -> list[str]:
  first, *rest = doc.strip().splitlines() or [""]
  lines = [f"/// * {name}: {first}" if first else f"/// * {name}"]
  return lines + [f"///   {line.strip()}".rstrip() for line in rest]


def _class_doc(op: _Op) -> list[str]:
  lines = []
  text = "\n\n".join(t for t in (op.op_def.summary, op.op_def.description) if t)
  if text:
    lines += _doc(text) + ["///"]
  lines += ["/// Args:", "/// * scope: A Scope object"]
  for param in op.params:
    lines += _arg_doc(param.name, param.doc)
  if op.optional_attrs:
    lines += ["///", "/// Optional attributes (see `Attrs`):"]
    for attr in op.optional_attrs:
      lines += _arg_doc(attr.name, attr.doc)
  if op.outputs:
    lines += ["///", "/// Returns:"]
    for out in op.outputs:
      kind = "OutputList" if out.is_list else "Output"
      lines += _arg_doc(f"`{kind}` {out.member}", out.doc)
  return lines


def _attrs_struct(op: _Op) -> list[str]:
  lines = [f"  /// Optional attribute setters for {op.name}",
           "  struct Attrs {"]
  for attr in op.optional_attrs:
    lines += _doc(attr.doc, "    ")
    lines += [
        f"    TF_MUST_USE_RESULT Attrs {attr.setter}({attr.cpp} x) {{",
        "      Attrs ret = *this;",
        f"      ret.{attr.name}_ = x;",
        "      return ret;",
        "    }",
        "",
    ]
  for attr in op.optional_attrs:
    lines += ["    " + line for line in attr.helper]
  for attr in op.optional_attrs:
    lines.append(f"    {attr.cpp} {attr.name}_ = {attr.default};")
  lines.append("  };")
  return lines


def _class_declaration(op: _Op) -> str:
  lines = _class_doc(op) + [f"class {op.name} {{", " public:"]
  if op.optional_attrs:
    lines += _attrs_struct(op)
  ctor_indent = " " * (len(op.name) + 3)
  lines += _wrap(f"  {op.name}(", _params(op, False), ");", ctor_indent)
  if op.optional_attrs:
    lines += _wrap(f"  {op.name}(", _params(op, True), ");", ctor_indent)

  # Conversions as TensorFlow's wrappers have them: only for a lone output.
  if not op.outputs:
    lines.append(
        "  operator ::tensorflow::Operation() const { return operation; }")
  elif len(op.outputs) == 1 and op.outputs[0].is_list:
    member = op.outputs[0].member
    lines += [
        "  ::tensorflow::Output operator[](size_t index) const {",
        f"    return {member}[index];",
        "  }",
    ]
  elif len(op.outputs) == 1:
    member = op.outputs[0].member
    lines += [
        f"  operator ::tensorflow::Output() const {{ return {member}; }}",
        f"  operator ::tensorflow::Input() const {{ return {member}; }}",
        f"  ::tensorflow::Node* node() const {{ return {member}.node(); }}",
    ]
  lines.append("")

  for attr in op.optional_attrs:
    lines += [
        f"  static Attrs {attr.setter}({attr.cpp} x) {{",
        f"    return Attrs().{attr.setter}(x);",
        "  }",
    ]
  if op.optional_attrs:
    lines.append("")
  lines.append("  ::tensorflow::Operation operation;")
  for out in op.outputs:
    kind = "OutputList" if out.is_list else "Output"
    lines.append(f"  ::tensorflow::{kind} {out.member};")
  lines.append("};")
  return "\n".join(lines)


def _output_assignments(op: _Op) -> list[str]:
  if not any(o.is_list for o in op.outputs):
    return [f"  this->{o.member} = Output(ret, {i});"
            for i, o in enumerate(op.outputs)]
  if len(op.outputs) == 1:
    return [
        "  for (int32_t i = 0; i < ret->num_outputs(); ++i)",
        f"    this->{op.outputs[0].member}.push_back(Output(ret, i));",
    ]
  # Next to a list output, where each output starts depends on the attrs the
  # node was built with, so ask the node.
  lines = [
      "  ::tensorflow::NameRangeMap _outputs_range;",
      "  ::absl::Status _status_ = ::tensorflow::NameRangesForNode(",
      "      *ret, ret->op_def(), nullptr, &_outputs_range);",
      "  if (!_status_.ok()) {",
      "    scope.UpdateStatus(_status_);",
      "    return;",
      "  }",
  ]
  for out in op.outputs:
    where = f'_outputs_range["{out.name}"]'
    if out.is_list:
      lines += [
          f"  for (int32_t i = {where}.first;",
          f"       i < {where}.second; ++i)",
          f"    this->{out.member}.push_back(Output(ret, i));",
      ]
    else:
      lines += _statement(f"  this->{out.member} =",
                          f"Output(ret, {where}.first);")
  return lines


def _class_definition(op: _Op) -> str:
  has_attrs = bool(op.optional_attrs)
  head = f"{op.name}::{op.name}("
  lines = _wrap(head, _params(op, has_attrs), ") {", " " * len(head))
  lines.append("  if (!scope.ok()) return;")
  for arg in op.inputs:
    convert = "AsNodeOutList" if arg.is_list_input else "AsNodeOut"
    lines += _statement(f"  auto _{arg.name} =",
                        f"::tensorflow::ops::{convert}(scope, {arg.name});")
    lines.append("  if (!scope.ok()) return;")
  lines += [
      "  ::tensorflow::Node* ret;",
      f'  const auto unique_name = scope.GetUniqueNameForOp("{op.name}");',
      "  auto builder =",
      f'      ::tensorflow::NodeBuilder(unique_name, "{op.name}")',
  ]
  lines += [f"          .Input(_{arg.name})" for arg in op.inputs]
  lines += [f'          .Attr("{p.op_name}", {p.name})'
            for p in op.required_attrs]
  lines += [f'          .Attr("{a.name}", attrs.{a.name}_)'
            for a in op.optional_attrs]
  lines[-1] += ";"
  lines += [
      "  scope.UpdateBuilder(&builder);",
      "  scope.UpdateStatus(builder.Finalize(scope.graph(), &ret));",
      "  if (!scope.ok()) return;",
      "  scope.UpdateStatus(scope.DoShapeInference(ret));",
      "  this->operation = Operation(ret);",
  ]
  lines += _output_assignments(op)
  lines.append("}")
  if has_attrs:
    forwarded = (["scope"] + [p.name for p in op.params] +
                 [f"{op.name}::Attrs()"])
    lines.append("")
    lines += _wrap(head, _params(op, False), ")", " " * len(head))
    lines += _wrap(f"    : {op.name}(", forwarded, ") {}", " " * 8)
  return "\n".join(lines)


def _include_guard(header_include: str) -> str:
  return re.sub(r"[^A-Za-z0-9]", "_", header_include).upper() + "_"


def generate(op_list: op_def_pb2.OpList,
             header_include: str) -> tuple[str, str]:
  """Returns the (header, source) text wrapping every op in `op_list`."""
  if not op_list.op:
    raise OpWrapperError("no ops to wrap")
  ops = [_Op(op_def) for op_def in op_list.op]
  guard = _include_guard(header_include)
  header = [
      _BANNER,
      "",
      f"#ifndef {guard}",
      f"#define {guard}",
      "",
      "#include <cstdint>",
      "#include <limits>",
      "#include <string>",
      "",
      '#include "absl/strings/string_view.h"',
      '#include "absl/types/span.h"',
      '#include "tensorflow/cc/framework/ops.h"',
      '#include "tensorflow/cc/framework/scope.h"',
      '#include "tensorflow/core/framework/tensor.h"',
      '#include "tensorflow/core/framework/tensor.pb.h"',
      '#include "tensorflow/core/framework/tensor_shape.h"',
      '#include "tensorflow/core/framework/types.h"',
      "",
      "namespace tensorflow {",
      "namespace ops {",
      "",
      "\n\n".join(_class_declaration(op) for op in ops),
      "",
      "}  // namespace ops",
      "}  // namespace tensorflow",
      "",
      f"#endif  // {guard}",
      "",
  ]
  source = [
      _BANNER,
      "",
      f'#include "{header_include}"',
      "",
      '#include "tensorflow/cc/ops/const_op.h"',
      '#include "tensorflow/core/framework/node_def_util.h"',
      '#include "tensorflow/core/graph/graph.h"',
      '#include "tensorflow/core/graph/graph_node_util.h"',
      '#include "tensorflow/core/graph/node_builder.h"',
      "",
      "namespace tensorflow {",
      "namespace ops {",
      "",
      "\n\n".join(_class_definition(op) for op in ops),
      "",
      "}  // namespace ops",
      "}  // namespace tensorflow",
      "",
  ]
  return "\n".join(header), "\n".join(source)


# --- Command line ------------------------------------------------------------


def select_ops(op_list: op_def_pb2.OpList, op_names: Sequence[str],
               library: str) -> op_def_pb2.OpList:
  """The ops of `op_list` named in `op_names`, or all of them if it is empty."""
  registered = [op.name for op in op_list.op]
  if not registered:
    raise OpWrapperError(
        f"{library} registers no new ops; check that it links the REGISTER_OP "
        "calls (alwayslink) and that nothing loaded them before")
  missing = [name for name in op_names if name not in registered]
  if missing:
    raise OpWrapperError(
        f"--op_names asks for {', '.join(missing)}, which {library} does not "
        f"register (it registers: {', '.join(registered)})")
  selected = op_def_pb2.OpList()
  selected.op.extend(
      op for op in op_list.op if not op_names or op.name in op_names)
  return selected


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  for flag in (_OP_LIBRARY, _HEADER_OUT, _SOURCE_OUT, _HEADER_INCLUDE):
    if not flag.value:
      raise app.UsageError(f"--{flag.name} is required")
  try:
    ops = select_ops(op_library.load_op_list(_OP_LIBRARY.value), _OP_NAMES.value,
                     _OP_LIBRARY.value)
    header, source = generate(ops, _HEADER_INCLUDE.value)
  except (OpWrapperError, op_library.OpLibraryError) as e:
    sys.exit(f"cc_op_gen: {e}")
  for path, text in ((_HEADER_OUT.value, header),
                     (_SOURCE_OUT.value, source)):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as out:
      out.write(text)


if __name__ == "__main__":
  app.run(main)
