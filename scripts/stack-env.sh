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
  pulumi stack select "$STACK" 2>/dev/null || pulumi stack init "$STACK"
  "$PROJECT_DIR/scripts/ensure-provider-plugins.sh"
}
