#!/usr/bin/env bash
# Installs the gateway's Go tools into .bin/ from the Go module proxy, pinned:
#   ratelimit              envoyproxy/ratelimit's service (global rate limits on Redis). The
#                          project has no release tags; this is the pseudo-version of a commit
#                          the proxy serves (its go.mod has no replace directives, so
#                          `go install` builds it as published).
#   protoc-gen-go          Go message stubs, and
#   protoc-gen-go-grpc     Go gRPC stubs: local buf plugins of buf.gen.go.yaml (the committed
#                          client in clients/go; tests/e2e/test_go_stubs.py regenerates it).
#   bombardier             HTTP load generator for `python -m bench gateway` (a Go client
#                          costs a fraction of a Python one's CPU on the same cores).
#   grpcurl                gRPC client with server reflection (tests/e2e/test_grpc_reflection.py:
#                          `list` and `describe` through the gateway).
#   toxiproxy              Shopify's TCP fault proxy (the fault battery's network scenario,
#                          chaos/toxiproxy.py), installed as toxiproxy-server.
#   vegeta                 HTTP load generator with an open loop (the fault battery's
#                          overload scenario: a fixed rate whatever the answers).
# Usage: scripts/install_go_tools.sh [ratelimit|protoc-gen-go|protoc-gen-go-grpc|bombardier|grpcurl|toxiproxy|vegeta]...
set -euo pipefail
BIN=${BIN:-$(cd "$(dirname "$0")/.." && pwd)/.bin}
RATELIMIT_VERSION=v1.4.1-0.20260122083618-3fb702589d36
PROTOC_GEN_GO_VERSION=v1.36.12
PROTOC_GEN_GO_GRPC_VERSION=v1.6.0
BOMBARDIER_VERSION=v1.2.6
GRPCURL_VERSION=v1.9.3
TOXIPROXY_VERSION=v2.12.0
VEGETA_VERSION=v12.12.0
export GOFLAGS=-buildvcs=false
mkdir -p "$BIN"
tools=("$@")
[ ${#tools[@]} -gt 0 ] || tools=(ratelimit protoc-gen-go protoc-gen-go-grpc)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for tool in "${tools[@]}"; do
  case "$tool" in
    ratelimit)
      GOBIN="$work" go install "github.com/envoyproxy/ratelimit/src/service_cmd@${RATELIMIT_VERSION}"
      mv "$work/service_cmd" "$BIN/ratelimit"
      ;;
    protoc-gen-go)
      GOBIN="$BIN" go install "google.golang.org/protobuf/cmd/protoc-gen-go@${PROTOC_GEN_GO_VERSION}"
      ;;
    protoc-gen-go-grpc)
      GOBIN="$BIN" go install \
        "google.golang.org/grpc/cmd/protoc-gen-go-grpc@${PROTOC_GEN_GO_GRPC_VERSION}"
      ;;
    bombardier)
      GOBIN="$BIN" go install "github.com/codesenberg/bombardier@${BOMBARDIER_VERSION}"
      ;;
    grpcurl)
      GOBIN="$BIN" go install "github.com/fullstorydev/grpcurl/cmd/grpcurl@${GRPCURL_VERSION}"
      ;;
    toxiproxy)
      GOBIN="$work" go install "github.com/Shopify/toxiproxy/v2/cmd/server@${TOXIPROXY_VERSION}"
      mv "$work/server" "$BIN/toxiproxy-server"
      ;;
    vegeta)
      GOBIN="$BIN" go install "github.com/tsenart/vegeta/v12@${VEGETA_VERSION}"
      ;;
    *) echo "unknown tool $tool" >&2; exit 2 ;;
  esac
  echo "installed $BIN/$tool"
done
