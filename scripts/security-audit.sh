#!/usr/bin/env bash
# Reruns the attack suite against real deployments made by `pulumi up`, in both
# layouts (tests/security.test.ts: nginx in front; tests/securityDirect.test.ts: the
# registry terminating TLS), and puts their tables of attempts and measured numbers
# into docs/security.md, between the marker comments. Sets up what the
# test needs the way `npm test` does (each step idempotent and cached).
# Usage: scripts/security-audit.sh            (about 4 minutes on 2 cores)
set -euo pipefail
# shellcheck source=scripts/pulumi-env.sh disable=SC1091 # followed with shellcheck -x
. "$(dirname "$0")/pulumi-env.sh"
cd "$PROJECT_DIR"

ensure_node_modules
scripts/ensure-debian-packages.sh openssl=openssl ssh=openssh-client ssh-keygen=openssh-client curl=curl setpriv=util-linux
ensure_pulumi_cli
scripts/ensure-provider-plugins.sh
scripts/ensure-docker-engine.sh
scripts/build-local-images.sh

doc="docs/security.md"
for marker in security-audit security-audit-direct; do
  if ! grep -qxF "<!-- $marker:begin -->" "$doc" || ! grep -qxF "<!-- $marker:end -->" "$doc"; then
    echo "security-audit: $doc lacks the marker lines <!-- $marker:begin --> / <!-- $marker:end -->" >&2
    exit 1
  fi
done

table="$(mktemp)"
table_direct="$(mktemp)"
spliced="$(mktemp)"
trap 'rm -f "$table" "$table_direct" "$spliced"' EXIT
status=0
# Both layouts: nginx in front (tests/security.test.ts), and the registry terminating TLS itself.
SECURITY_AUDIT_TABLE="$table" SECURITY_AUDIT_TABLE_DIRECT="$table_direct" \
  npx jest tests/security.test.ts tests/securityDirect.test.ts || status=$?

# splice MARKER FILE: what is between the marker lines becomes FILE; everything else stays.
splice() {
  awk -v begin="<!-- $1:begin -->" -v end="<!-- $1:end -->" -v table="$2" '
    $0 == begin { print; while ((getline line < table) > 0) print line; skipping = 1; next }
    $0 == end { skipping = 0 }
    !skipping { print }
  ' "$doc" >"$spliced"
  cat "$spliced" >"$doc"
}
for pair in "security-audit:$table" "security-audit-direct:$table_direct"; do
  marker="${pair%%:*}"
  file="${pair#*:}"
  if [ -s "$file" ]; then
    splice "$marker" "$file"
  else
    echo "security-audit: the $marker suite wrote no table (it stopped before its end); that part of $doc is unchanged" >&2
    [ "$status" -ne 0 ] || status=1
  fi
done
if [ "$status" -eq 0 ]; then
  echo "security-audit: every attempt was refused in both layouts; tables written to $doc" >&2
else
  echo "security-audit: some checks FAILED (rows marked NO in $doc, and jest's report above)" >&2
fi
exit "$status"
