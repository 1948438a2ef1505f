#!/usr/bin/env bash
# Ory Hydra (an OpenID Connect provider) for the single sign-on tests
# (tests/e2e/test_sso_oidc.py), built from the Go module proxy's source into .bin/hydra.
#
# `go install github.com/ory/hydra/v2@v2.3.0` refuses: hydra's go.mod has replace directives
# (its generated OpenAPI client as ./internal/httpclient, a fork of pop), which apply only to
# a main module. So this downloads the module, drops the client's replace (that folder is a
# nested module, left out of the module zip; the published hydra-client-go v2.2.1 that
# go.mod requires serves instead; the pop fork stays replaced) and builds it as the main
# module, with SQLite (the tests run Hydra on an in-memory SQLite database). 5-10 minutes on
# 2 cores the first time. Hydra's telemetry is turned off where it is started (--sqa-opt-out).
set -euo pipefail
BIN=${BIN:-$(cd "$(dirname "$0")/.." && pwd)/.bin}
HYDRA_VERSION=v2.3.0
export GOFLAGS="-buildvcs=false -mod=mod"
mkdir -p "$BIN"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dir=$(go mod download -json "github.com/ory/hydra/v2@${HYDRA_VERSION}" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
cp -r "$dir" "$work/src"
chmod -R u+w "$work/src"
cd "$work/src"
go mod edit -dropreplace github.com/ory/hydra-client-go/v2
CGO_ENABLED=1 go build -tags sqlite,sqlite_omit_load_extension,json1 \
  -ldflags "-X github.com/ory/hydra/v2/driver/config.Version=${HYDRA_VERSION}" \
  -o "$BIN/hydra" .
echo "installed $BIN/hydra ($HYDRA_VERSION)"
