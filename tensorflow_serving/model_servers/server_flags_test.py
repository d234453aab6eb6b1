"""Tests the server's flags: TF Serving's names and defaults, rejections by name."""

from absl import flags
from absl.testing import absltest
from absl.testing import parameterized

from tensorflow_serving.model_servers import server_flags


def _parse(*args):
  flag_values = flags.FlagValues()
  server_flags.define_flags(flag_values)
  server_flags.parse_argv(["tensorflow_model_server", *args], flag_values)
  return flag_values


class ServerFlagsTest(parameterized.TestCase):

  def test_defaults_are_tensorflow_servings(self):
    values = _parse("--model_base_path=/models/m")
    options = server_flags.options_from_flags(values)
    self.assertEqual(options.grpc_port, 8500)
    self.assertEqual(options.rest_api_port, 0)
    self.assertEqual(options.model_name, "default")
    self.assertEqual(options.file_system_poll_wait_seconds, 1)
    self.assertEqual(options.model_config_file_poll_wait_seconds, 0)
    self.assertEqual(options.rest_api_timeout_in_ms, 30000)
    self.assertEqual(options.saved_model_tags, "serve")
    self.assertEqual(options.max_num_load_retries, 5)

  def test_values_reach_options(self):
    values = _parse("--port=9000", "--rest_api_port=9001", "--model_name=m",
                    "--model_base_path=/m", "--grpc_channel_arguments=a=1",
                    "--custom_op_library_paths=/a.so, /b.so",
                    "--allow_version_labels_for_unavailable_models")
    options = server_flags.options_from_flags(values)
    self.assertEqual((options.grpc_port, options.rest_api_port), (9000, 9001))
    self.assertEqual(options.custom_op_library_paths, ["/a.so", "/b.so"])
    self.assertTrue(options.allow_version_labels_for_unavailable_models)
    self.assertEqual(options.grpc_channel_arguments, "a=1")

  @parameterized.parameters(
      ["--enable_batching"], ["--enable_batching=true"], ["--noenable_batching"],
      ["--batching_parameters_file=/b.txt"], ["-platform_config_file", "/p"],
      ["--enable_model_warmup"], ["--per_process_gpu_memory_fraction=0.5"])
  def test_unsupported_tf_serving_flags_are_rejected_by_name(self, *args):
    name = args[0].lstrip("-").split("=")[0]
    name = name[2:] if name.startswith("noenable") else name
    with self.assertRaisesRegex(
        server_flags.UnsupportedFlagError,
        f"flag --{name} is a TensorFlow Serving flag this server does not support"):
      _parse("--model_base_path=/m", *args)

  def test_limits_beyond_tf_serving(self):
    defaults = server_flags.options_from_flags(_parse("--model_base_path=/m"))
    self.assertEqual(defaults.max_request_tensor_bytes, 2 << 30)
    self.assertEqual(defaults.shutdown_grace_period_in_ms, 30000)
    options = server_flags.options_from_flags(_parse(
        "--model_base_path=/m", "--max_request_tensor_bytes=1024",
        "--rest_api_header_read_timeout_in_ms=1", "--rest_api_body_read_timeout_in_ms=2",
        "--rest_api_idle_timeout_in_ms=3", "--shutdown_grace_period_in_ms=0"))
    self.assertEqual(
        (options.max_request_tensor_bytes, options.rest_api_header_read_timeout_in_ms,
         options.rest_api_body_read_timeout_in_ms, options.rest_api_idle_timeout_in_ms,
         options.shutdown_grace_period_in_ms), (1024, 1, 2, 3, 0))

  @parameterized.parameters("max_request_tensor_bytes", "rest_api_header_read_timeout_in_ms",
                            "rest_api_body_read_timeout_in_ms", "rest_api_idle_timeout_in_ms")
  def test_limits_must_be_positive(self, name):
    with self.assertRaisesRegex(flags.Error, f"--{name} must be positive"):
      server_flags.options_from_flags(_parse("--model_base_path=/m", f"--{name}=0"))

  def test_arguments_after_double_dash_are_not_flags(self):
    server_flags.reject_unsupported_flags(["--port=1", "--", "--enable_batching"])

  def test_unknown_flags_are_errors(self):
    with self.assertRaisesRegex(flags.Error, "no_such_flag"):
      _parse("--model_base_path=/m", "--no_such_flag=1")

  @parameterized.named_parameters(
      ("no_model", [], "no model to serve"),
      ("same_ports", ["--model_base_path=/m", "--port=9000", "--rest_api_port=9000"],
       "equals --port"),
      ("bad_port", ["--model_base_path=/m", "--port=70000"], "not a TCP port"),
      ("no_grpc", ["--model_base_path=/m", "--port=0"], "disables gRPC"),
      ("no_tags", ["--model_base_path=/m", "--saved_model_tags=,"], "saved_model_tags"),
  )
  def test_bad_combinations_are_explained(self, args, message):
    values = _parse(*args)
    with self.assertRaisesRegex(flags.Error, message):
      server_flags.options_from_flags(values)

  def test_thread_pools_are_generous(self):
    options = server_flags.ServerOptions()
    self.assertGreaterEqual(options.effective_grpc_max_threads(), 32)
    self.assertEqual(server_flags.ServerOptions(grpc_max_threads=3).effective_grpc_max_threads(), 3)


if __name__ == "__main__":
  absltest.main()
