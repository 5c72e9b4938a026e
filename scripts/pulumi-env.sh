# shellcheck shell=bash
# Sourced by every script that drives Pulumi (deploy, destroy, pulumi, test): the one
# place that decides the CLI on PATH, the backend and the secrets passphrase, so a
# user and a test can never drive a stack in two different ways. Not executable.

# Never reach for the update check or plugin downloads: on machines without
# access to Pulumi's download site they only fail, slowly.
export PULUMI_SKIP_UPDATE_CHECK=true
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION="${PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION:-true}"

PROJECT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Generated passphrases live here, apart from the state: a copy of the state alone
# cannot be decrypted.
PASSPHRASE_DIR="${PRIVATE_REGISTRY_PASSPHRASE_DIR:-${XDG_CONFIG_HOME:-$HOME/.config}/private-registry}"

ensure_node_modules() {
  # npm ci when node_modules is missing or older than the lock file.
  if [ ! -d "$PROJECT_DIR/node_modules/@pulumi/pulumi" ] || [ ! -x "$PROJECT_DIR/node_modules/.bin/tsx" ] \
    || [ "$PROJECT_DIR/package-lock.json" -nt "$PROJECT_DIR/node_modules/.package-lock.json" ]; then
    echo "[setup] installing npm dependencies (npm ci)" >&2
    (cd "$PROJECT_DIR" && npm ci --no-audit --no-fund >&2)
  fi
}

# run_ts FILE ARGS...: one of the scripts' TypeScript parts (FILE relative to the
# project), with tsx (a devDependency; ensure_node_modules first). They read Pulumi.yaml,
# stack config and outputs on the Automation API, with this environment (backend,
# passphrase, the CLI on PATH): nothing secret goes on a command line.
run_ts() {
  local file="$1"
  shift
  "$PROJECT_DIR/node_modules/.bin/tsx" "$PROJECT_DIR/$file" "$@"
}

ensure_pulumi_cli() {
  local bin_dir
  bin_dir="$("$PROJECT_DIR/scripts/install-pulumi-toolchain.sh" | tail -n 1)"
  case "$bin_dir" in /*) export PATH="$bin_dir:$PATH" ;; esac
  command -v pulumi >/dev/null 2>&1 || { echo "[setup] error: no Pulumi CLI" >&2; return 1; }
}

# select_backend: PULUMI_BACKEND_URL if set, else the backend `pulumi login` chose,
# else a file backend in ./.pulumi-state. With a file backend and no passphrase
# given (PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE), a generated one.
# QUIET_BACKEND=1 leaves out the line that names the backend.
select_backend() {
  if [ -z "${PULUMI_BACKEND_URL:-}" ] && ! pulumi whoami >/dev/null 2>&1; then
    mkdir -p "$PROJECT_DIR/.pulumi-state"
    export PULUMI_BACKEND_URL="file://$PROJECT_DIR/.pulumi-state"
  fi
  local backend
  backend="${PULUMI_BACKEND_URL:-$(pulumi whoami --verbose 2>/dev/null | sed -n 's/^Backend URL: //p')}"
  [ -n "${QUIET_BACKEND:-}" ] || echo "[stack] backend: ${backend:-unknown}" >&2
  case "$backend" in
    file://*) ;;
    *) return 0 ;;
  esac
  [ -z "${PULUMI_CONFIG_PASSPHRASE+x}" ] && [ -z "${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ] || return 0
  # One passphrase per file backend, named after its path.
  local state_dir="${backend#file://}" passphrase_file legacy
  passphrase_file="$PASSPHRASE_DIR/passphrase-$(printf '%s' "$state_dir" | sha256sum | cut -c1-16)"
  legacy="$state_dir/passphrase"
  if [ ! -s "$passphrase_file" ] && [ -s "$legacy" ]; then
    # Earlier versions kept it inside the state folder; move it out.
    (umask 077 && mkdir -p "$PASSPHRASE_DIR" && cp "$legacy" "$passphrase_file") && rm -f "$legacy"
    echo "[stack] moved the secrets passphrase out of the state folder to $passphrase_file" >&2
  fi
  if [ ! -s "$passphrase_file" ]; then
    (umask 077 && mkdir -p "$PASSPHRASE_DIR" \
      && node -e 'process.stdout.write(require("crypto").randomBytes(32).toString("base64"))' >"$passphrase_file")
    echo "[stack] generated the secrets passphrase for $state_dir in $passphrase_file: back it up apart from the state" >&2
  fi
  export PULUMI_CONFIG_PASSPHRASE_FILE="$passphrase_file"
}
