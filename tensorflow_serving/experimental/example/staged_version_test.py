"""Tests of staged_version: a version appears whole or not at all."""

import os

from absl.testing import absltest

from tensorflow_serving.experimental.example import staged_version


class StagedVersionDirTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.base = self.create_tempdir().full_path

  def test_version_appears_only_after_the_block(self):
    with staged_version.staged_version_dir(self.base, 7) as path:
      self.assertFalse(os.path.exists(path))
      os.makedirs(path)
      with open(os.path.join(path, "saved_model.pb"), "w") as f:
        f.write("model")
      self.assertEqual(os.listdir(self.base), [os.path.basename(os.path.dirname(path))])
      self.assertTrue(os.listdir(self.base)[0].startswith(staged_version.STAGING_PREFIX))
    self.assertEqual(os.listdir(self.base), ["7"])
    with open(os.path.join(self.base, "7", "saved_model.pb")) as f:
      self.assertEqual(f.read(), "model")

  def test_failed_export_leaves_nothing(self):
    with self.assertRaisesRegex(ValueError, "exporter broke"):
      with staged_version.staged_version_dir(self.base, "00000003") as path:
        os.makedirs(path)
        raise ValueError("exporter broke")
    self.assertEqual(os.listdir(self.base), [])

  def test_existing_version_is_refused_before_writing(self):
    os.makedirs(os.path.join(self.base, "1"))
    with self.assertRaisesRegex(FileExistsError, r"/1 already exists"):
      with staged_version.staged_version_dir(self.base, 1):
        self.fail("the block must not run")
    self.assertEqual(os.listdir(self.base), ["1"])

  def test_nothing_written_is_an_error(self):
    with self.assertRaisesRegex(RuntimeError, "nothing was written"):
      with staged_version.staged_version_dir(self.base, 2):
        pass
    self.assertEqual(os.listdir(self.base), [])


if __name__ == "__main__":
  absltest.main()
