#!/usr/bin/env bash
# Issue 19: pulls through the pull-through mirror, cold (through to the upstream) and warm
# (from its cache), side by side with a direct pull from the upstream, in one run
# (`npm run benchmark:mirror`). Deploys, with the real `pulumi up` of this program (file
# backend in a temporary folder), a stack with one mirror (anonymous pulls) of an
# upstream registry that this script starts (TLS with its own CA, the local registry
# image); a client container with skopeo pulls a 50-layer image (50 x 1 MiB) and a
# 256 MiB one, each REPS times, each repetition a new image (so every cold pull is cold),
# in the order direct, cold, warm. Writes the table between the markers in
# docs/benchmarks.md (section "Pull-through mirror") unless --no-docs.
# Network: only 10.251.52.0/24 (host side 10.251.52.1) and ports 19451-19452; names bench-mirror-….
set -euo pipefail

REPS=3
WRITE_DOCS=1
for arg in "$@"; do
  case "$arg" in
    --quick) REPS=1 ;;
    --no-docs) WRITE_DOCS=0 ;;
    *) echo "usage: $0 [--quick] [--no-docs]" >&2; exit 2 ;;
  esac
done

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=scripts/local-images.sh
. "$ROOT/scripts/local-images.sh"

SUBNET=10.251.52.0/24
GATEWAY=10.251.52.1
PORT_UPSTREAM=19451
PORT_MIRROR=19452
REGISTRY_PORT=19453
NET=bench-mirror-net
CLIENT=bench-mirror-client
UPSTREAM=bench-mirror-upstream
STACK=bench-mirror-stack
REGISTRY_IMAGE=$(local_image registry3)
UPSTREAM_IMAGE=$(local_image registry)
NGINX_IMAGE=$(local_image nginx)
CLIENT_IMAGE=$(local_image ssh-client-host)

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*"; }

if ! docker version >/dev/null 2>&1; then
  bash scripts/ensure-docker-engine.sh
fi
PULUMI_BIN="$HOME/.cache/private-registry/pulumi-v3.248.0/bin"
[[ -d $PULUMI_BIN ]] && export PATH="$PULUMI_BIN:$PATH"
command -v pulumi >/dev/null || { echo "pulumi CLI not found: run npm test or npm run deploy once first" >&2; exit 1; }
for image in "$REGISTRY_IMAGE" "$UPSTREAM_IMAGE" "$NGINX_IMAGE" "$CLIENT_IMAGE"; do
  docker image inspect "$image" >/dev/null 2>&1 || bash scripts/build-local-images.sh
done

RUN_START=$SECONDS
WORK=$(mktemp -d /tmp/bench-mirror.XXXXXX)
mkdir -p "$WORK/state" "$WORK/upstream"
export PULUMI_BACKEND_URL="file://$WORK/state"
PULUMI_CONFIG_PASSPHRASE=$(openssl rand -hex 16)
export PULUMI_CONFIG_PASSPHRASE
export PULUMI_SKIP_UPDATE_CHECK=true PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true

remove_docker_objects() {
  local names
  names=$(docker ps -a --format '{{.Names}}' | grep -E '^bench-mirror' || true)
  [[ -n $names ]] && xargs -r docker rm -f -v <<<"$names" >/dev/null 2>&1
  names=$(docker network ls --format '{{.Name}}' | grep -E '^bench-mirror' || true)
  [[ -n $names ]] && xargs -r -n1 docker network rm <<<"$names" >/dev/null 2>&1
  names=$(docker volume ls --format '{{.Name}}' | grep -E '^bench-mirror' || true)
  [[ -n $names ]] && xargs -r docker volume rm <<<"$names" >/dev/null 2>&1
  return 0
}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  log "cleaning up"
  if [[ -f "$WORK/Pulumi.$STACK.yaml" ]]; then
    pulumi destroy --cwd "$WORK/program" --yes --non-interactive --stack "$STACK" --config-file "$WORK/Pulumi.$STACK.yaml" >"$WORK/destroy.log" 2>&1
    pulumi stack rm --cwd "$WORK/program" --yes --force --non-interactive --stack "$STACK" >/dev/null 2>&1
  fi
  remove_docker_objects
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
remove_docker_objects

# --- the upstream: the local registry 2 image with TLS of its own CA --------------------
docker network create --subnet "$SUBNET" --gateway "$GATEWAY" "$NET" >/dev/null
(
  cd "$WORK/upstream"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 2 \
    -subj "/CN=bench upstream CA" -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign >/dev/null 2>&1
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server.key -out server.csr -subj "/CN=bench upstream" >/dev/null 2>&1
  printf 'subjectAltName=IP:%s\nextendedKeyUsage=serverAuth\n' "$GATEWAY" >server.ext
  openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile server.ext -out server.pem >/dev/null 2>&1
  printf 'version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /var/lib/registry\nhttp:\n  addr: :5000\n  tls:\n    certificate: /upstream/server.pem\n    key: /upstream/server.key\n' >config.yml
  chmod 0644 ./*
)
docker run -d --name "$UPSTREAM" -p "$GATEWAY:$PORT_UPSTREAM:5000" -v "$WORK/upstream:/upstream:ro" \
  -v "$WORK/upstream/config.yml:/etc/docker/registry/config.yml:ro" "$UPSTREAM_IMAGE" >/dev/null

# --- the stack: the program as it is now, one anonymous mirror of the upstream ------------
mkdir -p "$WORK/program"
cp -r Pulumi.yaml package.json tsconfig.json index.ts lib components "$WORK/program/"
ln -s "$ROOT/node_modules" "$WORK/program/node_modules"
pulumi stack init --cwd "$WORK/program" --non-interactive "$STACK" >/dev/null 2>&1
mv "$WORK/program/Pulumi.$STACK.yaml" "$WORK/Pulumi.$STACK.yaml"
{
  cat <<EOF
config:
  private-registry:ipAddresses:
    - $GATEWAY
  private-registry:dnsNames: []
  private-registry:port: $REGISTRY_PORT
  private-registry:listenAddress: $GATEWAY
  private-registry:registryImage: $REGISTRY_IMAGE
  private-registry:nginxImage: $NGINX_IMAGE
  private-registry:pullImages: false
  private-registry:namePrefix: $STACK
  private-registry:keepDataOnDestroy: false
  private-registry:mirrors:
    - upstream: https://$GATEWAY:$PORT_UPSTREAM
      port: $PORT_MIRROR
      anonymousPull: true
      ca: |
EOF
  sed 's/^/        /' "$WORK/upstream/ca.pem"
} >>"$WORK/Pulumi.$STACK.yaml"
log "pulumi up (a stack with one mirror)"
if ! pulumi up --cwd "$WORK/program" --yes --skip-preview --non-interactive --stack "$STACK" --config-file "$WORK/Pulumi.$STACK.yaml" >"$WORK/up.log" 2>&1; then
  tail -40 "$WORK/up.log" >&2
  exit 1
fi
pulumi stack output --cwd "$WORK/program" --stack "$STACK" caCertPem >"$WORK/stack-ca.pem"

# --- the client: skopeo, trusting both CAs the Docker way --------------------------------
docker run -d --name "$CLIENT" --network "$NET" --entrypoint sleep "$CLIENT_IMAGE" infinity >/dev/null
docker exec -i "$CLIENT" sh -c "mkdir -p /etc/docker/certs.d/$GATEWAY:$PORT_UPSTREAM && cat >/etc/docker/certs.d/$GATEWAY:$PORT_UPSTREAM/ca.crt" <"$WORK/upstream/ca.pem"
docker exec -i "$CLIENT" sh -c "mkdir -p /etc/docker/certs.d/$GATEWAY:$PORT_MIRROR && cat >/etc/docker/certs.d/$GATEWAY:$PORT_MIRROR/ca.crt" <"$WORK/stack-ca.pem"
client() { docker exec -i "$CLIENT" sh -c "$1"; }
# shellcheck disable=SC2016 # the function's text, for the client's shell
MAKE_IMAGE=$("$ROOT/node_modules/.bin/tsx" -e 'process.stdout.write(require("./tests/helpers/ociImage").MAKE_IMAGE_SH)')

# Seconds of one skopeo pull (blobs as they are, into a fresh folder).
pull_seconds() { # ENDPOINT REPO
  client "rm -rf /tmp/pulled && s=\$(date +%s.%N) && skopeo copy --quiet docker://$1/$2:latest dir:/tmp/pulled && e=\$(date +%s.%N) && awk -v s=\$s -v e=\$e 'BEGIN { printf \"%.2f\", e - s }'"
}

RESULTS="$WORK/results.tsv"
: >"$RESULTS"
for rep in $(seq 1 "$REPS"); do
  for kind in l50 big; do
    if [[ $kind == l50 ]]; then layers=50 bytes=$((1 << 20)); else layers=1 bytes=$((256 << 20)); fi
    repo="bench/$kind-$rep"
    log "rep $rep: $kind ($layers x $bytes bytes) pushed to the upstream"
    client "$MAKE_IMAGE
make_image /tmp/img $layers $bytes >/dev/null && skopeo copy --quiet oci:/tmp/img:latest docker://$GATEWAY:$PORT_UPSTREAM/$repo:latest && rm -rf /tmp/img"
    direct=$(pull_seconds "$GATEWAY:$PORT_UPSTREAM" "$repo")
    cold=$(pull_seconds "$GATEWAY:$PORT_MIRROR" "$repo")
    warm=$(pull_seconds "$GATEWAY:$PORT_MIRROR" "$repo")
    log "    direct ${direct} s, mirror cold ${cold} s, mirror warm ${warm} s"
    printf '%s\t%s\t%s\t%s\n' "$kind" "$direct" "$cold" "$warm" >>"$RESULTS"
  done
done

# --- the table ---------------------------------------------------------------------------
TABLE=$(awk -F'\t' -v reps="$REPS" '
  function stats(list,   n, a, i, j, t, out) {
    n = split(list, a, " ")
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
    return sprintf("%.2f / %.2f / %.2f", a[1], a[int((n + 1) / 2)], a[n])
  }
  { d[$1] = d[$1] " " $2; c[$1] = c[$1] " " $3; w[$1] = w[$1] " " $4 }
  END {
    print "| image | direct from the upstream (s) | mirror, cold (s) | mirror, warm (s) |"
    print "|---|---|---|---|"
    print "| 50 layers of 1 MiB | " stats(d["l50"]) " | " stats(c["l50"]) " | " stats(w["l50"]) " |"
    print "| one 256 MiB layer | " stats(d["big"]) " | " stats(c["big"]) " | " stats(w["big"]) " |"
  }' "$RESULTS")
SUMMARY="min / median / max of $REPS runs each, measured $(date -u +%Y-%m-%d) on $(nproc) cores by \`npm run benchmark:mirror\` in $((SECONDS - RUN_START)) s (skopeo copy to a dir:, registry $REGISTRY_IMAGE as the mirror, $UPSTREAM_IMAGE as the upstream)"
printf '%s\n\n%s\n' "$TABLE" "$SUMMARY"
if [[ $WRITE_DOCS == 1 ]]; then
  DOC="$ROOT/docs/benchmarks.md"
  # shellcheck disable=SC2016 # JavaScript, not shell
  node -e '
    const fs = require("fs");
    const [doc, table, summary] = process.argv.slice(1);
    const text = fs.readFileSync(doc, "utf8");
    const start = "<!-- mirror-results:start -->", end = "<!-- mirror-results:end -->";
    const i = text.indexOf(start), j = text.indexOf(end);
    if (i < 0 || j < 0) throw new Error(`${doc} has no ${start} ... ${end} block`);
    fs.writeFileSync(doc, `${text.slice(0, i + start.length)}\n${table}\n\n${summary}\n${text.slice(j)}`);
  ' "$DOC" "$TABLE" "$SUMMARY"
  log "wrote the table into docs/benchmarks.md"
fi
