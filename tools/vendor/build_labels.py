"""Checks that the vendored BUILD files only use labels a TF Serving fork has.

The experimental tree builds here against stand-ins for TF Serving's external
repositories, so a label that resolves in this workspace may still be missing
from a real fork (or from TensorFlow, abseil, gRPC or protobuf as TF Serving
pins them). Every label in a vendored BUILD file must therefore either point
into the vendored tree itself or be listed in `external_labels.txt`, a short,
hand-checked list of labels that exist in TF Serving and its repositories.
"""

import dataclasses
import os
import re
from typing import Dict, Iterable, List, Optional, Set

import build_file_scan as scan

# The directories copied into a fork, relative to the workspace root.
VENDORED_DIRS = (
    "tensorflow_serving/experimental/tensorflow/ops/remote_predict",
    "tensorflow_serving/experimental/example",
)
BUILD_FILE_NAMES = ("BUILD", "BUILD.bazel")

_LABEL_RE = re.compile(
    r"^(?:@(?P<repo>[A-Za-z0-9_.~+-]*))?(?://(?P<pkg>[^:]*))?(?::(?P<name>.+))?$")


@dataclasses.dataclass(frozen=True)
class Label:
  repo: str  # "" for the main repository.
  package: str
  name: str

  def __str__(self) -> str:
    prefix = f"@{self.repo}" if self.repo else ""
    return f"{prefix}//{self.package}:{self.name}"


@dataclasses.dataclass(frozen=True)
class Problem:
  path: str  # The BUILD file, relative to the tree it was read from.
  line: int
  message: str

  def __str__(self) -> str:
    return f"{self.path}:{self.line}: {self.message}"


def parse_label(text: str, current_package: str) -> Optional[Label]:
  """The canonical form of a label string, or None if it is not a label."""
  if not text or text[0] not in ":/@":
    return None
  if text.startswith(":"):
    return Label("", current_package, text[1:]) if len(text) > 1 else None
  m = _LABEL_RE.match(text)
  if m is None or (m.group("pkg") is None and m.group("repo") is None):
    return None
  repo = m.group("repo") or ""
  if text.startswith("@") and "//" not in text:
    return Label(repo, "", repo)  # "@repo" is "@repo//:repo".
  package = m.group("pkg") or ""
  name = m.group("name")
  if name is None:
    name = package.rsplit("/", 1)[-1] if package else repo
  return Label(repo, package.rstrip("/"), name)


def read_allowlist(path: str) -> Dict[str, Set[str]]:
  """Allow-listed label -> the symbols that may be loaded from it (for .bzl files)."""
  allowed: Dict[str, Set[str]] = {}
  with open(path, encoding="utf-8") as f:
    for number, line in enumerate(f, 1):
      words = line.split("#", 1)[0].split()
      if not words:
        continue
      label = parse_label(words[0], "")
      if label is None:
        raise ValueError(f"{path}:{number}: '{words[0]}' is not a label")
      allowed[str(label)] = set(words[1:])
  return allowed


def find_build_files(root: str, dirs: Iterable[str] = VENDORED_DIRS) -> List[str]:
  """BUILD files under `dirs` of `root`, as paths relative to `root`, sorted."""
  found = []
  for top in dirs:
    for dirpath, dirnames, filenames in os.walk(os.path.join(root, top)):
      dirnames[:] = sorted(d for d in dirnames
                           if not d.startswith((".", "bazel-")) and d != "__pycache__")
      for filename in filenames:
        if filename in BUILD_FILE_NAMES:
          found.append(os.path.relpath(os.path.join(dirpath, filename), root))
  return sorted(found)


def _in_vendored_tree(package: str, dirs: Iterable[str]) -> bool:
  return any(package == d or package.startswith(d + "/") for d in dirs)


def _package_exists(root: str, package: str) -> bool:
  return any(os.path.isfile(os.path.join(root, package, b)) for b in BUILD_FILE_NAMES)


def check_tree(source_root: str, allowlist: Dict[str, Set[str]],
               fork_root: Optional[str] = None,
               dirs: Iterable[str] = VENDORED_DIRS) -> List[Problem]:
  """Checks every label of the BUILD files under `dirs` of `source_root`.

  Labels into the vendored tree must name a package that the tree has. Any
  other label must be allow-listed; when `fork_root` is given, allow-listed
  `//tensorflow_serving/...` labels must also name a package the fork has.
  """
  dirs = tuple(dirs)
  build_files = find_build_files(source_root, dirs)
  if not build_files:
    return [Problem(d, 0, "no BUILD file here: is this the workspace root?") for d in dirs]
  problems = []
  for rel in build_files:
    with open(os.path.join(source_root, rel), encoding="utf-8") as f:
      text = f.read()
    problems.extend(check_build_file(rel, text, source_root, allowlist, fork_root, dirs))
  return problems


def check_build_file(rel: str, text: str, source_root: str,
                     allowlist: Dict[str, Set[str]], fork_root: Optional[str],
                     dirs: Iterable[str]) -> List[Problem]:
  package = os.path.dirname(rel).replace(os.sep, "/")
  try:
    tokens = scan.tokenize(text)
    calls = scan.top_level_calls(tokens)
  except scan.ScanError as e:
    return [Problem(rel, 0, f"cannot read this BUILD file: {e}")]
  problems = []
  load_spans = {}
  for call in calls:
    if call.function == "load" and call.positional:
      first, _ = call.positional[0]
      symbols = [tokens[i].text for span in call.positional[1:] for i in range(span[0], span[1] + 1)
                 if tokens[i].kind == scan.STRING]
      symbols += list(call.kwargs)  # load("x.bzl", alias = "symbol")
      load_spans[first] = symbols
  for index, tok in enumerate(tokens):
    if tok.kind != scan.STRING or not tok.text.startswith(("//", "@")):
      continue
    label = parse_label(tok.text, package)
    if label is None:
      problems.append(Problem(rel, tok.line, f"'{tok.text}' looks like a label but is not one"))
      continue
    message = _check_label(label, load_spans.get(index), source_root, allowlist, fork_root, dirs)
    if message:
      problems.append(Problem(rel, tok.line, f"'{tok.text}': {message}"))
  return problems


def _check_label(label: Label, loaded_symbols: Optional[List[str]], source_root: str,
                 allowlist: Dict[str, Set[str]], fork_root: Optional[str],
                 dirs: Iterable[str]) -> Optional[str]:
  if not label.repo and label.package == "visibility" and label.name in ("public", "private"):
    return None
  if not label.repo and label.package == "conditions" and label.name == "default":
    return None  # select()'s fallback key, built into Bazel.
  if not label.repo and _in_vendored_tree(label.package, dirs):
    if not _package_exists(source_root, label.package):
      return (f"package //{label.package} is inside the vendored tree but has no BUILD file; "
              "fix the label or add the package")
    return None
  key = str(label)
  if key not in allowlist:
    return ("not in the vendored tree and not in tools/vendor/external_labels.txt; "
            "use a label that TF Serving or its external repositories define, and add it to "
            "the allow-list once you have checked it exists there")
  if loaded_symbols is not None:
    missing = sorted(set(loaded_symbols) - allowlist[key])
    if missing:
      return (f"loads {', '.join(missing)}, which tools/vendor/external_labels.txt does not "
              f"list for this file")
  if fork_root is not None and not label.repo and not _package_exists(fork_root, label.package):
    return f"the fork has no package //{label.package} (no BUILD file at {label.package}/)"
  return None


def target_visible_from(text: str, target: str, package: str) -> Optional[bool]:
  """Whether rule `target` of this BUILD text is visible from //`package`.

  None if the file defines no rule of that name. Visibility is read from the
  rule's `visibility` or the package's `default_visibility`; anything not a
  plain list of labels is treated as not visible.
  """
  tokens = scan.tokenize(text)
  calls = scan.top_level_calls(tokens)
  rule = scan.find_named_call(calls, tokens, target)
  if rule is None:
    return None
  span = rule.kwargs.get("visibility")
  if span is None:
    pkg_call = next((c for c in calls if c.function == "package"), None)
    span = pkg_call.kwargs.get("default_visibility") if pkg_call else None
  if span is None:
    return False
  for tok in tokens[span[0]:span[1] + 1]:
    if tok.kind != scan.STRING:
      continue
    label = parse_label(tok.text, "")
    if label is None or label.repo:
      continue
    if (label.package, label.name) == ("visibility", "public"):
      return True
    if label.name == "__pkg__" and label.package == package:
      return True
    if label.name == "__subpackages__" and (package == label.package or
                                            package.startswith(label.package + "/")):
      return True
  return False
