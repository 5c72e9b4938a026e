# shellcheck shell=bash
# Sourced by deploy.sh and destroy.sh: arguments, npm packages, CLI, backend, stack.
# shellcheck source=scripts/pulumi-env.sh
. "$(dirname "${BASH_SOURCE[0]}")/pulumi-env.sh"

STACK="dev"
LOCAL_IMAGES=""  # read by deploy.sh
export LOCAL_IMAGES
PASSTHROUGH=()

parse_stack_args() {
  while [ $# -gt 0 ]; do
    case "$1" in
      --stack | -s) STACK="$2"; shift 2 ;;
      --stack=*) STACK="${1#*=}"; shift ;;
      --local-images) LOCAL_IMAGES=1; shift ;;
      *) PASSTHROUGH+=("$1"); shift ;;
    esac
  done
}

prepare_stack() {
  parse_stack_args "$@"
  cd "$PROJECT_DIR" || return
  ensure_node_modules
  ensure_pulumi_cli
  select_backend
  pulumi stack select "$STACK" 2>/dev/null || init_stack
  "$PROJECT_DIR/scripts/ensure-provider-plugins.sh"
}

# init_stack: a new stack in this backend. A stack file salted with another passphrase
# (its `encryptionsalt` came from someone else's machine) is salted again for this one
# when it holds no secrets; with secrets it stops, saying which passphrase they need.
init_stack() {
  local out file="$PROJECT_DIR/Pulumi.$STACK.yaml"
  out="$(pulumi stack init "$STACK" 2>&1)" && { [ -z "$out" ] || printf '%s\n' "$out" >&2; return 0; }
  if ! printf '%s' "$out" | grep -q 'incorrect passphrase' || ! grep -q '^encryptionsalt:' "$file" 2>/dev/null; then
    printf '%s\n' "$out" >&2
    return 1
  fi
  if grep -q 'secure:' "$file"; then
    echo "[stack] error: Pulumi.$STACK.yaml holds secrets encrypted with another passphrase than this backend's (its encryptionsalt does not match): set PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE to the passphrase that stack file was made with, or delete its 'encryptionsalt' line and its 'secure:' values and set those secrets again; nothing was created" >&2
    return 1
  fi
  sed -i '/^encryptionsalt:/d' "$file"
  echo "[stack] Pulumi.$STACK.yaml was salted for another passphrase and holds no secrets: salted it again for this backend's passphrase" >&2
  pulumi stack init "$STACK" >&2
}

# pulumi_hints_as_npm: Pulumi's own hints name `pulumi …`, which need not be on the
# user's PATH; the project's way to run it is `npm run pulumi -- …`.
pulumi_hints_as_npm() {
  sed -u 's/`pulumi \([a-z]\)/`npm run pulumi -- \1/g'
}

# use_stack_engine: point the docker CLI at the engine the stack's registry runs on
# (its dockerHost; nothing changes when that is not set). For tcp://, the client TLS
# material goes into a private temporary folder (0600 files) named by DOCKER_CERT_PATH,
# never onto a command line; cleanup_stack_engine removes it (an EXIT trap is set; a
# script that sets its own must call cleanup_stack_engine from it).
STACK_ENGINE_DIR=""
use_stack_engine() {
  local host file key
  host="$(pulumi config get --stack "$STACK" dockerHost 2>/dev/null || true)"
  [ -n "$host" ] || return 0
  export DOCKER_HOST="$host"
  unset DOCKER_CONTEXT DOCKER_TLS_VERIFY DOCKER_CERT_PATH
  case "$host" in
    tcp://*)
      STACK_ENGINE_DIR="$(umask 077 && mktemp -d "${TMPDIR:-/tmp}/private-registry-docker-tls-XXXXXX")"
      trap cleanup_stack_engine EXIT
      for file in ca:dockerTlsCaCert cert:dockerTlsCert key:dockerTlsKey; do
        key="${file#*:}"
        (umask 077 && pulumi config get --stack "$STACK" "$key" >"$STACK_ENGINE_DIR/${file%%:*}.pem") \
          || { echo "[stack] error: dockerHost is $host but $key is not set on stack $STACK" >&2; return 1; }
      done
      export DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH="$STACK_ENGINE_DIR"
      ;;
  esac
  echo "[stack] Docker engine: $host (dockerHost of stack $STACK)" >&2
}

cleanup_stack_engine() {
  [ -z "$STACK_ENGINE_DIR" ] || rm -rf "$STACK_ENGINE_DIR"
  STACK_ENGINE_DIR=""
}
