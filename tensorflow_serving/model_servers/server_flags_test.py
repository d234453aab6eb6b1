"""Tests the server's flags: TF Serving's names and defaults, rejections by name."""

from absl import flags
from absl.testing import absltest
from absl.testing import parameterized

from tensorflow_serving.model_servers import server_flags

# The flags tensorflow_model_server's main.cc defines (TensorFlow Serving 2.x).
TF_SERVING_FLAGS = [
    "port", "grpc_socket_path", "rest_api_port", "rest_api_num_threads",
    "rest_api_timeout_in_ms", "rest_api_enable_cors_support", "enable_batching",
    "allow_version_labels_for_unavailable_models", "batching_parameters_file",
    "enable_per_model_batching_parameters", "model_config_file",
    "model_config_file_poll_wait_seconds", "model_name", "model_base_path",
    "num_load_threads", "num_unload_threads", "max_num_load_retries",
    "load_retry_interval_micros", "file_system_poll_wait_seconds", "flush_filesystem_caches",
    "tensorflow_session_parallelism", "tensorflow_session_config_file",
    "tensorflow_intra_op_parallelism", "tensorflow_inter_op_parallelism",
    "use_alts_credentials", "ssl_config_file", "platform_config_file",
    "per_process_gpu_memory_fraction", "saved_model_tags", "grpc_channel_arguments",
    "grpc_max_threads", "enable_model_warmup", "num_request_iterations_for_warmup", "version",
    "monitoring_config_file", "remove_unused_fields_from_bundle_metagraph",
    "prefer_tflite_model", "num_tflite_pools", "num_tflite_interpreters_per_pool",
    "enable_signature_method_name_check", "xla_cpu_compilation_enabled",
    "xla_gpu_compilation_enabled", "enable_profiler", "thread_pool_factory_config_file",
    "mixed_precision", "skip_initialize_tpu", "enable_grpc_healthcheck_service",
    "enable_serialization_as_tensor_content",
]


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

  def test_every_tensorflow_model_server_flag_is_in_the_table(self):
    names = {spec.name for spec in server_flags.flag_specs()}
    self.assertEmpty(set(TF_SERVING_FLAGS) - names)
    # Every flag is defined exactly once, from the table.
    self.assertEqual(len(names), len(server_flags.flag_specs()))

  def test_tensorflow_servings_defaults(self):
    options = server_flags.ServerOptions()
    self.assertTrue(options.enable_model_warmup)
    self.assertTrue(options.enable_profiler)
    self.assertTrue(options.flush_filesystem_caches)
    self.assertFalse(options.enable_serialization_as_tensor_content)
    self.assertFalse(options.enable_signature_method_name_check)
    self.assertFalse(options.enable_grpc_healthcheck_service)

  def test_new_flags_reach_options(self):
    options = server_flags.options_from_flags(_parse(
        "--model_base_path=/m", "--enable_serialization_as_tensor_content",
        "--enable_signature_method_name_check", "--enable_grpc_healthcheck_service",
        "--noenable_model_warmup", "--num_request_iterations_for_warmup=3",
        "--per_process_gpu_memory_fraction=0.5", "--noflush_filesystem_caches"))
    self.assertTrue(options.enable_serialization_as_tensor_content)
    self.assertTrue(options.enable_signature_method_name_check)
    self.assertTrue(options.enable_grpc_healthcheck_service)
    self.assertFalse(options.enable_model_warmup)
    self.assertEqual(options.num_request_iterations_for_warmup, 3)
    self.assertEqual(options.per_process_gpu_memory_fraction, 0.5)

  @parameterized.parameters(
      ["-platform_config_file", "/p"], ["--use_alts_credentials"], ["--mixed_precision=bfloat16"],
      ["--thread_pool_factory_config_file=/t"])
  def test_flags_this_server_cannot_honour_are_rejected_by_name(self, *args):
    name = args[0].lstrip("-").split("=")[0]
    with self.assertRaisesRegex(server_flags.ConfigError,
                                f"--{name}=.*accepted only at its default"):
      server_flags.options_from_flags(_parse("--model_base_path=/m", *args))

  @parameterized.parameters(
      ["--noenable_batching"], ["--enable_batching=false"], ["--platform_config_file="],
      ["--noenable_profiler"], ["--enable_profiler=true"], ["--xla_cpu_compilation_enabled"],
      ["--num_tflite_pools=4"], ["--remove_unused_fields_from_bundle_metagraph=false"])
  def test_flags_at_values_this_server_honours_are_accepted(self, *args):
    server_flags.options_from_flags(_parse("--model_base_path=/m", *args))

  def test_table_lists_support(self):
    by_name = {spec.name: spec for spec in server_flags.flag_specs()}
    self.assertEqual(by_name["port"].field, "grpc_port")
    self.assertEqual(by_name["port"].support, server_flags.SUPPORTED)
    self.assertEqual(by_name["enable_batching"].support, server_flags.SUPPORTED)
    self.assertEqual(by_name["mixed_precision"].support, server_flags.DEFAULT_ONLY)
    self.assertTrue(by_name["mixed_precision"].note)
    for spec in by_name.values():
      if spec.support != server_flags.SUPPORTED:
        self.assertTrue(spec.note, spec.name)

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
    with self.assertRaisesRegex(server_flags.ConfigError, f"--{name} must be positive"):
      server_flags.options_from_flags(_parse("--model_base_path=/m", f"--{name}=0"))


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
    with self.assertRaisesRegex(server_flags.ConfigError, message):
      server_flags.options_from_flags(values)

  def test_thread_pools_are_generous(self):
    options = server_flags.ServerOptions()
    self.assertGreaterEqual(options.effective_grpc_max_threads(), 32)
    self.assertEqual(server_flags.ServerOptions(grpc_max_threads=3).effective_grpc_max_threads(), 3)


if __name__ == "__main__":
  absltest.main()
