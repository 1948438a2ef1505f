"""Does this CPU have the instructions the local model's runtime was compiled for?

Checked before the runtime is started: a missing feature would be an illegal-instruction
crash in the middle of an answer, so the model is reported unavailable with the reason.
"""

from __future__ import annotations

from pathlib import Path

# Must match REQUIRED_CPU_FEATURES in scripts/install_llama_cpp.sh, which builds
# llama-cpp-python for exactly these (portable x86-64, no AVX-512 or AMX).
REQUIRED_CPU_FLAGS: tuple[str, ...] = ("sse4_2", "avx", "avx2", "fma", "f16c", "bmi2")

DEFAULT_CPUINFO = "/proc/cpuinfo"


def cpu_flags(text: str) -> set[str] | None:
    """The flags every processor listed in /proc/cpuinfo `text` has (None: no flags line,
    e.g. not an x86 CPU)."""
    common: set[str] | None = None
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() == "flags":
            flags = set(value.split())
            common = flags if common is None else common & flags
    return common


def cpu_problem(cpuinfo_path: str = DEFAULT_CPUINFO) -> str | None:
    """Why the local model cannot run on this CPU, or None when it can (or when there is
    no /proc/cpuinfo to read: then the start-up self-test alone decides)."""
    try:
        text = Path(cpuinfo_path).read_text(errors="replace")
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"cannot read the CPU's features from {cpuinfo_path}: {exc.strerror}"
    flags = cpu_flags(text)
    missing = [f for f in REQUIRED_CPU_FLAGS if flags is None or f not in flags]
    if not missing:
        return None
    return (
        f"this CPU lacks {', '.join(missing)}: the local model's runtime needs "
        f"{' '.join(REQUIRED_CPU_FLAGS)}"
    )
