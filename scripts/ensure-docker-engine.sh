#!/usr/bin/env bash
# Makes sure a Docker engine answers on this machine.
# - If `docker version` already answers (DOCKER_HOST or the default socket), it does nothing.
# - Otherwise, on Debian: installs Debian's `docker.io` (dockerd 20.10) and starts dockerd
#   by hand, because these machines have no systemd and no engine running at boot.
# Idempotent: a second run only calls `docker version`.
# Facts behind the choices: /work/shared/docs/sandbox-docker-engine.md
set -euo pipefail

DEFAULT_SOCKET="unix:///var/run/docker.sock"
DOCKERD_LOG="${DOCKERD_LOG:-/var/log/dockerd-private-registry.log}"
CONTAINERD_PIDFILE="/var/run/docker/containerd/containerd.pid"
DOCKERD_PIDFILE="/var/run/docker.pid"
WAIT_SECONDS="${DOCKER_ENGINE_WAIT_SECONDS:-30}"

log() { printf '[docker-engine] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

engine_answers() { docker version >/dev/null 2>&1; }

if command -v docker >/dev/null 2>&1 && engine_answers; then
  log "engine answers at ${DOCKER_HOST:-$DEFAULT_SOCKET} (server $(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?')); nothing to do"
  exit 0
fi

# We can only start a local engine on the default socket; a remote DOCKER_HOST is not ours to start.
if [ -n "${DOCKER_HOST:-}" ] && [ "$DOCKER_HOST" != "$DEFAULT_SOCKET" ]; then
  die "DOCKER_HOST=$DOCKER_HOST does not answer; start that engine yourself, or unset DOCKER_HOST to use a local one"
fi

[ -r /etc/debian_version ] || die "no Docker engine answers and this is not a Debian machine; install and start Docker yourself"

# Installing packages and running dockerd need root.
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || die "not root and no sudo: cannot install or start dockerd"
  SUDO=(sudo)
fi

if ! dpkg-query -W -f='${Status}' docker.io 2>/dev/null | grep -q 'install ok installed'; then
  log "installing Debian's docker.io (apt-get update + install --no-install-recommends)"
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io >&2
else
  log "docker.io is installed ($(dpkg-query -W -f='${Version}' docker.io))"
fi
command -v dockerd >/dev/null 2>&1 || die "dockerd not found after installing docker.io"
command -v docker >/dev/null 2>&1 || die "docker CLI not found after installing docker.io"

# pid_alive PIDFILE NAME: true when the pid in PIDFILE is a live process named NAME.
# A just-killed dockerd lingers as a zombie (state Z) for a moment: that is not alive.
pid_alive() {
  local pid stat
  pid="$("${SUDO[@]}" cat "$1" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  stat="$(cat "/proc/$pid/stat" 2>/dev/null || true)"
  [[ "$stat" == "$pid ($2) "[!ZX]* ]]
}

# /var/run is on disk here, so pid files of a killed engine survive; a stale containerd.pid
# makes the next dockerd time out waiting for containerd.
for entry in "$CONTAINERD_PIDFILE:containerd" "$DOCKERD_PIDFILE:dockerd"; do
  file="${entry%%:*}" name="${entry##*:}"
  if "${SUDO[@]}" test -e "$file" && ! pid_alive "$file" "$name"; then
    log "removing stale $file"
    "${SUDO[@]}" rm -f "$file"
  fi
done

if pid_alive "$DOCKERD_PIDFILE" dockerd; then
  # A dockerd is already starting (or hung): do not start a second one, just wait for it.
  log "dockerd is already running (pid $(cat "$DOCKERD_PIDFILE")); waiting for it to answer"
else
  log "starting dockerd (log: $DOCKERD_LOG)"
  # setsid + nohup: dockerd must outlive this shell and the session that ran it.
  # cgroupfs driver: there is no systemd to act as cgroup manager.
  # shellcheck disable=SC2016 # $1/$2 expand in the inner sh
  "${SUDO[@]}" sh -c 'setsid nohup dockerd --host "$1" --exec-opt native.cgroupdriver=cgroupfs >>"$2" 2>&1 </dev/null &' \
    sh "$DEFAULT_SOCKET" "$DOCKERD_LOG"
fi

deadline=$((SECONDS + WAIT_SECONDS))
until engine_answers; do
  if [ "$SECONDS" -ge "$deadline" ]; then
    log "last lines of $DOCKERD_LOG:"
    "${SUDO[@]}" tail -n 20 "$DOCKERD_LOG" >&2 || true
    die "dockerd did not answer within ${WAIT_SECONDS}s"
  fi
  sleep 0.5
done
log "engine answers at $DEFAULT_SOCKET (server $(docker version --format '{{.Server.Version}}'))"
