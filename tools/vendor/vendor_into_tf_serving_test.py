"""End-to-end tests of vendor_into_tf_serving.py on a fixture fork.

Each test builds a TF Serving-shaped fork and a small source workspace in a
temporary directory and runs the tool as a user would, in a child process.
"""

import difflib
import os
import shutil
import subprocess
import sys

from absl.testing import absltest

import fixture_fork as fx

_OP_KERNEL = ('        "//tensorflow_serving/experimental/tensorflow/ops/remote_predict:'
              'remote_predict_op_kernel",')
_OPS_CC = ('        "//tensorflow_serving/experimental/tensorflow/ops/remote_predict:'
           'remote_predict_ops_cc",')
_EDITED = ("WORKSPACE", fx.MODEL_SERVERS, ".bazelrc")
_LINK_GRPC = "build --define=remote_predict_op_link_grpc=true"


def _changed_lines(before: str, after: str):
  """(removed, added) lines between two texts."""
  removed, added = [], []
  for line in difflib.ndiff(before.splitlines(), after.splitlines()):
    if line.startswith("- "):
      removed.append(line[2:])
    elif line.startswith("+ "):
      added.append(line[2:])
  return removed, added


class VendorIntoTfServingTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.fork = self.create_tempdir("fork").full_path
    self.source = self.create_tempdir("source").full_path
    fx.write_tree(self.fork, fx.fork_files())
    fx.write_tree(self.source, fx.source_files())

  def run_tool(self, *args, fork=None):
    return subprocess.run(
        [sys.executable, fx.TOOL, f"--source_dir={self.source}", *args, fork or self.fork],
        capture_output=True, text=True, timeout=120, check=False)

  def read(self, rel):
    with open(os.path.join(self.fork, rel), encoding="utf-8") as f:
      return f.read()

  def test_first_run_makes_exactly_the_edits(self):
    before = fx.snapshot(self.fork)
    result = self.run_tool()
    self.assertEqual(result.returncode, 0, result.stderr)
    after = fx.snapshot(self.fork)

    removed, added = _changed_lines(before[fx.MODEL_SERVERS].decode(), self.read(fx.MODEL_SERVERS))
    self.assertEqual(removed, [])
    self.assertEqual(added, [_OP_KERNEL, _OPS_CC])
    server_lib = self.read(fx.MODEL_SERVERS).split('name = "server_lib"')[1]
    self.assertLess(server_lib.index("core:availability_preserving_policy"),
                    server_lib.index(_OP_KERNEL.strip()))
    self.assertLess(server_lib.index(_OPS_CC.strip()),
                    server_lib.index("servables/tensorflow:classification_service"))

    removed, added = _changed_lines(before["WORKSPACE"].decode(), self.read("WORKSPACE"))
    self.assertEqual(added, [])
    self.assertEqual(sorted(removed), sorted(fx.patch_removed("WORKSPACE")))
    self.assertIn('    name = "ignore_remote_predict",', removed)
    self.assertNotIn("ignore_remote_predict", self.read("WORKSPACE"))
    self.assertNotIn("\n\n\n", self.read("WORKSPACE"))

    removed, added = _changed_lines(before[".bazelrc"].decode(), self.read(".bazelrc"))
    self.assertEqual(removed, [])
    self.assertEqual(added[-1], _LINK_GRPC)
    self.assertTrue(all(line.startswith("#") for line in added[:-1]), added)

    vendored = sorted(p for p in after if p.startswith(fx.OP_DIR) or p.startswith(fx.EXAMPLE_DIR))
    self.assertEqual(vendored, fx.EXPECTED_COPIED)
    for rel in fx.EXPECTED_COPIED:
      self.assertEqual(after[rel], fx.source_files()[rel].encode(), rel)
    untouched = {p: b for p, b in before.items()
                 if p not in _EDITED and not p.startswith((fx.OP_DIR, fx.EXAMPLE_DIR))}
    self.assertEqual({p: after.get(p) for p in untouched}, untouched)

    self.assertIn(f"+{_OP_KERNEL}", result.stdout)
    self.assertIn('-    name = "ignore_remote_predict",', result.stdout)
    self.assertIn("deleted file mode 100644", result.stdout)
    self.assertIn(f"D {fx.OP_DIR}/WORKSPACE", result.stdout)
    self.assertIn("bazel build //tensorflow_serving/model_servers:tensorflow_model_server",
                  result.stdout)
    self.assertIn(f"not copied (not a source, BUILD or README file): {fx.OP_DIR}/notes.txt",
                  result.stderr)

  def test_second_run_changes_nothing(self):
    first = self.run_tool()
    self.assertEqual(first.returncode, 0, first.stderr)
    after_first = fx.snapshot(self.fork)
    second = self.run_tool()
    self.assertEqual(second.returncode, 0, second.stderr)
    self.assertIn("Nothing to change", second.stdout)
    self.assertNotIn("diff --git", second.stdout)
    self.assertEqual(fx.snapshot(self.fork), after_first)

  def test_dry_run_prints_the_diff_and_writes_nothing(self):
    before = fx.snapshot(self.fork)
    result = self.run_tool("--dry_run")
    self.assertEqual(result.returncode, 0, result.stderr)
    self.assertEqual(fx.snapshot(self.fork), before)
    self.assertIn(f"+{_OP_KERNEL}", result.stdout)
    self.assertIn(f"+++ b/{fx.OP_DIR}/kernels/remote_predict_op_kernel.cc", result.stdout)
    self.assertIn("Dry run: nothing was written.", result.stdout)

  def test_fork_without_a_bazelrc_gets_one_with_the_setting(self):
    os.remove(os.path.join(self.fork, ".bazelrc"))
    result = self.run_tool()
    self.assertEqual(result.returncode, 0, result.stderr)
    self.assertEqual(self.read(".bazelrc").splitlines()[-1], _LINK_GRPC)
    self.assertIn("A .bazelrc", result.stdout)

  def test_fork_without_server_lib_is_an_error(self):
    shutil.rmtree(self.fork)
    fx.write_tree(self.fork, fx.fork_files(with_server_lib=False))
    before = fx.snapshot(self.fork)
    result = self.run_tool()
    self.assertEqual(result.returncode, 1)
    self.assertIn(f"{fx.MODEL_SERVERS} has no rule named 'server_lib'", result.stderr)
    self.assertEqual(fx.snapshot(self.fork), before)

  def test_directory_that_is_not_tf_serving_is_an_error(self):
    not_a_fork = self.create_tempdir("elsewhere").full_path
    result = self.run_tool(fork=not_a_fork)
    self.assertEqual(result.returncode, 1)
    self.assertIn("does not look like a TensorFlow Serving checkout", result.stderr)
    self.assertIn(f"no WORKSPACE and no {fx.MODEL_SERVERS}", result.stderr)
    self.assertEqual(os.listdir(not_a_fork), [])

  def test_label_unknown_to_tf_serving_blocks_vendoring(self):
    build = os.path.join(self.source, fx.EXAMPLE_DIR, "BUILD")
    with open(build, "a", encoding="utf-8") as f:
      f.write('\npy_library(name = "extra", deps = ["//tools/python:helpers"])\n')
    before = fx.snapshot(self.fork)
    result = self.run_tool()
    self.assertEqual(result.returncode, 1)
    self.assertIn(f"{fx.EXAMPLE_DIR}/BUILD:", result.stderr)
    self.assertIn("'//tools/python:helpers'", result.stderr)
    self.assertEqual(fx.snapshot(self.fork), before)

  def test_kernel_not_visible_to_the_model_server_is_an_error(self):
    build = os.path.join(self.source, fx.OP_DIR, "BUILD")
    with open(build, encoding="utf-8") as f:
      text = f.read()
    with open(build, "w", encoding="utf-8") as f:
      f.write(text.replace('        "//tensorflow_serving/model_servers:__subpackages__",\n', ""))
    result = self.run_tool()
    self.assertEqual(result.returncode, 1)
    self.assertIn("'remote_predict_op_kernel' is not visible to //tensorflow_serving/model_servers",
                  result.stderr)

  def test_patch_makes_the_same_edits(self):
    patched = self.create_tempdir("patched").full_path
    fx.write_tree(patched, fx.fork_files())
    git = shutil.which("git")
    if git is None:
      self.skipTest("git is not installed; the patch is meant for `git apply`")
    applied = subprocess.run([git, "apply", "--verbose", fx.PATCH], cwd=patched,
                             capture_output=True, text=True, check=False)
    self.assertEqual(applied.returncode, 0, applied.stderr)
    result = self.run_tool()
    self.assertEqual(result.returncode, 0, result.stderr)
    for rel in _EDITED:
      with open(os.path.join(patched, rel), encoding="utf-8") as f:
        self.assertEqual(f.read(), self.read(rel), rel)
    self.assertFalse(os.path.exists(os.path.join(patched, fx.OP_DIR, "WORKSPACE")))


if __name__ == "__main__":
  absltest.main()
