"""Unit tests of the server_lib and WORKSPACE edits on hand-made BUILD texts."""

from absl.testing import absltest

import fork_edits

KERNEL, OPS_CC = fork_edits.SERVER_LIB_DEPS


def _server_lib(deps: str) -> str:
  return ('cc_library(\n    name = "server_core",\n    deps = [":a"],\n)\n\n'
          'cc_library(\n    name = "server_lib",\n    srcs = ["server.cc"],\n'
          f'    deps = {deps},\n)\n')


class AddServerLibDepsTest(absltest.TestCase):

  def test_sorted_list_before_a_concatenation_gets_both_labels_in_order(self):
    text = _server_lib('[\n        ":server_core",\n        "//tensorflow_serving/core:x",\n'
                       '        "//tensorflow_serving/util:y",\n'
                       '        "@org_tensorflow//tensorflow/core:lib",\n'
                       '    ] + SUPPORTED_TENSORFLOW_OPS')
    expected = text.replace('        "//tensorflow_serving/util:y",\n',
                            f'        "{KERNEL}",\n        "{OPS_CC}",\n'
                            '        "//tensorflow_serving/util:y",\n')
    self.assertEqual(fork_edits.add_server_lib_deps(text), expected)

  def test_second_application_changes_nothing(self):
    text = _server_lib('[\n        ":a",\n    ] + if_v2([]) + OPS')
    once = fork_edits.add_server_lib_deps(text)
    self.assertNotEqual(once, text)
    self.assertEqual(fork_edits.add_server_lib_deps(once), once)

  def test_only_the_missing_label_is_added(self):
    text = _server_lib(f'[\n        ":a",\n        "{OPS_CC}",\n    ]')
    result = fork_edits.add_server_lib_deps(text)
    self.assertEqual(result.count(KERNEL), 1)
    self.assertEqual(result.count(OPS_CC), 1)

  def test_unsorted_list_gets_the_labels_at_its_end(self):
    text = _server_lib('[\n        "@z//:z",\n        ":a"\n    ]')
    self.assertEqual(
        fork_edits.add_server_lib_deps(text),
        _server_lib(f'[\n        "@z//:z",\n        ":a",\n        "{KERNEL}",\n'
                    f'        "{OPS_CC}",\n    ]'))

  def test_comment_above_an_entry_stays_with_it(self):
    text = _server_lib('[\n        ":a",\n        # Needed for y.\n'
                       '        "//tensorflow_serving/y:y",\n    ]')
    result = fork_edits.add_server_lib_deps(text)
    self.assertIn(f'"{OPS_CC}",\n        # Needed for y.\n        "//tensorflow_serving/y:y"',
                  result)

  def test_single_line_list(self):
    text = _server_lib('[":a", "@b//:b"]')
    self.assertEqual(fork_edits.add_server_lib_deps(text),
                     _server_lib(f'[":a", "{KERNEL}", "{OPS_CC}", "@b//:b"]'))

  def test_empty_list(self):
    self.assertEqual(fork_edits.add_server_lib_deps(_server_lib("[]")),
                     _server_lib(f'["{KERNEL}", "{OPS_CC}"]'))

  def test_other_rules_are_left_alone(self):
    text = _server_lib('[":b"]')
    result = fork_edits.add_server_lib_deps(text)
    self.assertTrue(
        result.startswith('cc_library(\n    name = "server_core",\n    deps = [":a"],\n)\n'))

  def test_missing_rule_names_the_rule(self):
    with self.assertRaisesRegex(fork_edits.EditError, "no rule named 'server_lib'"):
      fork_edits.add_server_lib_deps('cc_library(name = "other", deps = [])\n')

  def test_deps_that_are_not_a_list_literal_are_refused(self):
    with self.assertRaisesRegex(fork_edits.EditError, "do not start with a list literal"):
      fork_edits.add_server_lib_deps(_server_lib('select({"//conditions:default": []})'))

  def test_rule_without_deps_is_refused(self):
    with self.assertRaisesRegex(fork_edits.EditError, "has no deps attribute"):
      fork_edits.add_server_lib_deps('cc_library(\n    name = "server_lib",\n)\n')


class RemoveIgnoredRepositoryTest(absltest.TestCase):

  STANZA = ('local_repository(\n    name = "ignore_remote_predict",\n'
            '    path = "tensorflow_serving/experimental/tensorflow/ops/remote_predict/",\n)\n')

  def test_stanza_and_its_comment_go_without_leaving_a_double_blank_line(self):
    text = ('workspace(name = "tf_serving")\n\n# Hides remote_predict for now.\n' + self.STANZA +
            '\nload("//x:y.bzl", "z")\n')
    self.assertEqual(fork_edits.remove_ignored_repository(text),
                     'workspace(name = "tf_serving")\n\nload("//x:y.bzl", "z")\n')

  def test_unrelated_comment_above_is_kept(self):
    text = 'workspace(name = "w")\n# Repositories follow.\n' + self.STANZA + 'z()\n'
    self.assertEqual(fork_edits.remove_ignored_repository(text),
                     'workspace(name = "w")\n# Repositories follow.\nz()\n')

  def test_workspace_without_the_stanza_is_unchanged(self):
    text = 'workspace(name = "w")\n# local_repository(name = "ignore_remote_predict")\n'
    self.assertEqual(fork_edits.remove_ignored_repository(text), text)

  def test_other_local_repositories_are_kept(self):
    other = 'local_repository(\n    name = "keep_me",\n    path = "x",\n)\n'
    text = other + "\n" + self.STANZA
    self.assertEqual(fork_edits.remove_ignored_repository(text), other + "\n")



class EnableLinkedGrpcTest(absltest.TestCase):

  SETTING = fork_edits.LINK_GRPC_SETTING

  def test_setting_is_appended_after_a_blank_line(self):
    text = fork_edits.enable_linked_grpc("build --config=x\n")
    self.assertTrue(text.startswith("build --config=x\n\n# "), text)
    self.assertTrue(text.endswith(self.SETTING + "\n"), text)

  def test_second_application_changes_nothing(self):
    once = fork_edits.enable_linked_grpc("build --config=x\n\n")
    self.assertEqual(fork_edits.enable_linked_grpc(once), once)
    self.assertEqual(once.count(self.SETTING), 1)
    self.assertNotIn("\n\n\n", once)

  def test_empty_file_gets_just_the_setting(self):
    text = fork_edits.enable_linked_grpc("")
    self.assertTrue(text.startswith("# "), text)
    self.assertEqual(text.splitlines()[-1], self.SETTING)

  def test_last_line_without_newline_is_kept(self):
    text = fork_edits.enable_linked_grpc("build --config=x")
    self.assertTrue(text.startswith("build --config=x\n\n"), text)


if __name__ == "__main__":
  absltest.main()
