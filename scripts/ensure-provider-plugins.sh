#!/usr/bin/env bash
# Makes sure the four provider plugins are installed at exactly the versions the
# npm packages declare (the engine accepts no other). Installed ones are used as
# they are; missing ones are installed with `pulumi plugin install`, which
# downloads them where Pulumi's download site is reachable.
#
# Where it is not (this project's sandbox machines), there is no other source:
# the Go module proxy refuses every Pulumi provider module (403 "This module
# version is not available", measured 2026-11-28 for pulumi-tls/provider/v5,
# pulumi-random/provider/v4, pulumi-docker/provider/v4, pulumi-command/provider),
# so the plugins cannot be built from source either. This script then stops
# with that explanation instead of letting `pulumi up` fail halfway.
set -euo pipefail
PROJECT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

log() { printf '[provider-plugins] %s\n' "$*" >&2; }

installed="$(pulumi plugin ls --json 2>/dev/null || echo '[]')"
missing=()
for package in tls random docker command; do
  version="$(node -p "require('$PROJECT_DIR/node_modules/@pulumi/$package/package.json').pulumi.version.replace(/^v/, '')")"
  if printf '%s' "$installed" | node -e '
      const [name, version] = process.argv.slice(1);
      const plugins = JSON.parse(require("fs").readFileSync(0, "utf8") || "[]");
      process.exit(plugins.some((p) => p.kind === "resource" && p.name === name && p.version === version) ? 0 : 1);
    ' "$package" "$version"; then
    log "$package $version: installed"
  elif PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=false pulumi plugin install resource "$package" "$version" >/dev/null 2>&1; then
    log "$package $version: downloaded"
  else
    missing+=("$package $version")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  log "error: these provider plugins are not installed and could not be downloaded:"
  for m in "${missing[@]}"; do log "  pulumi-resource-${m% *} v${m#* }"; done
  log "Install them from a machine that can reach Pulumi's download site, e.g."
  log "  pulumi plugin install resource tls 5.2.2 --file pulumi-resource-tls-v5.2.2-linux-amd64.tar.gz"
  log "(building them from Go modules is not possible where the module proxy refuses the Pulumi provider modules)."
  exit 1
fi
