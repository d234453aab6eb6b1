"""The model server: models, gRPC and REST front ends, monitoring and TLS, assembled.

`ModelServer(options).start()` loads any --custom_op_library_paths, reads the config
files, loads the configured models and only then opens the gRPC port (and the REST
port if --rest_api_port is set), as TensorFlow Serving's server does: a client that
finds the port open finds the models AVAILABLE. If a model's newest version cannot
load (after --max_num_load_retries), start() raises StartError and nothing is served.
`stop()` drains and shuts everything down. The
Remote Predict Op's Python module is imported here so that `TfServingRemotePredict` is
registered before any model loads: models whose graphs call other servers, or this
one, load and run.

Concurrency: gRPC calls run on a pool of --grpc_max_threads workers and REST requests
on their own pool; model runs release the GIL. A model that calls back into this server
through the op therefore holds one worker per nesting level while the nested call is
served by another, instead of deadlocking.
"""

import concurrent.futures
import os
import threading
from typing import List, Optional

from absl import logging
import grpc
import tensorflow as tf

# Registers TfServingRemotePredict (and loads its kernel) before models load.
from tensorflow_serving.experimental.tensorflow.ops.remote_predict.python.ops import remote_predict_ops  # pylint: disable=unused-import

from tensorflow_serving.apis import model_service_pb2
from tensorflow_serving.apis import prediction_service_pb2
from tensorflow_serving.config import model_server_config_pb2
from tensorflow_serving.model_servers import batching
from tensorflow_serving.model_servers import classify_regress_impl
from tensorflow_serving.model_servers import config_protos
from tensorflow_serving.model_servers import grpc_handlers
from tensorflow_serving.model_servers import grpc_services
from tensorflow_serving.model_servers import health
from tensorflow_serving.model_servers import http_rest_api
from tensorflow_serving.model_servers import http_server
from tensorflow_serving.model_servers import model_config
from tensorflow_serving.model_servers import model_manager
from tensorflow_serving.model_servers import monitoring
from tensorflow_serving.model_servers import profiler_service
from tensorflow_serving.model_servers import servable
from tensorflow_serving.model_servers import server_flags
from tensorflow_serving.model_servers import serving_errors
from tensorflow_serving.model_servers import tensor_limits
from tensorflow_serving.model_servers import tflite_servable
from tensorflow_serving.model_servers import tls
from tensorflow_serving.model_servers import warmup

# sockaddr_un.sun_path holds 108 bytes, including the terminating NUL.
_MAX_UNIX_SOCKET_PATH = 107


class StartError(RuntimeError):
  """The server cannot start serving, e.g. a configured model failed to load."""


def load_custom_op_libraries(paths: List[str]) -> None:
  for path in paths:
    if not os.path.isfile(path):
      raise model_config.ConfigError(
          f"--custom_op_library_paths: '{path}' is not a file; give the path of a TensorFlow "
          "op library (.so)")
    try:
      tf.load_op_library(path)
    except (tf.errors.OpError, OSError) as e:
      message = getattr(e, "message", str(e))
      raise model_config.ConfigError(
          f"--custom_op_library_paths: cannot load op library '{path}': {message}") from e
    logging.info("Loaded op library %s", path)


class ModelServer:
  """A running server; `start()` once, then `wait()` / `stop()`."""

  def __init__(self, options: server_flags.ServerOptions):
    self._options = options
    self._stop_requested = threading.Event()
    self._stopped = False
    self._reload_lock = threading.Lock()
    self._grpc_server: Optional[grpc.Server] = None
    self._http_server: Optional[http_server.HttpServer] = None
    self._config_poll_thread: Optional[threading.Thread] = None
    self._file_config: Optional[model_server_config_pb2.ModelServerConfig] = None
    self._health: Optional[health.HealthService] = None
    self._batch_scheduler: Optional[batching.BatchScheduler] = None
    self.metrics = monitoring.Metrics()
    self.manager: Optional[model_manager.ModelManager] = None

  def start(self) -> None:
    """Raises ConfigError or OSError (with the reason) if the server cannot start."""
    options = self._options
    tensor_limits.set_max_request_tensor_bytes(options.max_request_tensor_bytes)
    load_custom_op_libraries(options.custom_op_library_paths)
    config = model_config.initial_model_server_config(options)
    ssl_config = (model_config.read_ssl_config(options.ssl_config_file)
                  if options.ssl_config_file else None)
    metrics_path = None
    if options.monitoring_config_file:
      prometheus = model_config.read_monitoring_config(
          options.monitoring_config_file).prometheus_config
      if prometheus.enable:
        if not options.rest_api_port:
          raise model_config.ConfigError(
              "--monitoring_config_file enables Prometheus, which is served on the REST "
              "port: set --rest_api_port")
        metrics_path = prometheus.path
    credentials = tls.server_credentials(ssl_config) if ssl_config else None
    session_config = model_config.session_config(options)
    tags = options.saved_model_tag_list()
    classify_regress_impl.set_method_name_check(options.enable_signature_method_name_check)

    batch_options = self._start_batching()

    def load(name: str, version: int, path: str) -> servable.Servable:
      if options.prefer_tflite_model and tflite_servable.has_tflite_model(path):
        loaded = tflite_servable.load(name, version, path, options.tflite_interpreter_count())
      else:
        loaded = servable.load(name, version, path, tags, session_config)
      if self._batch_scheduler is not None:
        try:
          queue_options = batching.options_for_version(
              batch_options, options.enable_per_model_batching_parameters, path)
        except BaseException:
          loaded.close()
          raise
        if queue_options is not None:
          label = f"model {name} version {version}"
          batching.log_enabled(label, queue_options)
          loaded.batcher = batching.ServableBatcher(self._batch_scheduler, queue_options, label)
      if options.enable_model_warmup:
        try:
          warmup.replay(loaded, options.num_request_iterations_for_warmup)
        except BaseException:
          loaded.close()
          raise
      return loaded

    self.manager = model_manager.ModelManager(
        load,
        file_system_poll_wait_seconds=options.file_system_poll_wait_seconds,
        num_load_threads=options.num_load_threads,
        num_unload_threads=options.num_unload_threads,
        max_num_load_retries=options.max_num_load_retries,
        load_retry_interval_seconds=options.load_retry_interval_micros / 1e6,
        allow_version_labels_for_unavailable_models=(
            options.allow_version_labels_for_unavailable_models),
        load_observer=lambda name, path, ok: self.metrics.record_load(path, ok))
    self._file_config = config
    self.manager.start(config)
    try:
      self._wait_for_initial_models(config)
      self._start_grpc(credentials)
      if options.rest_api_port:
        self._http_server = http_server.HttpServer(
            http_rest_api.RestApi(self.manager, self.metrics, options.rest_api_timeout_in_ms),
            options.rest_api_port,
            num_threads=options.effective_rest_api_num_threads(),
            max_request_bytes=options.rest_api_max_request_bytes,
            enable_cors=options.rest_api_enable_cors_support,
            metrics=self.metrics, metrics_path=metrics_path,
            shutdown_grace_seconds=options.shutdown_grace_period_in_ms / 1000.0,
            header_timeout_seconds=options.rest_api_header_read_timeout_in_ms / 1000.0,
            body_timeout_seconds=options.rest_api_body_read_timeout_in_ms / 1000.0,
            idle_timeout_seconds=options.rest_api_idle_timeout_in_ms / 1000.0)
        self._http_server.start()
    except BaseException:
      self.stop()
      raise
    if options.model_config_file and options.model_config_file_poll_wait_seconds > 0:
      self._config_poll_thread = threading.Thread(
          target=self._poll_config_file, name="model_config_poll", daemon=True)
      self._config_poll_thread.start()

  def _start_batching(self) -> Optional[batching.QueueOptions]:
    """--enable_batching: the shared batch threads and the global queue options."""
    options = self._options
    if not options.enable_batching:
      return None
    parameters = config_protos.BatchingParameters()
    if options.batching_parameters_file:
      parameters = batching.read_parameters(options.batching_parameters_file,
                                            "--batching_parameters_file")
    global_options = batching.queue_options(
        parameters, options.batching_parameters_file or "default BatchingParameters")
    threads = (parameters.num_batch_threads.value if parameters.HasField("num_batch_threads")
               else os.cpu_count() or 1)
    self._batch_scheduler = batching.BatchScheduler(threads)
    return global_options

  def _wait_for_initial_models(self, config) -> None:
    names = [m.name for m in config.model_config_list.config]
    logging.info("Waiting for %d model(s) to load before serving: %s", len(names),
                 ", ".join(names))
    failures = self.manager.wait_for_initial_models(names, self._stop_requested.is_set)
    if failures:
      raise StartError(f"{len(failures)} model(s) did not become available: "
                       f"{{{', '.join(failures)}}}")
    if self._stop_requested.is_set():
      raise StartError("stopped by a signal while the models were loading")

  def _start_grpc(self, credentials: Optional[grpc.ServerCredentials]) -> None:
    options = self._options
    channel_arguments = model_config.grpc_channel_arguments(options.grpc_channel_arguments)
    given = {key for key, _ in channel_arguments}
    # Unlimited messages as in TF Serving; no silent port sharing with another server.
    for default in [("grpc.max_send_message_length", -1),
                    ("grpc.max_receive_message_length", -1), ("grpc.so_reuseport", 0)]:
      if default[0] not in given:
        channel_arguments.append(default)
    self._grpc_server = grpc.server(
        concurrent.futures.ThreadPoolExecutor(options.effective_grpc_max_threads(),
                                              thread_name_prefix="grpc"),
        options=channel_arguments)
    grpc_handlers.add_servicer(
        self._grpc_server,
        grpc_services.PredictionServicer(
            self.manager, self.metrics,
            tensor_content=options.enable_serialization_as_tensor_content),
        prediction_service_pb2.DESCRIPTOR.services_by_name["PredictionService"])
    grpc_handlers.add_servicer(
        self._grpc_server,
        grpc_services.ModelServicer(self.manager, self.metrics, self.reload_config),
        model_service_pb2.DESCRIPTOR.services_by_name["ModelService"])
    if options.enable_profiler:
      self._grpc_server.add_generic_rpc_handlers(
          [profiler_service.ProfilerService(self._stop_requested).handler()])
    if options.enable_grpc_healthcheck_service:
      self._health = health.HealthService()
      self._health.add_to_server(self._grpc_server)
    addresses = []
    if options.grpc_port:
      addresses.append(f"0.0.0.0:{options.grpc_port}")
    if options.grpc_socket_path:
      if len(os.path.abspath(options.grpc_socket_path)) > _MAX_UNIX_SOCKET_PATH:
        raise model_config.ConfigError(
            f"--grpc_socket_path '{options.grpc_socket_path}' is longer than the "
            f"{_MAX_UNIX_SOCKET_PATH} characters a UNIX socket path may have; use a shorter path")
      addresses.append(f"unix:{options.grpc_socket_path}")
    for address in addresses:
      try:
        bound = (self._grpc_server.add_secure_port(address, credentials) if credentials
                 else self._grpc_server.add_insecure_port(address))
      except RuntimeError as e:
        raise OSError(f"cannot listen for gRPC on {address}: {e}") from e
      if not bound and not address.startswith("unix:"):
        raise OSError(f"cannot listen for gRPC on {address} (is the port in use?)")
    self._grpc_server.start()
    if self._health is not None:
      self._health.set_serving()
    logging.info("Running gRPC ModelServer at %s%s", ", ".join(addresses),
                 " with TLS" if credentials else "")

  def reload_config(self, config: model_server_config_pb2.ModelServerConfig,
                    timeout_seconds: float) -> None:
    """HandleReloadConfigRequest: adopt `config` and wait for it to load."""
    if not config.HasField("model_config_list"):
      raise serving_errors.invalid_argument(
          "ServerCore is configured with model_config_list; the new config must also be a "
          "model_config_list")
    try:
      model_config.validate_model_server_config(config)
    except model_config.ConfigError as e:
      raise serving_errors.invalid_argument(str(e)) from e
    with self._reload_lock:
      logging.info("Reloading model config with %d model(s)",
                   len(config.model_config_list.config))
      self.manager.reload_config(config, timeout_seconds)

  def _poll_config_file(self) -> None:
    path = self._options.model_config_file
    while not self._stop_requested.wait(self._options.model_config_file_poll_wait_seconds):
      try:
        config = model_config.read_model_server_config(path)
      except model_config.ConfigError as e:
        logging.error("Keeping the current models: %s", e)
        continue
      # Only a changed file reloads, so a HandleReloadConfigRequest sticks until the
      # file itself changes.
      if config == self._file_config:
        continue
      self._file_config = config
      try:
        self.reload_config(config, grpc_services.DEFAULT_RELOAD_TIMEOUT_SECONDS)
      except serving_errors.ServingError as e:
        logging.error("Reloading %s: %s", path, e)

  def request_stop(self) -> None:
    """Asks `wait()` to return; safe from a signal handler."""
    self._stop_requested.set()

  def wait(self) -> None:
    # SIGTERM may be delivered to any thread, and one that lands elsewhere does not
    # wake a main thread blocked on a lock; waking now and then lets the main
    # thread run the Python signal handler.
    while not self._stop_requested.wait(timeout=0.5):
      pass

  def stop(self) -> None:
    """Stops accepting, drains for the grace period, cancels model work still running.

    Returns within about --shutdown_grace_period_in_ms: requests still running when
    the grace period ends are cancelled, and so is their model work (closing a
    session aborts its running steps), so no worker thread outlives the grace.
    """
    if self._stopped:
      return
    self._stopped = True
    self._stop_requested.set()
    grace = self._options.shutdown_grace_period_in_ms / 1000.0
    logging.info("Shutting down: draining in-flight requests for up to %.1f s", grace)
    # Whatever the front ends are doing, model work ends when the grace period does.
    grace_over = threading.Timer(grace, self._cancel_model_work)
    grace_over.daemon = True
    grace_over.start()
    if self._health is not None:
      self._health.shut_down()
    grpc_done = (self._grpc_server.stop(grace) if self._grpc_server is not None else None)
    if self._http_server is not None:
      self._http_server.stop()
    if grpc_done is not None:
      grpc_done.wait(grace)
    # Drained (or the grace period is over): nothing may run past this point.
    grace_over.cancel()
    self._cancel_model_work()
    if self._http_server is not None:
      self._http_server.join_workers()
    if grpc_done is not None:
      grpc_done.wait()
    if self._config_poll_thread is not None:
      self._config_poll_thread.join()
    if self.manager is not None:
      self.manager.stop()
    if self._batch_scheduler is not None:
      self._batch_scheduler.stop()
    logging.info("Server stopped")

  def _cancel_model_work(self) -> None:
    if self.manager is not None:
      cancelled = self.manager.cancel_running_work()
      if cancelled:
        logging.warning("Grace period over: cancelled the model work of %d busy version(s)",
                        cancelled)
