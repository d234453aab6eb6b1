"""The calling process's resident memory and its peak, with the peak reset at will.

Linux keeps a process's peak resident set size (VmHWM in /proc/self/status); writing
"5" to /proc/self/clear_refs resets it to the current size, so the peak of one stretch
of work can be read after it without starting a new process.
"""

_STATUS = "/proc/self/status"
_CLEAR_REFS = "/proc/self/clear_refs"


def _status_bytes(field: str) -> int:
  with open(_STATUS) as f:
    for line in f:
      if line.startswith(field + ":"):
        value, unit = line.split()[1:3]
        if unit != "kB":
          raise ValueError(f"{_STATUS}: {field} is in {unit!r}, expected kB")
        return int(value) * 1024
  raise ValueError(f"{_STATUS} has no {field} line")


def resident_bytes() -> int:
  """The process's resident set size now."""
  return _status_bytes("VmRSS")


def peak_resident_bytes() -> int:
  """The largest resident set size since the process started or reset_peak()."""
  return _status_bytes("VmHWM")


def reset_peak() -> None:
  """Makes the peak the current resident size (Linux 4.0 or later)."""
  with open(_CLEAR_REFS, "w") as f:
    f.write("5")
