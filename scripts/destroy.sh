#!/usr/bin/env bash
# Destroys a stack (default: dev): containers, network, client-side CA files,
# and the data volume unless keepDataOnDestroy is true (the default).
#   scripts/destroy.sh [--stack NAME] [extra pulumi destroy flags...]
set -euo pipefail
# shellcheck source=scripts/stack-env.sh
. "$(dirname "$0")/stack-env.sh"
prepare_stack "$@"
pulumi destroy --stack "$STACK" --yes --skip-preview "${PASSTHROUGH[@]}" 2>&1 | pulumi_hints_as_npm
