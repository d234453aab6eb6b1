"""Tests of the label check, including the check of this workspace's real tree."""

import os

from absl.testing import absltest

import build_labels
import fixture_fork as fx


class ParseLabelTest(absltest.TestCase):

  def test_forms(self):
    self.assertEqual(str(build_labels.parse_label("@com_google_absl//absl/status", "")),
                     "@com_google_absl//absl/status:status")
    self.assertEqual(str(build_labels.parse_label("//a/b", "")), "//a/b:b")
    self.assertEqual(str(build_labels.parse_label(":x", "p/q")), "//p/q:x")
    self.assertEqual(str(build_labels.parse_label("@curl", "")), "@curl//:curl")
    self.assertIsNone(build_labels.parse_label("kernels/a.cc", ""))


class CheckTreeTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.root = self.create_tempdir().full_path
    fx.write_tree(self.root, fx.source_files())
    self.allowlist = build_labels.read_allowlist(fx.ALLOWLIST)

  def add_to_example_build(self, text):
    with open(os.path.join(self.root, fx.EXAMPLE_DIR, "BUILD"), "a", encoding="utf-8") as f:
      f.write(text)

  def problems(self, **kwargs):
    return [str(p) for p in build_labels.check_tree(self.root, self.allowlist, **kwargs)]

  def test_fixture_tree_is_clean(self):
    self.assertEqual(self.problems(), [])

  def test_external_label_outside_the_allowlist(self):
    self.add_to_example_build('py_library(name = "x", deps = ["@six_archive//:six"])\n')
    [problem] = self.problems()
    self.assertRegex(problem, r"^tensorflow_serving/experimental/example/BUILD:\d+: "
                              r"'@six_archive//:six': not in the vendored tree and not in "
                              r"tools/vendor/external_labels.txt")

  def test_select_default_key_is_built_in(self):
    self.add_to_example_build(
        'py_library(name = "x", deps = select({"//conditions:default": []}))\n')
    self.assertEqual(self.problems(), [])

  def test_workspace_only_package(self):
    self.add_to_example_build('py_library(name = "x", deps = ["//tools/python:helpers"])\n')
    [problem] = self.problems()
    self.assertIn("'//tools/python:helpers'", problem)

  def test_symbol_not_allowlisted_for_a_bzl_file(self):
    self.add_to_example_build('load("@org_tensorflow//tensorflow:tensorflow.bzl", "tf_cc_test")\n')
    [problem] = self.problems()
    self.assertIn("loads tf_cc_test", problem)

  def test_missing_package_inside_the_vendored_tree(self):
    self.add_to_example_build(
        'py_library(name = "x", deps = ["//tensorflow_serving/experimental/example/gone:y"])\n')
    [problem] = self.problems()
    self.assertIn("package //tensorflow_serving/experimental/example/gone is inside the vendored "
                  "tree but has no BUILD file", problem)

  def test_fork_without_an_allowlisted_package(self):
    fork = self.create_tempdir("fork").full_path
    fx.write_tree(fork, {p: t for p, t in fx.fork_files().items()
                         if p != "tensorflow_serving/apis/BUILD"})
    problems = self.problems(fork_root=fork)
    self.assertNotEmpty(problems)
    for problem in problems:
      self.assertIn("the fork has no package //tensorflow_serving/apis", problem)


class AllowlistTest(absltest.TestCase):

  def test_entries_are_labels_and_only_bzl_files_list_symbols(self):
    allowlist = build_labels.read_allowlist(fx.ALLOWLIST)
    self.assertNotEmpty(allowlist)
    for label, symbols in allowlist.items():
      self.assertEqual(bool(symbols), label.endswith(".bzl"), label)


class WorkspaceTreeTest(absltest.TestCase):
  """The BUILD files that will be vendored from this workspace, as they are now."""

  def test_every_label_resolves_in_tf_serving(self):
    root = fx.workspace_root()
    self.assertTrue(os.path.isfile(os.path.join(root, "WORKSPACE")),
                    f"{root} is not the workspace's source root")
    found = build_labels.find_build_files(root)
    self.assertNotEmpty(found, f"no BUILD file under {build_labels.VENDORED_DIRS} of {root}")
    problems = build_labels.check_tree(root, build_labels.read_allowlist(fx.ALLOWLIST))
    self.assertEqual([str(p) for p in problems], [])


if __name__ == "__main__":
  absltest.main()
