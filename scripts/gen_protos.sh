#!/usr/bin/env bash
# Builds everything generated from protos/ into gen/: the descriptor set Envoy loads
# (with imports, so google.rpc.Status and ErrorInfo resolve) and the Python stubs.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
rm -rf gen.tmp && mkdir -p gen.tmp/python
"$VENV/bin/buf" build -o gen.tmp/ragline.binpb
mapfile -t files < <(cd protos && find ragline -name '*.proto' | sort)
"$VENV/bin/python" -m grpc_tools.protoc -Iprotos \
  --python_out=gen.tmp/python --pyi_out=gen.tmp/python --grpc_python_out=gen.tmp/python \
  "${files[@]/#/protos/}"
# Packages for the generated tree (protoc does not write __init__.py files).
find gen.tmp/python/ragline -type d -exec touch {}/__init__.py \;
rm -rf gen && mv gen.tmp gen
# Make the generated tree importable from the venv.
site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$PWD/gen/python" > "$site/ragline_generated.pth"
