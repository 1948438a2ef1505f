"""The local model's runtime is built for any x86-64 CPU with AVX2: its native libraries hold
no AVX-512 or AMX instruction (a native build on a Xeon with AMX faulted on `ldtilecfg`).

The check is the one scripts/install_llama_cpp.sh runs after building; a control library
compiled with AVX-512 and AMX shows that the check can fail.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "install_llama_cpp.sh"


def script_value(name: str) -> str:
    match = re.search(rf"^{name}='?\"?(.*?)'?\"?$", SCRIPT.read_text(), re.MULTILINE)
    assert match, name
    return match.group(1)


def unportable_instructions(library: Path) -> list[str]:
    pattern = re.compile(script_value("NOT_PORTABLE"))
    listing = subprocess.run(
        ["objdump", "-d", "--no-show-raw-insn", str(library)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [line for line in listing.splitlines() if pattern.search(line)]


def test_the_installed_llama_cpp_libraries_hold_no_avx512_or_amx_code():
    spec = importlib.util.find_spec("llama_cpp")
    assert spec is not None and spec.origin, "llama-cpp-python is not installed (make setup)"
    libraries = sorted((Path(spec.origin).parent / "lib").glob("lib*.so"))
    assert any(lib.name == "libggml-cpu.so" for lib in libraries), libraries
    for library in libraries:
        found = unportable_instructions(library)
        assert not found, f"{library.name}: {len(found)} AVX-512/AMX instructions: {found[:3]}"


def test_the_check_finds_avx512_and_amx_code(tmp_path):
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.fail("gcc is needed to build the control library")
    source = tmp_path / "native.c"
    source.write_text(
        "#include <immintrin.h>\n"
        "void add(float *a, const float *b) {\n"
        "  _mm512_storeu_ps(a, _mm512_add_ps(_mm512_loadu_ps(a), _mm512_loadu_ps(b)));\n"
        "}\n"
        "void tiles(const void *config, const void *data) {\n"
        "  _tile_loadconfig(config); _tile_loadd(0, data, 64); _tile_release();\n"
        "}\n"
    )
    library = tmp_path / "libnative.so"
    subprocess.run(
        [
            gcc,
            "-O2",
            "-shared",
            "-fPIC",
            "-mavx512f",
            "-mamx-tile",
            str(source),
            "-o",
            str(library),
        ],
        check=True,
    )
    found = " ".join(unportable_instructions(library))
    assert "%zmm" in found and "ldtilecfg" in found and "tileloadd" in found


def test_the_build_pins_the_instruction_set():
    flags = SCRIPT.read_text().split('FLAGS="', 1)[1].split('"', 1)[0]
    assert "-DGGML_NATIVE=OFF" in flags
    for off in ("AVX512", "AMX_TILE", "AMX_INT8", "AMX_BF16", "AVX_VNNI"):
        assert f"-DGGML_{off}=OFF" in flags, off
