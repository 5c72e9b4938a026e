#!/usr/bin/env bash
# The test command: sets up what the tests run for real (npm packages, nginx,
# ShellCheck, openssl, ssh, the Pulumi CLI and language host, the provider plugins,
# a Docker engine and local images), each step idempotent and cached, then runs
# every jest suite.
set -euo pipefail
# shellcheck source=scripts/pulumi-env.sh
. "$(dirname "$0")/pulumi-env.sh"
cd "$PROJECT_DIR"

ensure_node_modules
scripts/ensure-debian-packages.sh nginx=nginx shellcheck=shellcheck openssl=openssl ssh=openssh-client ssh-keygen=openssh-client curl=curl socat=socat jq=jq chromium=chromium certutil=libnss3-tools \
  /usr/lib/nginx/modules/ngx_stream_module.so=libnginx-mod-stream
ensure_pulumi_cli
scripts/ensure-provider-plugins.sh
scripts/ensure-docker-engine.sh
scripts/build-local-images.sh

# Types (the program, the scripts, the benchmarks, the example program) and formatting
# first: jest transpiles without a type check.
npm run --silent build
npm run --silent format:check
results="$(mktemp)"
trap 'rm -f "$results"' EXIT
status=0
npx jest --json --outputFile="$results" "$@" || status=$?
# One plain closing line with the counts, whatever the reporter printed.
# shellcheck disable=SC2016 # JavaScript, not shell
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests} skipped`);
' "$results" || true
exit "$status"
