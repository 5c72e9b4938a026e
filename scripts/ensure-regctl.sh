#!/usr/bin/env bash
# Prints the path of regclient's regctl (the registry client `npm run gc -- --retention`
# lists and deletes tags with), building it first if it is not cached:
#   bash scripts/ensure-regctl.sh     ->  /root/.cache/private-registry/regctl-v0.11.7/regctl
# Built as scripts/build-local-images.sh builds the registry 3 binary: a pinned version
# from the Go module proxy (`go install`, CGO_ENABLED=0), cached by version outside the
# repo, installed atomically (a temporary GOBIN, then mv), so a concurrent or killed
# build never leaves half a file. Nothing else goes on stdout.
set -euo pipefail

# The newest release the Go module proxy serves (checked 2026-12 with
# `go list -m -versions github.com/regclient/regclient`: ... v0.11.5 v0.11.6 v0.11.7).
REGCTL_VERSION=v0.11.7
CACHE_ROOT="${PRIVATE_REGISTRY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/private-registry}"
REGCTL_BIN="$CACHE_ROOT/regctl-$REGCTL_VERSION/regctl"

log() { printf '[regctl] %s\n' "$*" >&2; }

if [ -x "$REGCTL_BIN" ]; then
  printf '%s\n' "$REGCTL_BIN"
  exit 0
fi
# Go is often installed outside the PATH of a non-login shell (cron, CI).
command -v go >/dev/null 2>&1 || [ ! -x /usr/local/go/bin/go ] || PATH="/usr/local/go/bin:$PATH"
command -v go >/dev/null 2>&1 || {
  log "error: building regctl $REGCTL_VERSION needs Go (1.26+, or any Go that may fetch a toolchain) and the Go module proxy"
  exit 1
}
module=github.com/regclient/regclient
mkdir -p "$(dirname "$REGCTL_BIN")"
gobin="$(mktemp -d "$(dirname "$REGCTL_BIN")/build.XXXXXX")"
trap 'rm -rf "$gobin"' EXIT
log "building $module/cmd/regctl@$REGCTL_VERSION with Go, once (measured 70 s with nothing downloaded or compiled yet, 14 s with a warm Go cache)"
start=$SECONDS
if ! GOBIN="$gobin" CGO_ENABLED=0 go install -trimpath \
  -ldflags "-s -w -X $module/internal/version.vcsTag=$REGCTL_VERSION" \
  "$module/cmd/regctl@$REGCTL_VERSION" >"$gobin/build.log" 2>&1; then
  log "go install failed; last lines:"
  tail -n 20 "$gobin/build.log" >&2
  exit 1
fi
mv "$gobin/regctl" "$REGCTL_BIN"
log "built $REGCTL_BIN in $((SECONDS - start)) s"
printf '%s\n' "$REGCTL_BIN"
