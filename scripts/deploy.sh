#!/usr/bin/env bash
# Deploys a stack (default: dev) of the private registry with `pulumi up`.
#   scripts/deploy.sh [--stack NAME] [--local-images] [extra pulumi up flags...]
# - installs npm dependencies when missing; finds or builds the Pulumi CLI;
# - backend: PULUMI_BACKEND_URL if set, else the backend you are logged in to,
#   else a file backend in ./.pulumi-state (no Pulumi Cloud account needed);
# - secrets passphrase: PULUMI_CONFIG_PASSPHRASE(_FILE) if set; with the
#   project-local backend, a generated one in ./.pulumi-state/passphrase (0600);
# - --local-images: for hosts that cannot pull, builds the registry and nginx
#   images from Debian packages and points the stack at them (pullImages=false).
set -euo pipefail
# shellcheck source=scripts/stack-env.sh
. "$(dirname "$0")/stack-env.sh"
prepare_stack "$@"
scripts/ensure-docker-engine.sh

if [ -n "$LOCAL_IMAGES" ]; then
  PRIVATE_REGISTRY_IMAGES="registry nginx" scripts/build-local-images.sh
  pulumi config set --stack "$STACK" registryImage private-registry/registry:2.8.2-debian
  pulumi config set --stack "$STACK" nginxImage private-registry/nginx:1.22.1-debian
  pulumi config set --stack "$STACK" pullImages false
fi

scripts/ensure-provider-plugins.sh
pulumi up --stack "$STACK" --yes "${PASSTHROUGH[@]}"
echo
echo "Registry endpoints: $(pulumi stack output --stack "$STACK" endpoints)"
echo "Log in with:        $(pulumi stack output --stack "$STACK" dockerLoginCommand)"
