"""Tests reading and checking the server's configuration files."""

import os

from absl.testing import absltest
from absl.testing import parameterized

from tensorflow_serving.model_servers import model_config
from tensorflow_serving.model_servers import server_flags


class ModelConfigTest(parameterized.TestCase):

  def _write(self, text):
    return self.create_tempfile(content=text).full_path

  def test_single_model_from_flags(self):
    options = server_flags.ServerOptions(model_name="m", model_base_path="/models/m")
    config = model_config.initial_model_server_config(options)
    (model,) = config.model_config_list.config
    self.assertEqual((model.name, model.base_path, model.model_platform),
                     ("m", "/models/m", "tensorflow"))

  def test_config_file_with_policies_and_labels(self):
    path = self._write("""
        model_config_list {
          config { name: "a" base_path: "/a" model_platform: "tensorflow"
                   model_version_policy { all {} } }
          config { name: "b" base_path: "/b"
                   model_version_policy { specific { versions: 1 versions: 2 } }
                   version_labels { key: "stable" value: 1 } }
        }""")
    options = server_flags.ServerOptions(model_config_file=path, model_base_path="")
    config = model_config.initial_model_server_config(options)
    self.assertEqual([m.name for m in config.model_config_list.config], ["a", "b"])
    self.assertEqual(dict(config.model_config_list.config[1].version_labels), {"stable": 1})

  @parameterized.named_parameters(
      ("not_text_proto", "model_config_list { config { nme: 'a' } }", "not a valid ASCII"),
      ("duplicate", "model_config_list { config { name: 'a' base_path: '/a' } "
       "config { name: 'a' base_path: '/b' } }", "'a' appears more than once"),
      ("no_base_path", "model_config_list { config { name: 'a' } }", "'a' has no base_path"),
      ("no_name", "model_config_list { config { base_path: '/a' } }", "has no name"),
      ("platform", "model_config_list { config { name: 'a' base_path: '/a' "
       "model_platform: 'pytorch' } }", "model_platform 'pytorch'"),
      ("custom", "custom_model_config { }", "custom_model_config is not supported"),
      ("empty_specific", "model_config_list { config { name: 'a' base_path: '/a' "
       "model_version_policy { specific { } } } }", "no versions"),
      ("logging", "model_config_list { config { name: 'a' base_path: '/a' "
       "logging_config { } } }", "request logging is not supported"),
      ("syntax", "model_config_list {\n  config { nam: 'a' } }",
       r"Error parsing text-format tensorflow.serving.ModelServerConfig: 2:12: .*"
       r"has no field named \"nam\""),
  )
  def test_bad_config_files_name_the_problem(self, text, message):
    path = self._write(text)
    with self.assertRaisesRegex(model_config.ConfigError, message) as raised:
      model_config.read_model_server_config(path)
    self.assertIn(path, str(raised.exception))

  def test_missing_file(self):
    with self.assertRaisesRegex(model_config.ConfigError, "cannot read --model_config_file"):
      model_config.read_model_server_config(os.path.join(self.create_tempdir(), "nope.conf"))

  def test_grpc_channel_arguments(self):
    self.assertEqual(
        model_config.grpc_channel_arguments("grpc.max_connection_age_ms=2000, grpc.x=abc"),
        [("grpc.max_connection_age_ms", 2000), ("grpc.x", "abc")])
    self.assertEqual(model_config.grpc_channel_arguments(""), [])
    with self.assertRaisesRegex(model_config.ConfigError, "'oops' is not key=value"):
      model_config.grpc_channel_arguments("a=1,oops")

  def test_ssl_config_needs_key_cert_and_ca_for_client_verify(self):
    ok = self._write('server_key: "k" server_cert: "c" custom_ca: "ca" client_verify: true')
    self.assertTrue(model_config.read_ssl_config(ok).client_verify)
    with self.assertRaisesRegex(model_config.ConfigError, "server_key and server_cert"):
      model_config.read_ssl_config(self._write('server_key: "k"'))
    with self.assertRaisesRegex(model_config.ConfigError, "no custom_ca"):
      model_config.read_ssl_config(self._write('server_key: "k" server_cert: "c" client_verify: true'))

  def test_monitoring_config_default_path(self):
    config = model_config.read_monitoring_config(self._write("prometheus_config { enable: true }"))
    self.assertEqual(config.prometheus_config.path, "/monitoring/prometheus/metrics")
    with self.assertRaisesRegex(model_config.ConfigError, "must start with '/'"):
      model_config.read_monitoring_config(
          self._write('prometheus_config { enable: true path: "metrics" }'))

  def test_session_config_flags_override_file(self):
    path = self._write("intra_op_parallelism_threads: 7 inter_op_parallelism_threads: 5")
    options = server_flags.ServerOptions(tensorflow_session_config_file=path,
                                         tensorflow_inter_op_parallelism=2)
    config = model_config.session_config(options)
    self.assertEqual((config.intra_op_parallelism_threads, config.inter_op_parallelism_threads),
                     (7, 2))


if __name__ == "__main__":
  absltest.main()
