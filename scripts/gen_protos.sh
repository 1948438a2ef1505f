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
# Wire-compatible subsets of Envoy's API (ext_authz, access logs) for the auth service.
mapfile -t envoy_files < <(cd protos && find envoy_api -name '*.proto' | sort)
"$VENV/bin/python" -m grpc_tools.protoc -Iprotos \
  --python_out=gen.tmp/python --pyi_out=gen.tmp/python --grpc_python_out=gen.tmp/python \
  "${envoy_files[@]/#/protos/}"
# Packages for the generated tree (protoc does not write __init__.py files).
find gen.tmp/python/ragline gen.tmp/python/envoy_api -type d -exec touch {}/__init__.py \;
# The OpenAPI document of the REST API, from the google.api.http annotations
# (grpc-gateway's protoc-gen-openapiv2, pinned in scripts/install_go_tools.sh). Image builds
# skip it (no Go there): the auth image copies the host's gen/openapi/openapi.json.
if [ "${RAGLINE_SKIP_OPENAPI:-0}" != 1 ]; then
  [ -x .bin/protoc-gen-openapiv2 ] || BIN="$PWD/.bin" scripts/install_go_tools.sh protoc-gen-openapiv2
  "$VENV/bin/buf" generate --template buf.gen.yaml --path protos/ragline
  "$VENV/bin/python" services/auth/ragline_auth/openapi.py gen.tmp/openapi/ragline.swagger.json
fi
rm -rf gen && mv gen.tmp gen
# Make the generated tree importable from the venv.
site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$PWD/gen/python" > "$site/ragline_generated.pth"
