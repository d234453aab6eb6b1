"""How much the benchmark measures: the full run, and the quick run the smoke test uses.

Every timed loop is bounded by a count and a time. The full run's bounds keep it under
ten minutes on a 2-core machine, servers' start-up included; the quick run only checks
that every path works and its figures mean nothing.
"""

import dataclasses
from typing import Dict, Tuple

KIB = 1024
MIB = 1024 * KIB
LARGE_PAYLOAD = 64 * MIB


@dataclasses.dataclass(frozen=True)
class Settings:
  repetitions: int
  # Call latency and fan-out: calls per repetition and method, bounded by time too.
  latency_calls: int
  latency_seconds: float
  warmup_calls: int
  fan_outs: Tuple[int, ...]
  # Payload sweep: bytes of the float32 tensor sent and returned.
  payload_bytes: Tuple[int, ...]
  # The same, op <-> the C-core echo server, with the calling process's peak memory.
  c_core_payload_bytes: Tuple[int, ...]
  payload_calls: int
  payload_seconds: float
  # Repetitions for payloads of LARGE_PAYLOAD bytes or more, whose calls take seconds.
  large_payload_repetitions: int
  # Model server throughput.
  concurrencies: Tuple[int, ...]
  throughput_repetitions: int
  throughput_max_requests: int
  throughput_seconds: float
  throughput_warmup_seconds: float
  # REST vs gRPC: float32 values in the one Predict timed each way.
  rest_vs_grpc_elements: int
  # Sharded embedding.
  shard_counts: Tuple[int, ...]
  embedding_vocab_size: int
  embedding_dim: int
  embedding_batch_size: int

  def to_json(self) -> Dict[str, object]:
    return dataclasses.asdict(self)

  def payload_repetitions(self, num_bytes: int) -> int:
    return self.large_payload_repetitions if num_bytes >= LARGE_PAYLOAD else self.repetitions


FULL = Settings(
    repetitions=5,
    latency_calls=300,
    latency_seconds=1.0,
    warmup_calls=20,
    fan_outs=(1, 2, 4, 8, 16),
    payload_bytes=(4 * KIB, 256 * KIB, 4 * MIB, 64 * MIB),
    c_core_payload_bytes=(4 * KIB, 256 * KIB, 4 * MIB, 64 * MIB, 256 * MIB),
    payload_calls=100,
    payload_seconds=1.0,
    large_payload_repetitions=3,
    concurrencies=(1, 8, 32),
    throughput_repetitions=3,
    throughput_max_requests=100_000,
    throughput_seconds=1.5,
    throughput_warmup_seconds=0.3,
    rest_vs_grpc_elements=1 << 20,
    shard_counts=(1, 2, 4, 8),
    embedding_vocab_size=20_000,
    embedding_dim=64,
    embedding_batch_size=256,
)

QUICK = Settings(
    repetitions=2,
    latency_calls=10,
    latency_seconds=0.2,
    warmup_calls=2,
    fan_outs=(1, 2),
    payload_bytes=(4 * KIB, 256 * KIB),
    c_core_payload_bytes=(4 * KIB, 256 * KIB),
    payload_calls=3,
    payload_seconds=0.2,
    large_payload_repetitions=2,
    concurrencies=(1, 8),
    throughput_repetitions=1,
    throughput_max_requests=50,
    throughput_seconds=0.2,
    throughput_warmup_seconds=0.05,
    rest_vs_grpc_elements=1 << 10,
    shard_counts=(1, 2),
    embedding_vocab_size=1_000,
    embedding_dim=8,
    embedding_batch_size=16,
)


def size_label(num_bytes: int) -> str:
  if num_bytes % MIB == 0:
    return f"{num_bytes // MIB} MiB"
  if num_bytes % KIB == 0:
    return f"{num_bytes // KIB} KiB"
  return f"{num_bytes} B"
