#!/usr/bin/env bash
# Gives back the space of deleted images: runs the registry's garbage collector.
#   npm run gc -- [--stack NAME] [--dry-run]
#   npm run gc -- [--stack NAME] --retention [--dry-run] [--endpoint=HOST[:PORT]]
# With --retention it first deletes the tags the stack's `retention` setting lets go
# (scripts/retention.ts, with regctl from scripts/ensure-regctl.sh), live, through the
# proxy as any client; then it collects as below. With --dry-run as well it only lists
# every tag with keep or delete and why, and stops nothing.
# Safe by construction: the registry listens only inside the network namespace it
# shares with the proxy, so with the proxy stopped nothing can write while the
# collector runs. Afterwards the registry restarts (its blob cache must not claim
# what was collected) and the proxy starts again, whatever happened in between.
# With tlsTermination: registry there is no proxy: the registry stops, the collector
# runs in a one-off container on its volume, and the registry starts again.
set -euo pipefail
# shellcheck source=scripts/stack-env.sh
. "$(dirname "$0")/stack-env.sh"
DRY_RUN=""
RETENTION=""
ENDPOINT=()
args=()
for a in "$@"; do
  case "$a" in
    --dry-run) DRY_RUN=--dry-run ;;
    --retention) RETENTION=1 ;;
    --endpoint=*) ENDPOINT=("$a") ;;
    *) args+=("$a") ;;
  esac
done
prepare_stack "${args[@]}"
# The engine the registry runs on (the stack's dockerHost, else the local one).
use_stack_engine

log() { printf '[gc] %s\n' "$*" >&2; }

# The registry's container and the proxy's (none in the direct layout), from the stack's outputs.
containers="$(run_ts scripts/gc.ts --stack "$STACK")"
read -r registry proxy <<<"$containers"
# The swarm layout's names are services: their replicas share a bucket, which no one-off
# collector may sweep while any of them serves (docs/swarm.md).
if docker service inspect "$registry" >/dev/null 2>&1; then
  log "error: stack $STACK uses the swarm layout (service $registry): npm run gc is for the single-host layouts; nothing was changed (docs/swarm.md)"
  exit 1
fi

if [ -n "$RETENTION" ]; then
  # The tags go first, while clients keep pushing and pulling (each deletion is one
  # request of the registry API); the collection below then stops the proxy as always.
  REGCTL="$("$PROJECT_DIR/scripts/ensure-regctl.sh")"
  export REGCTL
  REGCTL="$REGCTL" run_ts scripts/retention.ts --stack "$STACK" ${DRY_RUN:+"$DRY_RUN"} ${ENDPOINT[@]+"${ENDPOINT[@]}"}
  if [ -n "$DRY_RUN" ]; then
    log "dry run: no tag deleted, nothing collected"
    exit 0
  fi
fi
wait_healthy() {
  local deadline=$((SECONDS + 90)) status
  until status="$(docker inspect -f '{{.State.Health.Status}}' "$1" 2>/dev/null)" && [ "$status" = healthy ]; do
    [ "$SECONDS" -lt "$deadline" ] || { log "error: $1 is ${status:-missing} after 90 s"; return 1; }
    sleep 1
  done
}

bring_back() {
  local rc=$?
  log "restarting $registry, then starting $proxy"
  docker restart "$registry" >/dev/null && wait_healthy "$registry" || rc=1
  docker start "$proxy" >/dev/null && wait_healthy "$proxy" || rc=1
  [ "$rc" -eq 0 ] && log "the registry is serving again"
  cleanup_stack_engine
  exit "$rc"
}

# The direct layout: the registry alone was stopped.
bring_back_registry() {
  local rc=$?
  log "starting $registry again"
  docker start "$registry" >/dev/null && wait_healthy "$registry" || rc=1
  [ "$rc" -eq 0 ] && log "the registry is serving again"
  cleanup_stack_engine
  exit "$rc"
}

docker exec "$registry" sh -c 'grep -A1 "^  delete:" /etc/docker/registry/config.yml | grep -q "enabled: true"' \
  || log "note: deleteEnabled is false on stack $STACK, so no image can have been deleted; collecting anyway"
# The official image calls it `registry`, Debian's package `docker-registry`.
find_binary='command -v registry || command -v docker-registry'

# collect COMMAND...: runs the collector, its last lines on stderr. A registry that has
# stored no image yet has no repositories folder, which the collector takes for an
# error ("Path not found"): there is nothing to collect then.
collect() {
  local out
  if out="$("$@" 2>&1)"; then
    printf '%s\n' "$out" | tail -n 5 >&2
  elif printf '%s' "$out" | grep -q 'Path not found: .*/docker/registry/v2/repositories'; then
    log "the registry has stored no image yet: nothing to collect"
  else
    printf '%s\n' "$out" | tail -n 5 >&2
    log "error: the garbage collector failed"
    return 1
  fi
}

if [ -z "$proxy" ]; then
  # tlsTermination: registry — the registry itself serves clients, so it stops; the
  # collector runs in a one-off container of the same image on the same volume, with
  # the registry's own config (piped, never on a command line) and no network.
  image="$(docker inspect -f '{{.Config.Image}}' "$registry")"
  log "stopping $registry: it serves clients directly in this layout, so nothing can write while the collector runs"
  docker stop "$registry" >/dev/null
  trap bring_back_registry EXIT
  # shellcheck disable=SC2317 # run through collect
  collect_offline() {
    docker cp "$registry:/etc/docker/registry/config.yml" - |
      docker run -i --rm --network none --volumes-from "$registry" --entrypoint sh "$image" -c \
        "tar -x -C /tmp && \$($find_binary) garbage-collect $DRY_RUN /tmp/config.yml"
  }
  start=$SECONDS
  collect collect_offline
  log "collected in $((SECONDS - start)) s"
  exit 0
fi

log "stopping $proxy: no client can reach the registry while it collects"
docker stop "$proxy" >/dev/null
trap bring_back EXIT
binary="$(docker exec "$registry" sh -c "$find_binary")"
start=$SECONDS
collect docker exec "$registry" "$binary" garbage-collect $DRY_RUN /etc/docker/registry/config.yml
log "collected in $((SECONDS - start)) s"
