#!/usr/bin/env bash
# Makes sure the four provider plugins are installed at exactly the versions the
# npm packages declare (the engine accepts no other). For each missing one:
#   1. from the plugin mirror (PULUMI_PLUGIN_MIRROR, default ../shared/pulumi-plugins
#      beside the project), after checking the tarball against the mirror's SHA256SUMS;
#   2. else `pulumi plugin install`, which downloads it where Pulumi's site is reachable.
# The Go module proxy refuses Pulumi's provider modules (403 "This module version is
# not available"), so they cannot be built from source here. Without a plugin this
# script stops, naming it, before `pulumi up` could fail halfway.
# Idempotent and quiet: installed plugins are left as they are.
set -euo pipefail
PROJECT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/plugin-mirror.sh
. "$PROJECT_DIR/scripts/plugin-mirror.sh"

log() { printf '[provider-plugins] %s\n' "$*" >&2; }

ARCH="$(mirror_arch)"
MIRROR="$(mirror_dir "$PROJECT_DIR")"
installed="$(pulumi plugin ls --json 2>/dev/null || echo '[]')"
missing=()
for package in tls random docker command; do
  version="$(node -p "require('$PROJECT_DIR/node_modules/@pulumi/$package/package.json').pulumi.version.replace(/^v/, '')")"
  if printf '%s' "$installed" | node -e '
      const [name, version] = process.argv.slice(1);
      const plugins = JSON.parse(require("fs").readFileSync(0, "utf8") || "[]");
      process.exit(plugins.some((p) => p.kind === "resource" && p.name === name && p.version === version) ? 0 : 1);
    ' "$package" "$version"; then
    continue
  fi
  tarball="$(mirror_tarball "$MIRROR" "pulumi-resource-$package-v$version-linux-$ARCH.tar.gz")"
  if [ -n "$tarball" ]; then
    pulumi plugin install resource "$package" "$version" --file "$tarball" >/dev/null
    log "$package $version: installed from the mirror ($tarball, SHA256 verified)"
  elif PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=false pulumi plugin install resource "$package" "$version" >/dev/null 2>&1; then
    log "$package $version: downloaded"
  else
    missing+=("$package $version")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  log "error: these provider plugins are not installed, not in a plugin mirror (${MIRROR:-none}) and could not be downloaded:"
  for m in "${missing[@]}"; do log "  pulumi-resource-${m% *}-v${m#* }-linux-$ARCH.tar.gz"; done
  log "Put them (with a SHA256SUMS line each) in a folder and set PULUMI_PLUGIN_MIRROR to it; see README 'Air-gapped sites'."
  exit 1
fi
