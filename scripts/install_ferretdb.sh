#!/usr/bin/env bash
# Installs FerretDB (MongoDB wire protocol over SQLite) into .bin/.
#
# `go install github.com/FerretDB/FerretDB/cmd/ferretdb@v1.24.2` builds, but the binary
# panics at start ("Invalid build/version/version.txt"): the module zip on the proxy lacks
# the version file that FerretDB's own build generates. So: fetch the same module from the
# Go module proxy, add that one file, and build cmd/ferretdb from it.
set -euo pipefail
VERSION=${1:-v1.24.2}
BIN=${BIN:-$(cd "$(dirname "$0")/.." && pwd)/.bin}
export GOFLAGS=-buildvcs=false
src_cache=$(go mod download -json "github.com/FerretDB/FerretDB@${VERSION}" | sed -n 's/.*"Dir": "\(.*\)",/\1/p')
work=$(mktemp -d)
trap 'chmod -R u+w "$work"; rm -rf "$work"' EXIT
cp -r "$src_cache/." "$work/"
chmod -R u+w "$work"
echo "$VERSION" > "$work/build/version/version.txt"
mkdir -p "$BIN"
(cd "$work" && go build -trimpath -o "$BIN/ferretdb" ./cmd/ferretdb)
# sed reads to the end (head -1 could SIGPIPE the binary and fail under pipefail).
"$BIN/ferretdb" --version | sed -n 1p
