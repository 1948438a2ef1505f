"""Build the fp32 and int8 ONNX files once and cache them on disk.

File names carry a digest of model.safetensors, the graph version, the attention form and
the quantisation settings, so a changed input never reuses a stale file. Files are written
to a temporary name and renamed into place, so a worker process that finds a file never
reads half of it; an advisory lock keeps concurrent workers from all building at once.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import platform
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import onnx

from .graph import GRAPH_VERSION, AttentionForm, build_encoder_model

Variant = Literal["fp32", "int8"]

_log = logging.getLogger(__name__)
_PREFIX = "all-minilm-l6-v2"


@dataclass(frozen=True)
class Artifact:
    path: Path
    built: bool  # False when an existing cached file was reused


@dataclass(frozen=True)
class QuantSettings:
    """quantize_dynamic settings; see the package docstring for how they were chosen."""

    per_channel: bool = True
    reduce_range: bool = False

    @property
    def tag(self) -> str:
        return "int8" + ("-pc" if self.per_channel else "") + ("-rr" if self.reduce_range else "")


def default_quant_settings() -> QuantSettings:
    # Without VNNI, x86 u8*s8 kernels sum pairs of products in int16 and can saturate;
    # 7-bit weights (reduce_range) avoid that at a small accuracy cost elsewhere.
    return QuantSettings(per_channel=True, reduce_range=_x86_without_vnni())


def ensure_model(
    variant: Variant,
    model_dir: Path,
    cache_dir: Path,
    attention: AttentionForm = "fused",
    quant: QuantSettings | None = None,
) -> Artifact:
    """Return the cached .onnx file for variant, building it first if needed."""
    weights = model_dir / "model.safetensors"
    stem = f"{_PREFIX}-{weights_digest(weights)[:16]}-g{GRAPH_VERSION}-{attention}"
    fp32_path = cache_dir / f"{stem}-fp32.onnx"

    def build_fp32(tmp: Path) -> None:
        onnx.save_model(build_encoder_model(model_dir, attention), str(tmp))

    fp32 = _ensure_file(fp32_path, build_fp32)
    if variant == "fp32":
        return fp32
    if variant != "int8":
        raise ValueError(f"unknown variant {variant!r}; expected 'fp32' or 'int8'")

    settings = quant or default_quant_settings()

    def build_int8(tmp: Path) -> None:
        quantize_int8(fp32.path, tmp, settings)

    return _ensure_file(cache_dir / f"{stem}-{settings.tag}.onnx", build_int8)


def quantize_int8(source: Path, target: Path, settings: QuantSettings) -> None:
    """Dynamic int8 quantisation of every weight MatMul (activations quantised per batch)."""
    # Imported here: onnxruntime.quantization is slow to import and only needed once.
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _quiet_root_warnings():
        quantize_dynamic(
            source,
            target,
            op_types_to_quantize=["MatMul"],  # weights only; attention stays fp32
            per_channel=settings.per_channel,
            reduce_range=settings.reduce_range,
            weight_type=QuantType.QInt8,
        )


@functools.lru_cache(maxsize=8)
def _digest(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def weights_digest(path: Path) -> str:
    """sha256 of the weights file, memoised per (path, size, mtime) within the process."""
    st = path.stat()
    return _digest(str(path.resolve()), st.st_size, st.st_mtime_ns)


def _ensure_file(target: Path, build: Callable[[Path], None]) -> Artifact:
    if target.is_file():
        return Artifact(target, built=False)
    target.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive_lock(target.parent / f".{target.name}.lock"):
        if target.is_file():  # another process built it while we waited
            return Artifact(target, built=False)
        _log.info("building %s", target.name)
        _atomic_write(target, build)
    return Artifact(target, built=True)


def _atomic_write(target: Path, write: Callable[[Path], None]) -> None:
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())  # a crash must not leave a renamed but empty file
        tmp.chmod(0o644)  # mkstemp makes 0600; other worker users may share the cache
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def _exclusive_lock(path: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # not POSIX: rely on the atomic rename alone
        yield
        return
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class _DropPreprocessHint(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


@contextlib.contextmanager
def _quiet_root_warnings() -> Iterator[None]:
    # quantize_dynamic logs a generic "consider pre-processing" hint on the root logger on
    # every call; that pre-processing (symbolic shape inference) needs sympy, not installed.
    root = logging.getLogger()
    hint_filter = _DropPreprocessHint()
    root.addFilter(hint_filter)
    try:
        yield
    finally:
        root.removeFilter(hint_filter)


def _x86_without_vnni() -> bool:
    if platform.machine().lower() not in {"x86_64", "amd64", "i386", "i686"}:
        return False
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False  # unknown CPU: assume a modern one
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags.update(line.partition(":")[2].split())
            break
    return not flags & {"avx512_vnni", "avx_vnni", "amx_int8"}
