r"""Vendors this workspace's Remote Predict Op into a TensorFlow Serving fork.

Usage: tools/vendor_into_tf_serving.sh [--dry_run] FORK_DIR

Copies tensorflow_serving/experimental/{tensorflow/ops/remote_predict,example}
over the fork's copies (the fork's directories end up holding exactly this
workspace's source files), adds the op and its kernel to `server_lib` in
tensorflow_serving/model_servers/BUILD, removes what hides the op's labels
from the fork's main repository (the `ignore_remote_predict` local_repository
in WORKSPACE and the nested WORKSPACE file), and turns on the op's linked-gRPC
setting in the fork's .bazelrc (creating it if needed). Prints a unified diff of every
change and the command that builds the server. Nothing is written until every
check has passed; a second run finds nothing to change.
"""

import dataclasses
import difflib
import os
import sys
from typing import Callable, Dict, List, Optional, Tuple

from absl import app
from absl import flags

import build_labels
import fork_edits

_DRY_RUN = flags.DEFINE_bool(
    "dry_run", False, "Print the diff of what would change and write nothing.")
_SOURCE_DIR = flags.DEFINE_string(
    "source_dir", None,
    "Root of the workspace to vendor from; defaults to the workspace holding this tool.")
_ALLOWLIST = flags.DEFINE_string(
    "allowlist", None,
    "Labels the vendored BUILD files may use outside the vendored tree; defaults to "
    "tools/vendor/external_labels.txt.")

MODEL_SERVERS_BUILD = "tensorflow_serving/model_servers/BUILD"
WORKSPACE_FILES = ("WORKSPACE", "WORKSPACE.bazel")
BUILD_COMMAND = "bazel build //tensorflow_serving/model_servers:tensorflow_model_server"
MODEL_SERVERS_PACKAGE = "tensorflow_serving/model_servers"

# What a vendored directory is made of. Anything else found there is reported
# as not copied, so nothing is left behind silently.
_SOURCE_NAMES = ("BUILD", "BUILD.bazel")
_SOURCE_SUFFIXES = (".cc", ".h", ".py", ".bzl", ".proto", ".md")
# Never copied and never deleted: generated or private to one machine.
_IGNORED_DIRS = ("__pycache__",)
# A nested workspace boundary is the very thing that hides the op's labels.
_BOUNDARY_FILES = ("WORKSPACE", "WORKSPACE.bazel", "MODULE.bazel", "REPO.bazel")


class VendorError(Exception):
  """A precondition failed; the message says what and what to do."""


@dataclasses.dataclass
class FileChange:
  path: str  # Relative to the fork root.
  old: Optional[bytes]  # None: the file is new.
  new: Optional[bytes]  # None: the file goes away.
  mode: Optional[int] = None  # Permission bits for new content.


@dataclasses.dataclass
class Plan:
  changes: List[FileChange]
  not_copied: List[str]


def _ignored(name: str) -> bool:
  return name.startswith(".") or name.startswith("bazel-") or name in _IGNORED_DIRS


def _walk_files(root: str, top: str) -> List[str]:
  """Regular files under root/top (relative to root), skipping caches and symlinks."""
  found = []
  for dirpath, dirnames, filenames in os.walk(os.path.join(root, top)):
    dirnames[:] = sorted(d for d in dirnames if not _ignored(d) and
                         not os.path.islink(os.path.join(dirpath, d)))
    for name in sorted(filenames):
      full = os.path.join(dirpath, name)
      if not _ignored(name) and not os.path.islink(full) and os.path.isfile(full):
        found.append(os.path.relpath(full, root).replace(os.sep, "/"))
  return found


def _belongs(path: str) -> bool:
  name = path.rsplit("/", 1)[-1]
  if name in _BOUNDARY_FILES:
    return False
  return name in _SOURCE_NAMES or name.startswith("README") or name.endswith(_SOURCE_SUFFIXES)


def _read(path: str) -> bytes:
  with open(path, "rb") as f:
    return f.read()


def _text(data: bytes, path: str) -> str:
  try:
    return data.decode("utf-8")
  except UnicodeDecodeError as e:
    raise VendorError(f"{path} is not UTF-8 text: {e}") from e


def check_fork_shape(fork: str) -> str:
  """The fork's WORKSPACE file name; raises if the fork does not look like TF Serving."""
  if not os.path.isdir(fork):
    raise VendorError(f"fork directory {fork} does not exist (or is not a directory)")
  workspace = next((w for w in WORKSPACE_FILES if os.path.isfile(os.path.join(fork, w))), None)
  missing = [] if workspace else ["WORKSPACE"]
  if not os.path.isfile(os.path.join(fork, MODEL_SERVERS_BUILD)):
    missing.append(MODEL_SERVERS_BUILD)
  if missing:
    raise VendorError(
        f"{fork} does not look like a TensorFlow Serving checkout: it has no "
        f"{' and no '.join(missing)}. Pass the root of your TF Serving fork (the directory that "
        "holds WORKSPACE and tensorflow_serving/).")
  return workspace


def check_source(source: str) -> None:
  for top in build_labels.VENDORED_DIRS:
    if not any(os.path.isfile(os.path.join(source, top, b)) for b in _SOURCE_NAMES):
      raise VendorError(f"source workspace {source} has no {top}/BUILD, so there is nothing to "
                        "vendor from there; pass --source_dir= the root of a complete Remote "
                        "Predict Op workspace")
  op_dir = build_labels.VENDORED_DIRS[0]
  text = _text(_read(os.path.join(source, op_dir, "BUILD")), f"{op_dir}/BUILD")
  for label in fork_edits.SERVER_LIB_DEPS:
    target = label.rsplit(":", 1)[1]
    visible = build_labels.target_visible_from(text, target, MODEL_SERVERS_PACKAGE)
    if visible is None:
      raise VendorError(f"{op_dir}/BUILD defines no target '{target}', which server_lib must "
                        "depend on to link the op into the model server")
    if not visible:
      raise VendorError(f"{op_dir}/BUILD: '{target}' is not visible to "
                        f"//{MODEL_SERVERS_PACKAGE}; add \"//{MODEL_SERVERS_PACKAGE}:__pkg__\" "
                        "(or __subpackages__) to its visibility")


def plan_vendoring(source: str, fork: str, allowlist_path: str) -> Plan:
  """Every change the fork needs, computed without writing anything."""
  source, fork = os.path.realpath(source), os.path.realpath(fork)
  if source == fork:
    raise VendorError(f"the fork directory is this workspace itself ({fork}); pass the root of "
                      "a TensorFlow Serving fork")
  workspace = check_fork_shape(fork)
  check_source(source)
  problems = build_labels.check_tree(source, build_labels.read_allowlist(allowlist_path),
                                     fork_root=fork)
  if problems:
    raise VendorError("the vendored BUILD files use labels the fork would not resolve:\n  " +
                      "\n  ".join(str(p) for p in problems))

  changes: List[FileChange] = []
  not_copied: List[str] = []
  for top in build_labels.VENDORED_DIRS:
    wanted: Dict[str, str] = {}
    for rel in _walk_files(source, top):
      if _belongs(rel):
        wanted[rel] = os.path.join(source, rel)
      else:
        not_copied.append(rel)
    for rel, src in wanted.items():
      new = _read(src)
      dst = os.path.join(fork, rel)
      old = _read(dst) if os.path.isfile(dst) else None
      if old != new:
        changes.append(FileChange(rel, old, new, os.stat(src).st_mode & 0o777))
    for rel in _walk_files(fork, top):
      if rel not in wanted:
        changes.append(FileChange(rel, _read(os.path.join(fork, rel)), None))

  # The edits come last, so they are what a terminal shows above the summary.
  changes.sort(key=lambda c: c.path)
  edits: List[Tuple[str, Callable[[str, str], str]]] = [
      (MODEL_SERVERS_BUILD, fork_edits.add_server_lib_deps),
      (workspace, fork_edits.remove_ignored_repository),
      (fork_edits.BAZELRC, fork_edits.enable_linked_grpc),
  ]
  for rel, edit in edits:
    path = os.path.join(fork, rel)
    old = _read(path) if os.path.isfile(path) else None
    try:
      new = edit(_text(old or b"", rel), rel).encode("utf-8")
    except fork_edits.EditError as e:
      raise VendorError(str(e)) from e
    if new != old:
      changes.append(FileChange(rel, old, new))
  return Plan(changes, not_copied)


def unified_diff(change: FileChange) -> str:
  a = "/dev/null" if change.old is None else "a/" + change.path
  b = "/dev/null" if change.new is None else "b/" + change.path
  try:
    old = (change.old or b"").decode("utf-8").splitlines(keepends=True)
    new = (change.new or b"").decode("utf-8").splitlines(keepends=True)
  except UnicodeDecodeError:
    return f"Binary files {a} and {b} differ\n"
  header = f"diff --git a/{change.path} b/{change.path}\n"
  if change.old is None:
    header += f"new file mode 100{change.mode or 0o644:o}\n"
  elif change.new is None:
    header += "deleted file mode 100644\n"
  body = ""
  for line in difflib.unified_diff(old, new, a, b):
    body += line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
  return header + body


def apply_plan(fork: str, plan: Plan) -> None:
  for change in plan.changes:
    path = os.path.join(fork, change.path)
    if change.new is None:
      os.remove(path)
      _remove_empty_parents(fork, os.path.dirname(path))
      continue
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
      f.write(change.new)
    if change.mode is not None:
      os.chmod(path, change.mode)


def _remove_empty_parents(fork: str, directory: str) -> None:
  # Stop at the vendored roots: an emptied tree keeps its top directory.
  roots = {os.path.join(fork, top) for top in build_labels.VENDORED_DIRS}
  while (directory not in roots and directory.startswith(fork + os.sep) and
         not os.listdir(directory)):
    os.rmdir(directory)
    directory = os.path.dirname(directory)


def summary(plan: Plan) -> str:
  counts = {"added": 0, "updated": 0, "removed": 0}
  for c in plan.changes:
    counts["added" if c.old is None else "removed" if c.new is None else "updated"] += 1
  lines = [f"{counts['added']} file(s) added, {counts['updated']} updated, "
           f"{counts['removed']} removed:"]
  for c in plan.changes:
    lines.append(f"  {'A' if c.old is None else 'D' if c.new is None else 'M'} {c.path}")
  return "\n".join(lines)


def main(argv: List[str]) -> int:
  if len(argv) != 2:
    raise app.UsageError("pass exactly one argument, the root of your TF Serving fork "
                         f"(got {len(argv) - 1})")
  fork = argv[1]
  if not os.path.isabs(fork):
    # Under `bazel run` the tool runs in its runfiles; resolve against the caller's directory.
    fork = os.path.join(os.environ.get("BUILD_WORKING_DIRECTORY", os.getcwd()), fork)
  here = os.path.dirname(os.path.abspath(__file__))
  source = _SOURCE_DIR.value or os.environ.get("BUILD_WORKSPACE_DIRECTORY") or os.path.dirname(
      os.path.dirname(here))
  allowlist = _ALLOWLIST.value or os.path.join(here, "external_labels.txt")
  try:
    plan = plan_vendoring(source, fork, allowlist)
  except VendorError as e:
    print(f"vendor_into_tf_serving: error: {e}", file=sys.stderr)
    return 1
  for rel in plan.not_copied:
    print(f"note: not copied (not a source, BUILD or README file): {rel}", file=sys.stderr)
  if not plan.changes:
    print(f"Nothing to change: {fork} already has the vendored tree and the edits.")
  else:
    sys.stdout.write("".join(unified_diff(c) for c in plan.changes))
    print(summary(plan))
    if _DRY_RUN.value:
      print("Dry run: nothing was written.")
    else:
      apply_plan(os.path.realpath(fork), plan)
      print(f"Wrote {len(plan.changes)} change(s) to {fork}.")
  print(f"Next, build the model server with the op linked in:\n  cd {fork} && {BUILD_COMMAND}")
  return 0


if __name__ == "__main__":
  app.run(main)
