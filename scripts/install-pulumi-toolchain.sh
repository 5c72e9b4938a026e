#!/usr/bin/env bash
# Builds the Pulumi CLI and the Node.js language host from Go modules when no
# installed CLI can be used (machines without access to Pulumi's download site).
# Idempotent: the binaries are cached outside the repository, keyed by version,
# so a second run only checks that they are there.
#
# Measured on a 2-core machine of the `polyglot` kind: see README "First run".
set -euo pipefail

PROJECT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The CLI at the version of the SDK that package.json pins.
PULUMI_VERSION="${PULUMI_VERSION:-$(node -p "require('$PROJECT_DIR/package.json').dependencies['@pulumi/pulumi']")}"
# The language host has lived in its own untagged Go module since v3.7x, and the
# Go module proxy here refuses that module at every version. v3.68.0 is the
# newest served sdk/v3 release that still carries it inside the sdk/v3 module
# (v3.90.0, the next one served, no longer does). Measured: it runs programs on
# the 3.248 CLI and SDK (tests/engine.test.ts).
LANGUAGE_HOST_SDK_VERSION="${LANGUAGE_HOST_SDK_VERSION:-3.68.0}"
CACHE_ROOT="${PRIVATE_REGISTRY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/private-registry}"
TOOLCHAIN_DIR="$CACHE_ROOT/pulumi-v${PULUMI_VERSION}-nodejs-v${LANGUAGE_HOST_SDK_VERSION}"
BIN_DIR="$TOOLCHAIN_DIR/bin"

log() { printf '[pulumi-toolchain] %s\n' "$*" >&2; }

if command -v pulumi >/dev/null 2>&1 && command -v pulumi-language-nodejs >/dev/null 2>&1 \
   && [ "$(command -v pulumi)" != "$BIN_DIR/pulumi" ]; then
  log "using the installed CLI: $(command -v pulumi) ($(pulumi version 2>/dev/null || echo unknown))"
  exit 0
fi

if [ -x "$BIN_DIR/pulumi" ] && [ -x "$BIN_DIR/pulumi-language-nodejs" ]; then
  log "cached: $BIN_DIR"
  echo "$BIN_DIR"
  exit 0
fi

command -v go >/dev/null 2>&1 || { log "error: Go is needed to build the Pulumi CLI here"; exit 1; }
mkdir -p "$BIN_DIR" "$TOOLCHAIN_DIR/src"
export CGO_ENABLED=0 GOFLAGS=-mod=mod

# Builds one main package from a throw-away wrapper module. A wrapper is needed
# because pkg/v3's own go.mod points sdk/v3 at a local path, which `go install
# module@version` refuses; as a dependency those replaces are ignored.
build_from_wrapper() {
  local name="$1" pkg="$2" version="$3" ldflag_version="$4"
  local dir="$TOOLCHAIN_DIR/src/$name"
  if [ -x "$BIN_DIR/$name" ]; then log "$name: cached"; return; fi
  log "$name: resolving $pkg@$version"
  rm -rf "$dir" && mkdir -p "$dir"
  (cd "$dir" && go mod init "local.invalid/toolchain/$name" >/dev/null 2>&1 \
     && go get -tool "$pkg@$version" >"$dir/get.log" 2>&1) \
    || { log "$name: go get failed:"; tail -5 "$dir/get.log" >&2; return 1; }
  log "$name: building (this is the slow part)"
  local start=$SECONDS
  (cd "$dir" && go build -trimpath -tags osusergo,grpcnotrace \
     -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$ldflag_version" \
     -o "$BIN_DIR/$name.tmp" "$pkg" >"$dir/build.log" 2>&1) \
    || { log "$name: build failed:"; tail -20 "$dir/build.log" >&2; return 1; }
  mv "$BIN_DIR/$name.tmp" "$BIN_DIR/$name"
  log "$name: built in $((SECONDS - start)) s"
}

build_from_wrapper pulumi-language-nodejs github.com/pulumi/pulumi/sdk/v3/nodejs/cmd/pulumi-language-nodejs \
  "v$LANGUAGE_HOST_SDK_VERSION" "$LANGUAGE_HOST_SDK_VERSION"
build_from_wrapper pulumi github.com/pulumi/pulumi/pkg/v3/cmd/pulumi "v$PULUMI_VERSION" "$PULUMI_VERSION"

"$BIN_DIR/pulumi" version >&2
echo "$BIN_DIR"
