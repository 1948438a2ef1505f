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
# The OpenAPI 3.1 document of the gateway, from the descriptor set and the gateway's route
# table (tools/ragline_openapi), beside the renderer of GET /docs (Swagger UI from npm,
# pinned in tools/docs-ui). Image builds skip both (the build-tools venv has neither the
# project nor node): the auth image copies the host's gen/openapi/.
if [ "${RAGLINE_SKIP_OPENAPI:-0}" != 1 ]; then
  mkdir -p gen.tmp/openapi
  PYTHONPATH="$PWD/tools${PYTHONPATH:+:$PYTHONPATH}" "$VENV/bin/python" -m ragline_openapi \
    gen.tmp/ragline.binpb gen.tmp/openapi/openapi.json
  ui=tools/docs-ui/node_modules/swagger-ui-dist
  [ -f "$ui/swagger-ui-bundle.js" ] || npm ci --prefix tools/docs-ui --no-audit --no-fund --silent
  cp "$ui/swagger-ui-bundle.js" "$ui/swagger-ui.css" gen.tmp/openapi/
fi
rm -rf gen && mv gen.tmp gen
# Make the generated tree importable from the venv.
site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$PWD/gen/python" > "$site/ragline_generated.pth"
