# shellcheck shell=bash
# Sourced by deploy.sh and destroy.sh: argument parsing, backend and stack selection.
# shellcheck source=scripts/pulumi-env.sh
. "$(dirname "${BASH_SOURCE[0]}")/pulumi-env.sh"

STACK="dev"
LOCAL_IMAGES=""  # read by deploy.sh
export LOCAL_IMAGES
PASSTHROUGH=()

parse_stack_args() {
  while [ $# -gt 0 ]; do
    case "$1" in
      --stack) STACK="$2"; shift 2 ;;
      --stack=*) STACK="${1#*=}"; shift ;;
      --local-images) LOCAL_IMAGES=1; shift ;;
      *) PASSTHROUGH+=("$1"); shift ;;
    esac
  done
}

select_backend_and_stack() {
  if [ -z "${PULUMI_BACKEND_URL:-}" ] && ! pulumi whoami >/dev/null 2>&1; then
    # No backend chosen: a file backend beside the project, set for this run only.
    mkdir -p "$PROJECT_DIR/.pulumi-state"
    export PULUMI_BACKEND_URL="file://$PROJECT_DIR/.pulumi-state"
  fi
  local backend
  backend="$(pulumi whoami --verbose 2>/dev/null | sed -n 's/^Backend URL: //p')"
  echo "[stack] backend: ${backend:-unknown}" >&2
  # File backends encrypt secrets with a passphrase; without one given, use a
  # generated one kept beside the project's state.
  case "$backend" in
    file://*)
      if [ -z "${PULUMI_CONFIG_PASSPHRASE:-}" ] && [ -z "${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ]; then
        local passphrase_file="$PROJECT_DIR/.pulumi-state/passphrase"
        mkdir -p "$PROJECT_DIR/.pulumi-state"
        if [ ! -s "$passphrase_file" ]; then
          (umask 077 && node -e 'process.stdout.write(require("crypto").randomBytes(32).toString("base64"))' >"$passphrase_file")
          echo "[stack] generated the secrets passphrase in $passphrase_file: back it up with the state" >&2
        fi
        export PULUMI_CONFIG_PASSPHRASE_FILE="$passphrase_file"
      fi
      ;;
  esac
  pulumi stack select "$STACK" 2>/dev/null || pulumi stack init "$STACK"
}

# The common start of deploy and destroy: arguments, npm packages, CLI, backend, stack.
prepare_stack() {
  parse_stack_args "$@"
  cd "$PROJECT_DIR" || return
  ensure_node_modules
  ensure_pulumi_cli
  select_backend_and_stack
}
