"""Model versions: loading, unloading, version labels and status.

The manager serves the models of a ModelServerConfig. For each model it scans the base
path (at start-up, on every config change and every --file_system_poll_wait_seconds),
applies the version policy, loads new aspired versions on the load threads and unloads
versions no longer aspired. A version moves through TF Serving's states

  START -> LOADING -> AVAILABLE -> UNLOADING -> END        (END with an error: load failed)

Rules that keep the server available:
- a version that fails to load ends in END with its error; other versions and models
  are untouched. The failure is reported until the version's directory disappears
  (then it is forgotten); a directory that comes back is loaded afresh;
- a version that is no longer aspired is unloaded only once an aspired version of the
  same model is AVAILABLE (or the model has no aspired versions left), so replacing
  version N by N+1 never leaves a gap, and a broken N+1 leaves N serving;
- unloading waits for the requests still using the version.

Requests take a version with `servable(model_spec)`, which resolves the name with a
version, a version label or neither (the latest AVAILABLE version).
"""

import concurrent.futures
import contextlib
import dataclasses
import threading
import time
from typing import Callable, Dict, Iterator, List, Optional, Set, Tuple

from absl import logging

from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import model_pb2
from tensorflow_serving.config import model_server_config_pb2
from tensorflow_serving.model_servers import servable as servable_lib
from tensorflow_serving.model_servers import serving_errors
from tensorflow_serving.model_servers import version_policy

State = get_model_status_pb2.ModelVersionStatus.State
Loader = Callable[[str, int, str], servable_lib.Servable]
LoadObserver = Callable[[str, str, bool], None]


@dataclasses.dataclass
class _Version:
  number: int
  path: str
  state: int = State.START
  error: Optional[serving_errors.ServingError] = None
  servable: Optional[servable_lib.Servable] = None


class _Model:

  def __init__(self, config: model_server_config_pb2.ModelConfig):
    self.config: Optional[model_server_config_pb2.ModelConfig] = config
    self.versions: Dict[int, _Version] = {}
    self.labels: Dict[str, int] = {}
    self.aspired: Set[int] = set()
    self.base_path_error: Optional[str] = None

  def available(self) -> List[int]:
    return sorted((v.number for v in self.versions.values() if v.state == State.AVAILABLE),
                  reverse=True)


def _describe_request(spec: model_pb2.ModelSpec) -> str:
  choice = spec.WhichOneof("version_choice")
  if choice == "version":
    return f"Specific({spec.name}, {spec.version.value})"
  if choice == "version_label":
    return f"Label({spec.name}, {spec.version_label})"
  return f"Latest({spec.name})"


class ModelManager:
  """Keeps the configured models' versions loaded; thread-safe."""

  def __init__(self, loader: Loader, *, file_system_poll_wait_seconds: int = 1,
               num_load_threads: int = 1, num_unload_threads: int = 1,
               max_num_load_retries: int = 0, load_retry_interval_seconds: float = 0.0,
               allow_version_labels_for_unavailable_models: bool = False,
               load_observer: Optional[LoadObserver] = None):
    self._loader = loader
    self._poll_seconds = file_system_poll_wait_seconds
    self._max_retries = max(0, max_num_load_retries)
    self._retry_interval = max(0.0, load_retry_interval_seconds)
    self._allow_unavailable_labels = allow_version_labels_for_unavailable_models
    self._load_observer = load_observer
    self._lock = threading.RLock()
    self._changed = threading.Condition(self._lock)
    self._models: Dict[str, _Model] = {}
    self._scan_lock = threading.Lock()
    self._stopping = threading.Event()
    self._load_pool = concurrent.futures.ThreadPoolExecutor(
        max(1, num_load_threads), thread_name_prefix="model_load")
    self._unload_pool = concurrent.futures.ThreadPoolExecutor(
        max(1, num_unload_threads), thread_name_prefix="model_unload")
    self._poll_thread: Optional[threading.Thread] = None

  # ---------------------------------------------------------------- lifecycle

  def start(self, config: model_server_config_pb2.ModelServerConfig) -> None:
    """Serves `config` (already validated); loads proceed in the background."""
    self.apply_config(config)
    with self._lock:
      for model_config in config.model_config_list.config:
        self._models[model_config.name].labels = dict(model_config.version_labels)
    if self._poll_seconds > 0:
      self._poll_thread = threading.Thread(target=self._poll_loop, name="model_version_poll",
                                           daemon=True)
      self._poll_thread.start()

  def stop(self) -> None:
    """Stops polling and unloads every version, waiting for running requests."""
    self._stopping.set()
    if self._poll_thread is not None:
      self._poll_thread.join()
    self._load_pool.shutdown(wait=True)
    with self._lock:
      to_unload = [v for m in self._models.values() for v in m.versions.values()
                   if v.state == State.AVAILABLE]
      for version in to_unload:
        version.state = State.UNLOADING
    for version in to_unload:
      self._finish_unload(version)
    self._unload_pool.shutdown(wait=True)

  def cancel_running_work(self) -> int:
    """Shutdown: aborts the model work of every loaded version; returns how many were busy."""
    with self._lock:
      servables = [v.servable for m in self._models.values() for v in m.versions.values()
                   if v.servable is not None]
    return sum(1 for servable in servables if servable.cancel())

  def _poll_loop(self) -> None:
    while not self._stopping.wait(self._poll_seconds):
      try:
        self.scan()
      except Exception:  # pylint: disable=broad-except
        logging.exception("Scanning model base paths failed; will retry")

  # ----------------------------------------------------------- configuration

  def apply_config(self, config: model_server_config_pb2.ModelServerConfig) -> Set[Tuple[str, int]]:
    """Adopts a validated config; returns the (model, version) loads it started."""
    with self._lock:
      wanted = {m.name: m for m in config.model_config_list.config}
      for name, model in list(self._models.items()):
        if name not in wanted and model.config is not None:
          logging.info("Model %s was removed from the config; unloading it", name)
          model.config = None
      for name, model_config in wanted.items():
        model = self._models.get(name)
        if model is None:
          self._models[name] = _Model(model_config)
        elif model.config is not None and model.config.base_path != model_config.base_path:
          # A new base path is a new model: retire the old one's versions.
          logging.info("Model %s moved from %s to %s", name, model.config.base_path,
                       model_config.base_path)
          model.config = None
          self._reconcile(name, model, {})
          replacement = _Model(model_config)
          replacement.labels = model.labels
          self._models[name] = replacement
        else:
          model.config = model_config
    return self.scan()

  def reload_config(self, config: model_server_config_pb2.ModelServerConfig,
                    timeout_seconds: float) -> None:
    """Adopts `config`, waits for its loads, then sets its version labels.

    Raises ServingError if a version this config asked for failed to load, or a label
    names a version that is not available (labels of that model are then unchanged).
    """
    started = self.apply_config(config)
    self.wait_until_settled(timeout_seconds)
    problems: List[serving_errors.ServingError] = []
    with self._lock:
      for name, number in sorted(started):
        version = self._models[name].versions.get(number)
        if version is not None and version.state == State.END and version.error is not None:
          problems.append(serving_errors.ServingError(
              version.error.code,
              f"model {name} version {number} failed to load: {version.error.message}"))
      for model_config in config.model_config_list.config:
        model = self._models[model_config.name]
        new_labels = dict(model_config.version_labels)
        problem = self._label_problem(model_config.name, model, new_labels)
        if problem:
          problems.append(serving_errors.failed_precondition(problem))
        else:
          model.labels = new_labels
    if problems:
      raise serving_errors.ServingError(problems[0].code,
                                        "; ".join(p.message for p in problems))

  def _label_problem(self, name: str, model: _Model, labels: Dict[str, int]) -> Optional[str]:
    available = set(model.available())
    for label, number in sorted(labels.items()):
      if number in available:
        continue
      if self._allow_unavailable_labels and label not in model.labels:
        continue
      return (f"Request to assign label '{label}' to version {number} of model {name}, which "
              "is not currently available for inference; load the version first (or start "
              "the server with --allow_version_labels_for_unavailable_models for new labels)")
    return None

  def wait_until_settled(self, timeout_seconds: float) -> bool:
    """Waits until no aspired version is loading; False on timeout."""

    def settled():
      for model in self._models.values():
        for number in model.aspired:
          version = model.versions.get(number)
          if version is None or version.state in (State.START, State.LOADING):
            return False
      return True

    with self._changed:
      return self._changed.wait_for(settled, timeout=timeout_seconds)

  def wait_for_initial_models(self, names: List[str],
                              stop_requested: Callable[[], bool]) -> List[str]:
    """Start-up, as TensorFlow Serving's ServerCore: waits for each model's newest version.

    Returns once the newest aspired version of every model in `names` is AVAILABLE or
    has failed to load (after its retries), or when `stop_requested()`; the result lists
    the failures ("model M version V: error"). As in TensorFlow Serving, a model with no
    version on disk yet is waited for until one appears.
    """
    with self._changed:
      while True:
        pending, failures = [], []
        for name in names:
          model = self._models.get(name)
          newest = model.versions.get(max(model.aspired)) if model and model.aspired else None
          if newest is None or newest.state in (State.START, State.LOADING):
            pending.append(name)
          elif newest.state != State.AVAILABLE:
            detail = newest.error.message if newest.error else "it was unloaded"
            code = newest.error.code.name if newest.error else "UNKNOWN"
            failures.append(f"{{name: {name} version: {newest.number}}} due to error: "
                            f"{code}: {detail}")
        if not pending or stop_requested():
          return failures
        self._changed.wait(0.5)

  # ---------------------------------------------------------------- scanning

  def scan(self) -> Set[Tuple[str, int]]:
    """Rescans every base path now; returns the (model, version) loads started."""
    started: Set[Tuple[str, int]] = set()
    with self._scan_lock:
      with self._lock:
        models = list(self._models.items())
      for name, model in models:
        on_disk: Dict[int, str] = {}
        error = None
        config = model.config
        if config is not None:
          try:
            on_disk = version_policy.versions_on_disk(config.base_path)
          except version_policy.BasePathError as e:
            error = str(e)
          if not on_disk and error is None:
            error = f"no numbered version directories under '{config.base_path}'"
        with self._lock:
          if error != model.base_path_error:
            if error:
              logging.warning("Model %s: %s", name, error)
            model.base_path_error = error
          started |= {(name, v) for v in self._reconcile(name, model, on_disk)}
    return started

  def _reconcile(self, name: str, model: _Model, on_disk: Dict[int, str]) -> List[int]:
    """Under the lock: starts loads/unloads so `model` matches disk and policy."""
    if self._stopping.is_set():
      return []
    if model.config is None:
      model.aspired = set()
    else:
      model.aspired = version_policy.aspired_versions(on_disk, model.config.model_version_policy)
    for number, version in list(model.versions.items()):
      if version.error is not None and version.state == State.END and number not in on_disk:
        del model.versions[number]  # Forget a failure once its directory is gone.
    started = []
    for number in sorted(model.aspired):
      version = model.versions.get(number)
      if version is not None and not (version.state == State.END and version.error is None):
        continue
      version = _Version(number=number, path=on_disk[number], state=State.LOADING)
      model.versions[number] = version
      started.append(number)
      logging.info("Loading model %s version %d from %s", name, number, version.path)
      self._load_pool.submit(self._load, name, model, version)
    self._unload_superseded(name, model)
    self._changed.notify_all()
    return started

  def _unload_superseded(self, name: str, model: _Model) -> None:
    if model.aspired and not any(
        model.versions[n].state == State.AVAILABLE for n in model.aspired if n in model.versions):
      return  # Keep serving the old versions until a new one is ready.
    for version in model.versions.values():
      if version.state == State.AVAILABLE and version.number not in model.aspired:
        logging.info("Unloading model %s version %d", name, version.number)
        version.state = State.UNLOADING
        self._unload_pool.submit(self._finish_unload, version)

  # ------------------------------------------------------------ load/unload

  def _load(self, name: str, model: _Model, version: _Version) -> None:
    servable, error = None, None
    for attempt in range(self._max_retries + 1):
      if attempt:
        logging.info("Retrying load of model %s version %d (attempt %d of %d)", name,
                     version.number, attempt + 1, self._max_retries + 1)
        if self._stopping.wait(self._retry_interval):
          break
      try:
        servable = self._loader(name, version.number, version.path)
        error = None
        break
      except serving_errors.ServingError as e:
        error = e
      except Exception as e:  # pylint: disable=broad-except
        error = serving_errors.internal(f"{type(e).__name__}: {e}")
      logging.error("Loading model %s version %d failed: %s", name, version.number,
                    error.message)
    if error is None and servable is None:
      error = serving_errors.unavailable("the server stopped before the version loaded")
    if self._load_observer is not None:
      self._load_observer(name, version.path, error is None)

    with self._lock:
      retired = self._stopping.is_set() or self._models.get(name) is not model
      if error is None and not retired:
        version.servable = servable
        version.state = State.AVAILABLE
        logging.info("Model %s version %d is AVAILABLE", name, version.number)
        self._unload_superseded(name, model)
      else:
        version.state = State.END
        version.error = error
      self._changed.notify_all()
    if servable is not None and (retired or error is not None):
      servable.close()

  def _finish_unload(self, version: _Version) -> None:
    servable = version.servable
    if servable is not None:
      servable.close()
    with self._lock:
      version.servable = None
      version.state = State.END
      self._changed.notify_all()

  # ---------------------------------------------------------------- requests

  @contextlib.contextmanager
  def servable(self, spec: model_pb2.ModelSpec) -> Iterator[servable_lib.Servable]:
    """The version `spec` asks for, held for the duration of the `with` block."""
    servable = self._acquire(spec)
    try:
      yield servable
    finally:
      servable.release()

  def _acquire(self, spec: model_pb2.ModelSpec) -> servable_lib.Servable:
    if not spec.name:
      raise serving_errors.invalid_argument(
          "Missing model name in request: set model_spec.name to the served model's name")
    with self._lock:
      request = _describe_request(spec)
      model = self._models.get(spec.name)
      if model is None or model.config is None:
        served = ", ".join(sorted(n for n, m in self._models.items() if m.config)) or "none"
        raise serving_errors.not_found(
            f"Servable not found for request: {request}: no model named '{spec.name}' is "
            f"served (served models: {served})")
      choice = spec.WhichOneof("version_choice")
      if choice is None:
        available = model.available()
        if not available:
          raise self._no_version_error(spec.name, model, request)
        number = available[0]
      else:
        number = (spec.version.value if choice == "version"
                  else self._version_for_label(spec.name, model, spec.version_label))
        version = model.versions.get(number)
        if version is None or version.state != State.AVAILABLE:
          raise self._version_unavailable_error(spec.name, number, version, request)
      servable = model.versions[number].servable
      servable.acquire()
      return servable

  def _version_for_label(self, name: str, model: _Model, label: str) -> int:
    if label not in model.labels:
      known = ", ".join(sorted(model.labels)) or "none"
      raise serving_errors.invalid_argument(
          f"Unrecognized servable version label: '{label}' for model {name} (labels: {known})")
    return model.labels[label]

  @staticmethod
  def _no_version_error(name: str, model: _Model, request: str) -> serving_errors.ServingError:
    if any(v.state in (State.START, State.LOADING) for v in model.versions.values()):
      return serving_errors.unavailable(
          f"Servable not found for request: {request}: model {name} is still loading; "
          "retry once GetModelStatus reports a version AVAILABLE")
    failures = [f"version {v.number}: {v.error.message}" for v in model.versions.values()
                if v.error is not None]
    detail = ("; ".join(failures) if failures else model.base_path_error or
              "no version is loaded")
    return serving_errors.not_found(f"Servable not found for request: {request}: {detail}")

  @staticmethod
  def _version_unavailable_error(name: str, number: int, version: Optional[_Version],
                                 request: str) -> serving_errors.ServingError:
    if version is not None and version.state in (State.START, State.LOADING):
      return serving_errors.unavailable(
          f"Servable not found for request: {request}: version {number} of model {name} is "
          "still loading")
    if version is not None and version.error is not None:
      detail = f"version {number} failed to load: {version.error.message}"
    else:
      detail = f"version {number} of model {name} is not loaded"
    return serving_errors.not_found(f"Servable not found for request: {request}: {detail}")

  # ------------------------------------------------------------------ status

  def version_statuses(
      self, spec: model_pb2.ModelSpec) -> List[get_model_status_pb2.ModelVersionStatus]:
    """GetModelStatus: the states of the model's versions, newest first."""
    if not spec.name:
      raise serving_errors.invalid_argument(
          "Missing model name in request: set model_spec.name")
    with self._lock:
      model = self._models.get(spec.name)
      if model is None or not model.versions:
        detail = f": {model.base_path_error}" if model is not None and model.base_path_error else ""
        raise serving_errors.not_found(f"Could not find any versions of model {spec.name}{detail}")
      choice = spec.WhichOneof("version_choice")
      if choice is None:
        numbers = sorted(model.versions, reverse=True)
      else:
        number = (spec.version.value if choice == "version"
                  else self._version_for_label(spec.name, model, spec.version_label))
        if number not in model.versions:
          raise serving_errors.not_found(f"Could not find version {number} of model {spec.name}")
        numbers = [number]
      statuses = []
      for number in numbers:
        version = model.versions[number]
        status = get_model_status_pb2.ModelVersionStatus(version=number, state=version.state)
        error = version.error
        if error is None and version.state == State.END and model.base_path_error:
          # Unloaded because its base path is gone or empty: say so, not OK.
          error = serving_errors.not_found(model.base_path_error)
        status.status.CopyFrom(error.to_status_proto() if error
                               else serving_errors.ok_status_proto())
        statuses.append(status)
      return statuses

  def wait_for_available(self, name: str, timeout_seconds: float) -> bool:
    """True once `name` has an AVAILABLE version (used by start-up logging and tests)."""
    deadline = time.monotonic() + timeout_seconds
    with self._changed:
      while True:
        model = self._models.get(name)
        if model is not None and model.available():
          return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
          return False
        self._changed.wait(remaining)
