"""Tests version discovery on disk and the version policies."""

import os

from absl.testing import absltest
from google.protobuf import text_format

from tensorflow_serving.model_servers import version_policy


def _policy(text):
  return text_format.Parse(text, version_policy.VersionPolicy())


class VersionPolicyTest(absltest.TestCase):

  def test_numbered_directories_are_versions(self):
    base = self.create_tempdir()
    for name in ["1", "00000123", "7", "not_a_version", ".staging-1"]:
      os.makedirs(os.path.join(base, name))
    base.create_file("9")  # A file, not a version directory.
    versions = version_policy.versions_on_disk(base.full_path)
    self.assertEqual(sorted(versions), [1, 7, 123])
    self.assertEqual(versions[123], os.path.join(base.full_path, "00000123"))

  def test_missing_base_path(self):
    with self.assertRaisesRegex(version_policy.BasePathError, "cannot list model base path"):
      version_policy.versions_on_disk(os.path.join(self.create_tempdir(), "absent"))

  def test_policies(self):
    on_disk = [1, 2, 3, 5]
    self.assertEqual(version_policy.aspired_versions(on_disk, _policy("")), {5})
    self.assertEqual(version_policy.aspired_versions(on_disk, _policy("latest {}")), {5})
    self.assertEqual(
        version_policy.aspired_versions(on_disk, _policy("latest { num_versions: 2 }")), {3, 5})
    self.assertEqual(version_policy.aspired_versions(on_disk, _policy("all {}")), {1, 2, 3, 5})
    self.assertEqual(
        version_policy.aspired_versions(on_disk, _policy("specific { versions: 2 versions: 4 }")),
        {2})
    self.assertEqual(version_policy.aspired_versions([], _policy("latest {}")), set())


if __name__ == "__main__":
  absltest.main()
