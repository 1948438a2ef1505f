#!/usr/bin/env bash
# Builds llama-cpp-python (the local chat model's runtime) for ANY x86-64 CPU with AVX2 and
# installs it into the venv.
#
# Why not plain `pip install llama-cpp-python`: llama.cpp's default build is GGML_NATIVE
# (-march=native), so a wheel built on a Xeon with AVX-512 and AMX carries AMX kernels
# (ggml_backend_amx_mul_mat) that fault on the next machine, and pip's wheel cache does not
# key on CMAKE_ARGS, so a native wheel sticks. This script pins the instruction set instead.
#
# CPU features the built runtime needs (ragline_chat checks them at start-up and reports the
# local model `available: false` with the reason where one is missing):
#     sse4_2 avx avx2 fma f16c bmi2
# Never used: AVX-512 (any), AVX-VNNI, AMX. The script proves it: `objdump -d` of the built
# libraries must show no zmm register and no AMX tile instruction, or the install fails.
set -euo pipefail
VERSION=${1:?usage: install_llama_cpp.sh VERSION}
VENV=${VENV:?VENV must point at the virtualenv}
REQUIRED_CPU_FEATURES="sse4_2 avx avx2 fma f16c bmi2"
NOT_PORTABLE='%zmm|%k[0-7]\b|%[xy]mm(1[6-9]|2[0-9]|3[01])\b|\{1to[0-9]+\}|ldtilecfg|sttilecfg|tileloadd|tilestored|tilerelease|tilezero|tdpb[su][su]d|tdpbf16ps|tdpfp16ps'
FLAGS="-DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF -DGGML_CPU_ALL_VARIANTS=OFF -DGGML_BACKEND_DL=OFF \
-DGGML_SSE42=ON -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON \
-DGGML_AVX_VNNI=OFF -DGGML_AVX512=OFF -DGGML_AVX512_VBMI=OFF -DGGML_AVX512_VNNI=OFF \
-DGGML_AVX512_BF16=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"

# The wheel is kept outside the work tree, keyed by version and flags, so a fresh clone on
# the same machine (CI) reuses it and a change of flags rebuilds it.
key=$(printf '%s %s' "$VERSION" "$FLAGS" | sha256sum | cut -c1-12)
cache=${RAGLINE_WHEEL_CACHE:-$HOME/.cache/ragline/wheels}/llama-cpp-python-$VERSION-$key
if ! ls "$cache"/llama_cpp_python-*.whl >/dev/null 2>&1; then
  echo "install_llama_cpp.sh: building llama-cpp-python $VERSION for portable x86-64 (5-15 min on 2 cores)"
  mkdir -p "$cache.tmp"
  CMAKE_ARGS="$FLAGS" "$VENV/bin/pip" wheel -q --no-deps --no-cache-dir \
    --no-binary llama-cpp-python -w "$cache.tmp" "llama-cpp-python==$VERSION"
  rm -rf "$cache" && mv "$cache.tmp" "$cache"
fi
"$VENV/bin/pip" install -q --force-reinstall --no-deps "$cache"/llama_cpp_python-*.whl
# Its pure-Python dependencies, from the constraints like everything else.
"$VENV/bin/pip" install -q -c "$(dirname "$0")/../constraints.txt" \
  typing-extensions numpy diskcache jinja2

# Prove the build is portable: no AVX-512 instruction (zmm registers, opmask registers
# %k0-%k7, the upper 16 vector registers, embedded broadcasts) and no AMX (tile) instruction
# in any shipped native library. tests/unit/test_llama_portable.py checks the same.
lib_dir=$("$VENV/bin/python" -c 'import importlib.util, os; print(os.path.join(os.path.dirname(importlib.util.find_spec("llama_cpp").origin), "lib"))')
bad=0
for lib in "$lib_dir"/*.so*; do
  [ -f "$lib" ] || continue
  hits=$(objdump -d --no-show-raw-insn "$lib" | grep -cE "$NOT_PORTABLE" || true)
  if [ "$hits" != "0" ]; then
    echo "install_llama_cpp.sh: $lib has $hits AVX-512/AMX instructions: not portable" >&2
    bad=1
  fi
done
[ "$bad" = 0 ] || exit 1
echo "llama-cpp-python $VERSION installed: portable x86-64, needs: $REQUIRED_CPU_FEATURES"
