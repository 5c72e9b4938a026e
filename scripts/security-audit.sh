#!/usr/bin/env bash
# Reruns the attack suite (tests/security.test.ts) against a real deployment made by
# `pulumi up` and puts its table of attempts and measured numbers into
# docs/security.md, between the security-audit marker comments. Sets up what the
# test needs the way `npm test` does (each step idempotent and cached).
# Usage: scripts/security-audit.sh            (about 2 minutes on 2 cores)
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
begin="<!-- security-audit:begin -->"
end="<!-- security-audit:end -->"
if ! grep -qxF "$begin" "$doc" || ! grep -qxF "$end" "$doc"; then
  echo "security-audit: $doc lacks the marker lines $begin / $end" >&2
  exit 1
fi

table="$(mktemp)"
spliced="$(mktemp)"
trap 'rm -f "$table" "$spliced"' EXIT
status=0
SECURITY_AUDIT_TABLE="$table" npx jest tests/security.test.ts || status=$?
if [ ! -s "$table" ]; then
  echo "security-audit: the test wrote no table (it stopped before its end); $doc is unchanged" >&2
  exit "$((status == 0 ? 1 : status))"
fi
# Everything outside the markers stays as it is.
awk -v begin="$begin" -v end="$end" -v table="$table" '
  $0 == begin { print; while ((getline line < table) > 0) print line; skipping = 1; next }
  $0 == end { skipping = 0 }
  !skipping { print }
' "$doc" >"$spliced"
cat "$spliced" >"$doc"
if [ "$status" -eq 0 ]; then
  echo "security-audit: every attempt was refused; table written to $doc" >&2
else
  echo "security-audit: some checks FAILED (rows marked NO in $doc, and jest's report above)" >&2
fi
exit "$status"
