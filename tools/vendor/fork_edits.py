"""The three text edits a TF Serving fork needs to link the Remote Predict Op.

1. `server_lib` in tensorflow_serving/model_servers/BUILD gains the op and its
   kernel as deps, so tensorflow_model_server registers them.
2. The top-level WORKSPACE loses `local_repository(name = "ignore_remote_predict")`,
   which turns the op's directory into a separate repository and so hides its
   labels from the main one.
3. The top-level .bazelrc turns on the op's `link_grpc` setting, so the kernel
   calls the gRPC linked into tensorflow_model_server instead of loading a
   system libgrpc at run time.

Both are pure functions of the file text. They change only the lines they must
(no reformatting), and return the text unchanged when the edit is already there.
"""

import re
from typing import List, Tuple

import build_file_scan as scan

REMOTE_PREDICT_PACKAGE = "//tensorflow_serving/experimental/tensorflow/ops/remote_predict"
SERVER_LIB_DEPS = (
    REMOTE_PREDICT_PACKAGE + ":remote_predict_op_kernel",
    REMOTE_PREDICT_PACKAGE + ":remote_predict_ops_cc",
)
SERVER_LIB_RULE = "server_lib"
IGNORED_REPOSITORY = "ignore_remote_predict"
BAZELRC = ".bazelrc"
LINK_GRPC_SETTING = "build --define=remote_predict_op_link_grpc=true"
_LINK_GRPC_COMMENT = (
    "# The Remote Predict Op calls the gRPC linked into the binary (see\n"
    "# //tensorflow_serving/experimental/tensorflow/ops/remote_predict:link_grpc).\n")


class EditError(ValueError):
  """The file does not have the shape the edit needs; the message says why."""


def _sort_key(value: str) -> Tuple[int, List[str], str]:
  # Buildifier's order for string lists, so a formatted list stays formatted:
  # plain strings, then ":x", then "//x", then "@x"; then by the parts between
  # '.' and ':'.
  phase = 3 if value.startswith("@") else 2 if value.startswith("//") else (
      1 if value.startswith(":") else 0)
  return phase, re.split(r"[.:]", value), value


def _line_start(text: str, offset: int) -> int:
  return text.rfind("\n", 0, offset) + 1


def _only_space_before(text: str, offset: int) -> bool:
  return text[_line_start(text, offset):offset].strip() == ""


def add_server_lib_deps(text: str, path: str = "tensorflow_serving/model_servers/BUILD") -> str:
  """Adds SERVER_LIB_DEPS to the deps list of the `server_lib` rule."""
  try:
    tokens = scan.tokenize(text)
    calls = scan.top_level_calls(tokens)
  except scan.ScanError as e:
    raise EditError(f"{path}: cannot read it: {e}") from e
  rule = scan.find_named_call(calls, tokens, SERVER_LIB_RULE)
  if rule is None:
    raise EditError(
        f"{path} has no rule named '{SERVER_LIB_RULE}'. TF Serving's model server links its ops "
        f"through that cc_library; if your fork renamed it, add {' and '.join(SERVER_LIB_DEPS)} "
        "to the deps of the library tensorflow_model_server links instead.")
  span = rule.kwargs.get("deps")
  if span is None:
    raise EditError(f"{path}:{rule.line}: '{SERVER_LIB_RULE}' has no deps attribute to extend")
  open_index = span[0]
  if not (tokens[open_index].kind == scan.OP and tokens[open_index].text == "["):
    raise EditError(
        f"{path}:{tokens[open_index].line}: the deps of '{SERVER_LIB_RULE}' do not start with a "
        "list literal ([...]), so there is no obvious place for the new labels; add "
        f"{' and '.join(SERVER_LIB_DEPS)} by hand")
  close_index = scan.matching_close(tokens, open_index)
  entries = [tokens[k] for k in range(open_index + 1, close_index)
             if tokens[k].kind == scan.STRING and _depth_one(tokens, open_index, k)]
  present = {e.text for e in entries}
  for label in SERVER_LIB_DEPS:
    if label not in present:
      text = _insert_entry(text, label, path)
      # Offsets moved: scan again for the next label.
      return add_server_lib_deps(text, path)
  return text


def _depth_one(tokens: List[scan.Token], open_index: int, k: int) -> bool:
  depth = 0
  for tok in tokens[open_index + 1:k]:
    if tok.kind == scan.OP and tok.text in "([{":
      depth += 1
    elif tok.kind == scan.OP and tok.text in ")]}":
      depth -= 1
  return depth == 0


def _insert_entry(text: str, label: str, path: str) -> str:
  tokens = scan.tokenize(text)
  rule = scan.find_named_call(scan.top_level_calls(tokens), tokens, SERVER_LIB_RULE)
  open_index = rule.kwargs["deps"][0]
  close_index = scan.matching_close(tokens, open_index)
  inner = [k for k in range(open_index + 1, close_index) if tokens[k].kind != scan.COMMENT]
  entries = [k for k in inner if tokens[k].kind == scan.STRING and
             _depth_one(tokens, open_index, k)]
  keys = [_sort_key(tokens[k].text) for k in entries]
  is_sorted = keys == sorted(keys)
  before = next((k for k in entries if is_sorted and _sort_key(tokens[k].text) > _sort_key(label)),
                None)
  multi_line = "\n" in text[tokens[open_index].end:tokens[close_index].start]
  quoted = f'"{label}"'
  if multi_line:
    anchor = before if before is not None else close_index
    if not _only_space_before(text, tokens[anchor].start):
      raise EditError(f"{path}:{tokens[anchor].line}: the deps of '{SERVER_LIB_RULE}' are not one "
                      f"label per line; add {label} by hand")
    indent = _entry_indent(text, tokens, entries, open_index)
    insert_at = _start_of_leading_comments(text, tokens[anchor].start)
    addition = f"{indent}{quoted},\n"
    if before is None and inner and not (tokens[inner[-1]].kind == scan.OP and
                                         tokens[inner[-1]].text == ","):
      # The old last entry has no trailing comma; give it one.
      last = tokens[inner[-1]].end
      return text[:last] + "," + text[last:insert_at] + addition + text[insert_at:]
    return text[:insert_at] + addition + text[insert_at:]
  if before is not None:
    at = tokens[before].start
    return text[:at] + quoted + ", " + text[at:]
  at = tokens[close_index].start
  if not inner:
    return text[:at] + quoted + text[at:]
  if tokens[inner[-1]].kind == scan.OP and tokens[inner[-1]].text == ",":
    return text[:at] + " " + quoted + text[at:]
  return text[:at] + ", " + quoted + text[at:]


def _entry_indent(text: str, tokens: List[scan.Token], entries: List[int], open_index: int) -> str:
  for k in entries:
    if _only_space_before(text, tokens[k].start):
      return text[_line_start(text, tokens[k].start):tokens[k].start]
  # An empty multi-line list: indent one step (4 spaces) past the line of '['.
  start = _line_start(text, tokens[open_index].start)
  base = re.match(r"[ \t]*", text[start:]).group(0)
  return base + "    "


def _start_of_leading_comments(text: str, offset: int) -> int:
  """Start of `offset`'s line, moved up over comment-only lines right above it."""
  start = _line_start(text, offset)
  while start > 0:
    previous = _line_start(text, start - 1)
    if not text[previous:start].strip().startswith("#"):
      break
    start = previous
  return start


def remove_ignored_repository(text: str, path: str = "WORKSPACE") -> str:
  """Deletes the `ignore_remote_predict` repository and the comment above it."""
  try:
    tokens = scan.tokenize(text)
    calls = scan.top_level_calls(tokens)
  except scan.ScanError as e:
    raise EditError(f"{path}: cannot read it: {e}") from e
  call = scan.find_named_call(calls, tokens, IGNORED_REPOSITORY)
  if call is None:
    return text
  start = _line_start(text, call.start)
  if text[start:call.start].strip():
    raise EditError(f"{path}:{call.line}: the '{IGNORED_REPOSITORY}' repository does not start "
                    "its own line; remove it by hand")
  comments_start = _start_of_leading_comments(text, call.start)
  # The comment block right above explains this repository; it goes with it,
  # but only if it says so (it names remote_predict).
  if "remote_predict" in text[comments_start:start]:
    start = comments_start
  end = text.find("\n", call.end)
  end = len(text) if end < 0 else end + 1
  if text[end:end + 1] == "\n" and (start == 0 or text[start - 2:start] == "\n\n"):
    end += 1  # Do not leave two blank lines where the stanza was.
  return text[:start] + text[end:]


def enable_linked_grpc(text: str, path: str = BAZELRC) -> str:
  """Appends LINK_GRPC_SETTING (with a comment saying why) unless it is there."""
  del path  # Any text is a valid .bazelrc to append to.
  if any(line.strip() == LINK_GRPC_SETTING for line in text.splitlines()):
    return text
  if text and not text.endswith("\n"):
    text += "\n"
  if text and not text.endswith("\n\n"):
    text += "\n"  # A blank line sets the addition apart.
  return text + _LINK_GRPC_COMMENT + LINK_GRPC_SETTING + "\n"
