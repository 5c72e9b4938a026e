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
set -euo pipefail
# shellcheck source=scripts/stack-env.sh
. "$(dirname "$0")/stack-env.sh"
prepare_stack "$@"
# The stack's engine (dockerHost) for every docker command below; the local one when unset.
use_stack_engine
scripts/ensure-docker-engine.sh

# What the default images fall back to here: the registry 3 build and Debian's nginx.
LOCAL_REGISTRY_IMAGE=private-registry/registry:3.1.1-debian
LOCAL_NGINX_IMAGE=private-registry/nginx:1.22.1-debian

log() { printf '[deploy] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# project_default KEY: the default Pulumi.yaml declares for KEY.
project_default() {
  awk -v key="$1" '
    $0 ~ "^  " key ":[[:space:]]*$" { inside = 1; next }
    inside && /^  [^ ]/ { exit }
    inside && /^    default:/ { sub(/^    default:[[:space:]]*/, ""); print; exit }' "$PROJECT_DIR/Pulumi.yaml"
}
config_value() { pulumi config get --stack "$STACK" "$1" 2>/dev/null || project_default "$1"; }

use_local_images() {
  PRIVATE_REGISTRY_IMAGES="registry3 nginx" scripts/build-local-images.sh
  pulumi config set --stack "$STACK" registryImage "$LOCAL_REGISTRY_IMAGE"
  pulumi config set --stack "$STACK" nginxImage "$LOCAL_NGINX_IMAGE"
  pulumi config set --stack "$STACK" pullImages false
}

# check_images: every configured image is present, or pulled now; else fall back or stop.
check_images() {
  local registry_image nginx_image pull image reason="" chosen=""
  registry_image="$(config_value registryImage)"
  nginx_image="$(config_value nginxImage)"
  pull="$(config_value pullImages)"
  [ "$registry_image" = "$(project_default registryImage)" ] || chosen=1
  [ "$nginx_image" = "$(project_default nginxImage)" ] || chosen=1
  for image in "$registry_image" "$nginx_image"; do
    docker image inspect "$image" >/dev/null 2>&1 && continue
    if [ "$pull" != true ]; then
      die "image '$image' (registryImage/nginxImage) is not on the Docker host and pullImages is false: load it there (docker load) or run: npm run deploy -- --stack $STACK --local-images"
    fi
    if [ -n "${PRIVATE_REGISTRY_OFFLINE:-}" ]; then
      reason="PRIVATE_REGISTRY_OFFLINE is set"
    elif ! reason="$(timeout 300 docker pull -q "$image" 2>&1 >/dev/null)"; then
      reason="$(printf '%s' "${reason:-timed out}" | tail -n 1)"
    else
      continue
    fi
    if [ -n "$chosen" ]; then
      die "image '$image' (registryImage/nginxImage on stack $STACK) is not on the Docker host and cannot be pulled ($reason); nothing was created. Load it there, or run: npm run deploy -- --stack $STACK --local-images"
    fi
    log "the default image $image cannot be pulled here ($reason): using $LOCAL_REGISTRY_IMAGE and $LOCAL_NGINX_IMAGE built from Debian packages, set on stack $STACK"
    use_local_images
    return 0
  done
}

# explain_containers: after a failed up, each container of this stack that is not up
# and healthy, by name and image, with its state and the last lines of its log and of
# its health check: the provider's own message names neither.
explain_containers() {
  local owner name state image health
  owner="$(sed -n 's/^name:[[:space:]]*//p' "$PROJECT_DIR/Pulumi.yaml" | head -n 1)/$STACK"
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

if [ -n "$LOCAL_IMAGES" ]; then use_local_images; else check_images; fi

# --refresh: what was deleted or stopped behind Pulumi's back (a container that the
# engine did not start again after a restart) is seen and made again, so that a
# deploy always converges on the config.
if ! pulumi up --stack "$STACK" --yes --skip-preview --refresh "${PASSTHROUGH[@]}" 2>&1 | pulumi_hints_as_npm; then
  explain_containers
  exit 1
fi
echo
echo "Registry endpoints: $(pulumi stack output --stack "$STACK" endpoints --json | node -e 'process.stdout.write(JSON.parse(require("fs").readFileSync(0, "utf8")).join(" "))')"
echo "Log in with (one line per user; run from $PROJECT_DIR):"
# shellcheck disable=SC2016 # JavaScript, not shell
pulumi stack output --stack "$STACK" dockerLoginCommands --json | node -e '
  for (const line of Object.values(JSON.parse(require("fs").readFileSync(0, "utf8")))) console.log(`  ${line}`);'
