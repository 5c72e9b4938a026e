#!/usr/bin/env bash
# Installs Debian packages that the tests run for real (nginx for `nginx -t`,
# ShellCheck, openssl), only those missing. Usage: ensure-debian-packages.sh CMD=PACKAGE...
# (CMD may be an absolute path instead: a file the package installs, e.g. an nginx module.)
set -euo pipefail

log() { printf '[debian-packages] %s\n' "$*" >&2; }

missing=()
for pair in "$@"; do
  case "${pair%%=*}" in
    /*) [ -e "${pair%%=*}" ] || missing+=("${pair#*=}") ;;
    *) command -v "${pair%%=*}" >/dev/null 2>&1 || missing+=("${pair#*=}") ;;
  esac
done
[ ${#missing[@]} -eq 0 ] && exit 0

command -v apt-get >/dev/null 2>&1 || { log "error: missing ${missing[*]} and no apt-get to install them"; exit 1; }
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo -n"
log "installing ${missing[*]}"
# Keep package scripts from starting services (nginx would take port 80).
policy=/usr/sbin/policy-rc.d
added_policy=""
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null && $SUDO chmod +x "$policy" && added_policy=1
fi
trap '[ -n "$added_policy" ] && $SUDO rm -f "$policy"' EXIT
# A fresh machine has no package lists yet.
$SUDO apt-get update -qq >/dev/null || $SUDO apt-get update
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
