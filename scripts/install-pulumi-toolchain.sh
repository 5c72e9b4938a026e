#!/usr/bin/env bash
# Puts a Pulumi CLI and its Node.js language host in one folder, and prints that
# folder (last line of stdout) for the caller to put first on PATH.
# - An installed CLI with a language host on PATH is used as it is (prints nothing).
# - Otherwise the CLI is built from the Go module github.com/pulumi/pulumi/pkg/v3 at
#   the version package.json pins (Pulumi's download site may be unreachable; about
#   4 minutes on 2 cores), and the language host of the same release is unpacked
#   beside it from the plugin mirror (scripts/plugin-mirror.sh), checked against the
#   mirror's SHA256SUMS. Beside the CLI is where the CLI looks first, so no
#   "using pulumi-language-nodejs from $PATH" warning.
# - Without a mirror, the language host is built from sdk/v3 v3.68.0, the newest
#   release the module proxy serves that still carries it (its own module is refused).
# Idempotent and quiet when cached: outside the repository, keyed by version.
set -euo pipefail

PROJECT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/plugin-mirror.sh
. "$PROJECT_DIR/scripts/plugin-mirror.sh"
PULUMI_VERSION="${PULUMI_VERSION:-$(node -p "require('$PROJECT_DIR/package.json').dependencies['@pulumi/pulumi']")}"
FALLBACK_LANGUAGE_HOST_SDK_VERSION=3.68.0
CACHE_ROOT="${PRIVATE_REGISTRY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/private-registry}"
TOOLCHAIN_DIR="$CACHE_ROOT/pulumi-v${PULUMI_VERSION}"
BIN_DIR="$TOOLCHAIN_DIR/bin"
HOST_SOURCE_FILE="$TOOLCHAIN_DIR/language-host-source"

log() { printf '[pulumi-toolchain] %s\n' "$*" >&2; }

if command -v pulumi >/dev/null 2>&1 && command -v pulumi-language-nodejs >/dev/null 2>&1 \
   && [ "$(command -v pulumi)" != "$BIN_DIR/pulumi" ]; then
  exit 0
fi

mkdir -p "$BIN_DIR" "$TOOLCHAIN_DIR/src"

ARCH="$(mirror_arch)"
MIRROR="$(mirror_dir "$PROJECT_DIR")"
HOST_TARBALL="$(mirror_tarball "$MIRROR" "pulumi-language-nodejs-v${PULUMI_VERSION}-linux-${ARCH}.tar.gz")"

# Builds one main package from a throw-away wrapper module. A wrapper is needed
# because pkg/v3's own go.mod points sdk/v3 at a local path, which `go install
# module@version` refuses; as a dependency those replaces are ignored.
build_from_wrapper() {
  local name="$1" pkg="$2" version="$3" ldflag_version="$4"
  local dir="$TOOLCHAIN_DIR/src/$name"
  command -v go >/dev/null 2>&1 || { log "error: Go is needed to build $name here"; return 1; }
  export CGO_ENABLED=0 GOFLAGS=-mod=mod
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

# The language host: the mirror's (same release as the CLI) wins over an earlier fallback build.
if [ -n "$HOST_TARBALL" ]; then
  want="mirror $(sha256sum "$HOST_TARBALL" | cut -d' ' -f1)"
  if [ ! -x "$BIN_DIR/pulumi-language-nodejs" ] || [ "$(cat "$HOST_SOURCE_FILE" 2>/dev/null)" != "$want" ]; then
    log "pulumi-language-nodejs v$PULUMI_VERSION: from the mirror ($HOST_TARBALL, SHA256 verified)"
    unpack="$(mktemp -d)"
    tar -xzf "$HOST_TARBALL" -C "$unpack"
    found="$(find "$unpack" -type f -name pulumi-language-nodejs | head -n 1)"
    [ -n "$found" ] || { log "error: $HOST_TARBALL holds no pulumi-language-nodejs"; exit 1; }
    install -m 0755 "$found" "$BIN_DIR/pulumi-language-nodejs"
    rm -rf "$unpack"
    echo "$want" >"$HOST_SOURCE_FILE"
  fi
elif [ ! -x "$BIN_DIR/pulumi-language-nodejs" ]; then
  log "no plugin mirror with pulumi-language-nodejs v$PULUMI_VERSION (set PULUMI_PLUGIN_MIRROR); building the sdk/v3 v$FALLBACK_LANGUAGE_HOST_SDK_VERSION language host instead"
  build_from_wrapper pulumi-language-nodejs github.com/pulumi/pulumi/sdk/v3/nodejs/cmd/pulumi-language-nodejs \
    "v$FALLBACK_LANGUAGE_HOST_SDK_VERSION" "$FALLBACK_LANGUAGE_HOST_SDK_VERSION"
  echo "build sdk/v3 v$FALLBACK_LANGUAGE_HOST_SDK_VERSION" >"$HOST_SOURCE_FILE"
fi

if [ ! -x "$BIN_DIR/pulumi" ]; then
  build_from_wrapper pulumi github.com/pulumi/pulumi/pkg/v3/cmd/pulumi "v$PULUMI_VERSION" "$PULUMI_VERSION"
  "$BIN_DIR/pulumi" version >&2
fi
echo "$BIN_DIR"
