#!/usr/bin/env bash
# Reruns the reliability suites for real (bad configurations through `pulumi up`,
# fault drills and load on a real deployment) and writes their measured tables
# into docs/reliability.md, between the <!-- BEGIN name --> / <!-- END name -->
# markers. Sets up what it needs like `npm test` does.
# Usage: npm run reliability-report
set -euo pipefail
# shellcheck source=scripts/pulumi-env.sh
. "$(dirname "$0")/pulumi-env.sh"
cd "$PROJECT_DIR"

ensure_node_modules
scripts/ensure-debian-packages.sh openssl=openssl ssh=openssh-client ssh-keygen=openssh-client
ensure_pulumi_cli
scripts/ensure-provider-plugins.sh
scripts/ensure-docker-engine.sh
scripts/build-local-images.sh

report_dir="$(mktemp -d)"
trap 'rm -rf "$report_dir"' EXIT
status=0
RELIABILITY_REPORT_DIR="$report_dir" npx jest tests/badConfig.test.ts tests/faults.test.ts || status=$?

# splice NAME FILE: replaces what is between the markers of NAME in docs/reliability.md.
splice() {
  # shellcheck disable=SC2016 # JavaScript, not shell
  node -e '
    const fs = require("fs");
    const [doc, name, file] = process.argv.slice(1);
    const text = fs.readFileSync(doc, "utf8");
    const begin = `<!-- BEGIN ${name} -->`, end = `<!-- END ${name} -->`;
    const a = text.indexOf(begin), b = text.indexOf(end);
    if (a < 0 || b < a) { console.error(`no ${name} markers in ${doc}`); process.exit(1); }
    fs.writeFileSync(doc, text.slice(0, a + begin.length) + "\n" + fs.readFileSync(file, "utf8") + text.slice(b));
  ' docs/reliability.md "$1" "$2"
}
for table in bad-configs-new-stack bad-configs-running-stack fault-drills load; do
  if [ -s "$report_dir/$table.md" ]; then splice "$table" "$report_dir/$table.md"; fi
done
machine="$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), Docker $(docker version --format '{{.Server.Version}}'), $(date -u +%Y-%m-%d)"
printf '%s\n' "Measured on: $machine." >"$report_dir/machine.md"
splice machine "$report_dir/machine.md"
echo "[reliability-report] docs/reliability.md updated (tests exit status $status)"
exit "$status"
