#!/usr/bin/env bash
# The gRPC transport's stubs, generated from protos/ragline/*/v1 into
# ragline_client/_proto (committed; tests/e2e/test_python_sdk.py checks they are current).
# Imports of the generated modules are rewritten to ragline_client._proto.ragline..., so the
# SDK never imports the server's `ragline` package (gen/python). The google.api/google.rpc
# types come from googleapis-common-protos. Usage: gen_stubs.sh [OUT_DIR] (default: the
# package's _proto folder); PROTOS_DIR overrides the protos folder.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${1:-$here/ragline_client/_proto}"
py="${PYTHON:-$root/.venv/bin/python}"
protos="${PROTOS_DIR:-$root/protos}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mapfile -t files < <(cd "$protos" && find ragline -name '*.proto' | sort)
"$py" -m grpc_tools.protoc -I"$protos" \
  --python_out="$tmp" --pyi_out="$tmp" --grpc_python_out="$tmp" \
  "${files[@]/#/$protos/}"
find "$tmp" -name '*.py' -exec sed -i 's/^from ragline\./from ragline_client._proto.ragline./' {} +
find "$tmp/ragline" -type d -exec touch {}/__init__.py \;
printf '"""Generated gRPC stubs of the ragline v1 API (clients/python/scripts/gen_stubs.sh)."""\n' \
  > "$tmp/__init__.py"
rm -rf "$out" && mkdir -p "$(dirname "$out")" && cp -r "$tmp" "$out"
chmod -R u+rwX,go+rX "$out"
