# shellcheck shell=bash
# Sourced by the deploy, destroy and test scripts: puts a Pulumi CLI on PATH
# (an installed one, else one built from Go modules) and keeps every Pulumi
# command offline-safe. Not executable on its own.

# Never reach for the update check or plugin downloads: on machines without
# access to Pulumi's download site they only fail, slowly.
export PULUMI_SKIP_UPDATE_CHECK=true
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION="${PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION:-true}"

PROJECT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

ensure_node_modules() {
  # npm ci when node_modules is missing or older than the lock file.
  if [ ! -d "$PROJECT_DIR/node_modules/@pulumi/pulumi" ] || [ "$PROJECT_DIR/package-lock.json" -nt "$PROJECT_DIR/node_modules/.package-lock.json" ]; then
    echo "[setup] installing npm dependencies (npm ci)" >&2
    (cd "$PROJECT_DIR" && npm ci --no-audit --no-fund >&2)
  fi
}

ensure_pulumi_cli() {
  local bin_dir
  bin_dir="$("$PROJECT_DIR/scripts/install-pulumi-toolchain.sh" | tail -n 1)"
  case "$bin_dir" in /*) export PATH="$bin_dir:$PATH" ;; esac
  command -v pulumi >/dev/null 2>&1 || { echo "[setup] error: no Pulumi CLI" >&2; return 1; }
}
