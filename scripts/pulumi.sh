#!/usr/bin/env bash
# Any Pulumi command against this project's backend, with its passphrase and CLI:
#   npm run pulumi -- stack output endpoints [--stack NAME]
#   npm run --silent pulumi -- stack output --show-secrets --json credentials
# Honours PULUMI_BACKEND_URL and PULUMI_CONFIG_PASSPHRASE(_FILE) when they are set,
# exactly as deploy and destroy do (scripts/pulumi-env.sh).
set -euo pipefail
# shellcheck source=scripts/pulumi-env.sh
. "$(dirname "$0")/pulumi-env.sh"
cd "$PROJECT_DIR"
ensure_node_modules
ensure_pulumi_cli
QUIET_BACKEND=1 select_backend
"$PROJECT_DIR/scripts/ensure-provider-plugins.sh"
exec pulumi "$@"
