#!/usr/bin/env bash
# Deploys a stack (default: dev) of the private registry with `pulumi up`.
#   scripts/deploy.sh [--stack NAME] [--local-images] [extra pulumi up flags...]
# - installs npm dependencies when missing; finds or builds the Pulumi CLI; installs
#   the provider plugins (from the plugin mirror where there is one);
# - backend and passphrase: see scripts/pulumi-env.sh (the README says it in words);
# - images: before anything is created, checks that the configured images are on the
#   Docker host or can be pulled. When the stack uses the default images and they
#   cannot be had, it builds the local Debian ones and uses them, saying so in one
#   line; images the user chose are never swapped: it stops with a message instead.
#   --local-images does that switch up front. PRIVATE_REGISTRY_OFFLINE=1 skips the
#   pull attempt (air-gapped hosts: a missing image counts as unpullable at once).
# Bash ensures the toolchain and the engine and runs `pulumi up`; what reads the
# project's and the stack's data (config with Pulumi.yaml's defaults, outputs, the image
# check) is scripts/deploy.ts, on the Automation API.
set -euo pipefail
# shellcheck source=scripts/stack-env.sh
. "$(dirname "$0")/stack-env.sh"
prepare_stack "$@"
# The stack's engine (dockerHost) for every docker command below; the local one when unset.
use_stack_engine
scripts/ensure-docker-engine.sh

log() { printf '[deploy] %s\n' "$*" >&2; }

# explain_containers: after a failed up, each container of this stack that is not up
# and healthy, by name and image, with its state and the last lines of its log and of
# its health check: the provider's own message names neither.
explain_containers() {
  local owner name state image health
  owner="$(run_ts scripts/deploy.ts owner --stack "$STACK")" || return 0
  docker ps -a --filter "label=private-registry.stack=$owner" --format '{{.Names}}' 2>/dev/null | while read -r name; do
    state="$(docker inspect --format '{{.State.Status}} (exit {{.State.ExitCode}}){{if .State.Health}}, health: {{.State.Health.Status}}{{end}}' "$name" 2>/dev/null)" || continue
    case "$state" in
      "running (exit 0)" | "running (exit 0), health: healthy" | "exited (exit 0)") continue ;;
    esac
    image="$(docker inspect --format '{{.Config.Image}}' "$name")"
    log "container $name (image $image) is $state; the last lines of its log:"
    docker logs --tail 8 "$name" 2>&1 | cut -c1-300 | sed 's/^/    /' >&2
    health="$(docker inspect --format '{{if .State.Health}}{{range .State.Health.Log}}{{.Output}}{{end}}{{end}}' "$name" | tail -n 3 | cut -c1-300)"
    [ -z "$health" ] || { log "its last health check said:"; printf '%s\n' "$health" | sed 's/^/    /' >&2; }
  done
}

# The images: checked, pulled, or the local ones built and set (scripts/deploy.ts images).
run_ts scripts/deploy.ts images --stack "$STACK" ${LOCAL_IMAGES:+--local-images}

# --refresh: what was deleted or stopped behind Pulumi's back (a container that the
# engine did not start again after a restart) is seen and made again, so that a
# deploy always converges on the config.
if ! pulumi up --stack "$STACK" --yes --skip-preview --refresh "${PASSTHROUGH[@]}" 2>&1 | pulumi_hints_as_npm; then
  explain_containers
  exit 1
fi
run_ts scripts/deploy.ts summary --stack "$STACK"
