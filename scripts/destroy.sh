#!/usr/bin/env bash
# Destroys a stack (default: dev): containers, network, client-side CA files,
# and the data volume unless keepDataOnDestroy is true (the default).
#   scripts/destroy.sh [--stack NAME] [extra pulumi destroy flags...]
set -euo pipefail
# shellcheck source=scripts/pulumi-env.sh
. "$(dirname "$0")/pulumi-env.sh"
# shellcheck source=scripts/stack-env.sh
. "$(dirname "$0")/stack-env.sh"
parse_stack_args "$@"
cd "$PROJECT_DIR"

ensure_node_modules
ensure_pulumi_cli
select_backend_and_stack
scripts/ensure-provider-plugins.sh
pulumi destroy --stack "$STACK" --yes "${PASSTHROUGH[@]}"
