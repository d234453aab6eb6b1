"""A small lexical reader for BUILD and WORKSPACE files.

The vendoring tool edits TF Serving's BUILD and WORKSPACE files in place and
checks the labels of the BUILD files it copies. Both need to know where string
literals, comments and top-level calls are, with exact character offsets so
that edits touch nothing else. A full Starlark parser is not needed: these
files are lists of calls whose arguments are literals and simple expressions.
"""

import dataclasses
import re
from typing import Dict, List, Optional, Tuple

STRING = "STRING"
NAME = "NAME"
OP = "OP"
COMMENT = "COMMENT"
NUMBER = "NUMBER"

_OPENERS = {"(": ")", "[": "]", "{": "}"}
_CLOSERS = {")", "]", "}"}

_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER_RE = re.compile(r"[0-9][0-9a-fA-FxXoO_.]*")
_STRING_START_RE = re.compile(r"([rRbB]{0,2})('''|\"\"\"|'|\")")


class ScanError(ValueError):
  """The text is not lexically valid Starlark (e.g. an unterminated string)."""


@dataclasses.dataclass(frozen=True)
class Token:
  kind: str
  text: str  # Source text; for STRING the decoded value.
  start: int  # Offset of the first character.
  end: int  # Offset just past the last character.
  line: int  # 1-based line of `start`.


@dataclasses.dataclass
class Call:
  """A top-level call such as `cc_library(name = "x", deps = [...])`."""
  function: str
  start: int  # Offset of the function name.
  end: int  # Offset just past the closing parenthesis.
  line: int
  # Keyword argument name -> (first, last) token indices of its value.
  kwargs: Dict[str, Tuple[int, int]]
  # Positional arguments as (first, last) token indices.
  positional: List[Tuple[int, int]]

  def string_kwarg(self, tokens: List[Token], key: str) -> Optional[str]:
    """The value of `key` if it is a single string literal."""
    span = self.kwargs.get(key)
    if span is None or span[0] != span[1] or tokens[span[0]].kind != STRING:
      return None
    return tokens[span[0]].text


def _decode_string(body: str, raw: bool) -> str:
  if raw:
    return body
  # Labels and names never need more than the simple escapes.
  return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body,
                flags=re.S)


def tokenize(text: str) -> List[Token]:
  """Splits `text` into tokens; whitespace and line breaks are dropped."""
  tokens = []
  i = 0
  line = 1
  n = len(text)
  while i < n:
    c = text[i]
    if c == "\n":
      line += 1
      i += 1
    elif c in " \t\r\\":
      i += 1
    elif c == "#":
      end = text.find("\n", i)
      end = n if end < 0 else end
      tokens.append(Token(COMMENT, text[i:end], i, end, line))
      i = end
    elif _string_at(text, i):
      m = _string_at(text, i)
      prefix, quote = m.group(1), m.group(2)
      j = m.end()
      while True:
        if j >= n:
          raise ScanError(f"unterminated string starting on line {line}")
        if text[j] == "\\":
          j += 2
          continue
        if text.startswith(quote, j):
          break
        if len(quote) == 1 and text[j] == "\n":
          raise ScanError(f"unterminated string on line {line}")
        j += 1
      body = text[m.end():j]
      end = j + len(quote)
      tokens.append(Token(STRING, _decode_string(body, "r" in prefix.lower()), i, end, line))
      line += text.count("\n", i, end)
      i = end
    elif _NAME_RE.match(text, i):
      m = _NAME_RE.match(text, i)
      tokens.append(Token(NAME, m.group(0), i, m.end(), line))
      i = m.end()
    elif c.isdigit():
      m = _NUMBER_RE.match(text, i)
      tokens.append(Token(NUMBER, m.group(0), i, m.end(), line))
      i = m.end()
    else:
      two = text[i:i + 2]
      width = 2 if two in ("==", "!=", "<=", ">=", "+=", "-=", "**", "//") else 1
      tokens.append(Token(OP, text[i:i + width], i, i + width, line))
      i += width
  return tokens


def _string_at(text: str, i: int) -> Optional[re.Match]:
  """The opening of a string literal (with any r/b prefix) at `i`, if any."""
  if i > 0 and (text[i - 1].isalnum() or text[i - 1] == "_"):
    return None  # Inside a name such as `attr"`, which is not a prefix.
  return _STRING_START_RE.match(text, i)


def matching_close(tokens: List[Token], open_index: int) -> int:
  """Index of the bracket closing the one at `open_index`."""
  stack = []
  for k in range(open_index, len(tokens)):
    tok = tokens[k]
    if tok.kind != OP:
      continue
    if tok.text in _OPENERS:
      stack.append(_OPENERS[tok.text])
    elif tok.text in _CLOSERS:
      if not stack or stack.pop() != tok.text:
        raise ScanError(f"unbalanced '{tok.text}' on line {tok.line}")
      if not stack:
        return k
  raise ScanError(f"'{tokens[open_index].text}' on line {tokens[open_index].line} is never closed")


def top_level_calls(tokens: List[Token]) -> List[Call]:
  """Every call made at the top level of the file, in order."""
  calls = []
  k = 0
  depth = 0
  while k < len(tokens):
    tok = tokens[k]
    if tok.kind == OP and tok.text in _OPENERS:
      depth += 1
    elif tok.kind == OP and tok.text in _CLOSERS:
      depth -= 1
    elif (depth == 0 and tok.kind == NAME and k + 1 < len(tokens) and
          tokens[k + 1].kind == OP and tokens[k + 1].text == "(" and
          not (k > 0 and tokens[k - 1].kind == OP and tokens[k - 1].text == ".")):
      close = matching_close(tokens, k + 1)
      calls.append(_read_call(tokens, k, close))
      k = close + 1
      continue
    k += 1
  return calls


def _read_call(tokens: List[Token], name_index: int, close: int) -> Call:
  kwargs = {}
  positional = []
  k = name_index + 2
  while k < close:
    # One argument runs to the next comma at this call's own depth.
    first = k
    depth = 0
    while k < close:
      tok = tokens[k]
      if tok.kind == OP and tok.text in _OPENERS:
        depth += 1
      elif tok.kind == OP and tok.text in _CLOSERS:
        depth -= 1
      elif depth == 0 and tok.kind == OP and tok.text == ",":
        break
      k += 1
    arg = [i for i in range(first, k) if tokens[i].kind != COMMENT]
    if arg:
      if (len(arg) >= 3 and tokens[arg[0]].kind == NAME and tokens[arg[1]].kind == OP and
          tokens[arg[1]].text == "="):
        kwargs[tokens[arg[0]].text] = (arg[2], arg[-1])
      else:
        positional.append((arg[0], arg[-1]))
    k += 1  # Past the comma.
  name = tokens[name_index]
  return Call(name.text, name.start, tokens[close].end, name.line, kwargs, positional)


def find_named_call(calls: List[Call], tokens: List[Token], name: str,
                    function: Optional[str] = None) -> Optional[Call]:
  """The top-level call with `name = "<name>"` (and the given function, if any)."""
  for call in calls:
    if call.string_kwarg(tokens, "name") == name and function in (None, call.function):
      return call
  return None
