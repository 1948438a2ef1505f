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
# The SQLite backend indexes _id as `_ferretdb_sjson->"_id"` but looks documents up with
# `_ferretdb_sjson->'$._id'`: the same JSON value, but an expression SQLite cannot match to
# that index, so every find/update/delete by _id scans and parses the whole table (ingest
# slowed down quadratically with the corpus). Look up by the indexed expression instead.
metadata="$work/internal/backends/sqlite/metadata/metadata.go"
sed -i "s|IDColumn = DefaultColumn + \"->'\$._id'\"|IDColumn = DefaultColumn + \`->\"_id\"\`|" "$metadata"
grep -q 'IDColumn = DefaultColumn + `->"_id"`' "$metadata" || {
  echo "install_ferretdb.sh: the _id lookup patch no longer applies to $VERSION" >&2
  exit 1
}
# The same backend serves only a filter of _id *alone* from that index: `{_id, state}` or
# `{_id, owner}` (compare-and-set updates) read the whole table. The patch selects by _id
# whenever a filter has one top-level _id equality; FerretDB's handler applies the whole
# filter to the rows it gets back anyway.
patch_file="$(cd "$(dirname "$0")" && pwd)/ferretdb-id-pushdown.patch"
(cd "$work" && git apply -p1 "$patch_file") || {
  echo "install_ferretdb.sh: the _id pushdown patch no longer applies to $VERSION" >&2
  exit 1
}
# FerretDB's handler reads, filters and writes back a document without a transaction, so
# concurrent $inc lose increments and a compare-and-set ({_id, owner: ""}) has several
# winners. The patch runs each update/findAndModify/delete of a collection under a lock of
# that collection (reads and inserts stay lock-free): single-document atomicity as MongoDB.
atomic_patch="$(cd "$(dirname "$0")" && pwd)/ferretdb-atomic-writes.patch"
(cd "$work" && git apply -p1 "$atomic_patch") || {
  echo "install_ferretdb.sh: the atomic writes patch no longer applies to $VERSION" >&2
  exit 1
}
# The handler's update command kept every statement's query open until the command ended;
# each holds one of the SQLite pool's 100 connections, so a bulk of more than 100 matching
# UpdateOne (auth's digest index at start-up, a usage flush) waited forever for a
# connection and wedged the database. The patch closes each statement's query in turn.
close_patch="$(cd "$(dirname "$0")" && pwd)/ferretdb-update-statement-close.patch"
(cd "$work" && git apply -p1 "$close_patch") || {
  echo "install_ferretdb.sh: the update statement close patch no longer applies to $VERSION" >&2
  exit 1
}
mkdir -p "$BIN"
(cd "$work" && go build -trimpath -o "$BIN/ferretdb" ./cmd/ferretdb)
# sed reads to the end (head -1 could SIGPIPE the binary and fail under pipefail).
"$BIN/ferretdb" --version | sed -n 1p
