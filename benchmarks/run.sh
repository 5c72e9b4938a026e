#!/usr/bin/env bash
# Issue 9: the registry's performance, side by side, in one run (`npm run benchmark`).
#   bash benchmarks/run.sh [--quick] [--write-docs]
# Deploys, with the real `pulumi up` of this program (file backend in a temporary
# folder), (a) the proxy layout and (b) the direct layout (tlsTermination: registry);
# starts (c) the registry image over plain HTTP without auth (the limit) and (d)
# distribution's "Authenticate proxy with nginx" recipe as published (nginx.conf of
# the recipe in front of (c), bcrypt cost 10 htpasswd); then measures them
# interleaved (benchmarks/sideBySide.js), measures cheap nginx tunings on (a), times
# `pulumi up` from nothing / no-change up / no-change preview / destroy of (a), and
# writes the table and chart (benchmarks/report.js) into docs/benchmarks.md and
# docs/benchmarks.png. Everything it creates (containers, network, volumes, stacks,
# temporary files) is removed at the end, also on failure or Ctrl-C.
# --quick: 256 MiB layer, 2 s rates, one repetition; writes the docs only with --write-docs.
# Network: only 10.251.51.0/24 (host side 10.251.51.1) and ports 19443-19446.
set -euo pipefail

QUICK=0
WRITE_DOCS=1
for arg in "$@"; do
  case "$arg" in
    --quick) QUICK=1; WRITE_DOCS=0 ;;
    --write-docs) WRITE_DOCS=2 ;;
    *) echo "usage: $0 [--quick] [--write-docs]" >&2; exit 2 ;;
  esac
done
[[ $WRITE_DOCS == 2 ]] && WRITE_DOCS=1

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=scripts/local-images.sh
. "$ROOT/scripts/local-images.sh"

SUBNET=10.251.51.0/24
GATEWAY=10.251.51.1
PLAIN_IP=10.251.51.30
PORT_PROXY=19443
PORT_DIRECT=19444
PORT_PLAIN=19445
PORT_RECIPE=19446
NET=bench-net
CLIENT=bench-client
# The local images (scripts/local-images.txt): registry 2.8, Debian's nginx, the client host.
REGISTRY_IMAGE=$(local_image registry)
NGINX_IMAGE=$(local_image nginx)
CLIENT_IMAGE=$(local_image ssh-client-host)
STACKS=(bench-proxy bench-direct)

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

# --- prerequisites -----------------------------------------------------------------
if ! docker version >/dev/null 2>&1; then
  bash scripts/ensure-docker-engine.sh
fi
PULUMI_BIN="$HOME/.cache/private-registry/pulumi-v3.248.0/bin"
[[ -d $PULUMI_BIN ]] && export PATH="$PULUMI_BIN:$PATH"
command -v pulumi >/dev/null || { echo "pulumi CLI not found: run npm test or npm run deploy once first" >&2; exit 1; }
[[ -d node_modules/bcryptjs && -x node_modules/.bin/tsx ]] || npm install --no-audit --no-fund
# The stacks' outputs and the targets' JSON: benchmarks/benchData.ts (Automation API).
bench_data() { "$ROOT/node_modules/.bin/tsx" "$ROOT/benchmarks/benchData.ts" "$@"; }
for image in "$REGISTRY_IMAGE" "$NGINX_IMAGE" "$CLIENT_IMAGE"; do
  docker image inspect "$image" >/dev/null 2>&1 || bash scripts/build-local-images.sh
done
if ! command -v gnuplot >/dev/null; then
  log "installing gnuplot-nox from Debian"
  SUDO=""
  [[ $(id -u) == 0 ]] || SUDO="sudo -n"
  $SUDO apt-get update -qq && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends gnuplot-nox >/dev/null
fi
command -v openssl >/dev/null || { echo "openssl is needed" >&2; exit 1; }

RUN_START=$(now)
WORK=$(mktemp -d /tmp/bench.XXXXXX)
mkdir -p "$WORK/state"
export PULUMI_BACKEND_URL="file://$WORK/state"
PULUMI_CONFIG_PASSPHRASE=$(openssl rand -hex 16)
export PULUMI_CONFIG_PASSPHRASE
export PULUMI_SKIP_UPDATE_CHECK=true PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true

# --- cleanup, also on failure ---------------------------------------------------------
remove_docker_objects() {
  local names
  names=$(docker ps -a --format '{{.Names}}' | grep -E '^bench-' || true)
  [[ -n $names ]] && xargs -r docker rm -f -v <<<"$names" >/dev/null 2>&1
  names=$(docker network ls --format '{{.Name}}' | grep -E '^bench-' || true)
  [[ -n $names ]] && xargs -r -n1 docker network rm <<<"$names" >/dev/null 2>&1
  names=$(docker volume ls --format '{{.Name}}' | grep -E '^bench-' || true)
  [[ -n $names ]] && xargs -r docker volume rm <<<"$names" >/dev/null 2>&1
  return 0
}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  log "cleaning up"
  # Another job on this machine may be restarting the Docker engine: wait for it (2 min at most).
  for _ in $(seq 1 120); do docker version >/dev/null 2>&1 && break; sleep 1; done
  for stack in "${STACKS[@]}"; do
    if [[ -f "$WORK/Pulumi.$stack.yaml" ]]; then
      pulumi destroy --cwd "$PROGRAM" --yes --non-interactive --stack "$stack" --config-file "$WORK/Pulumi.$stack.yaml" >"$WORK/cleanup-$stack.log" 2>&1
      pulumi stack rm --cwd "$PROGRAM" --yes --force --non-interactive --stack "$stack" >/dev/null 2>&1
    fi
  done
  remove_docker_objects
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Leftovers of an earlier run that was killed hard (names are this script's alone).
remove_docker_objects

# --- the program, as a snapshot ---------------------------------------------------------
# The stacks deploy a copy of the program taken now (the npm dependencies linked), so
# that edits made in the checkout during the run change nothing mid-way (a no-change
# preview stays one) and no stack file lands in the project. BENCH_PROGRAM=HEAD takes
# the last commit instead of the working tree.
PROGRAM="$WORK/program"
mkdir -p "$PROGRAM"
PROGRAM_FILES=(Pulumi.yaml package.json tsconfig.json index.ts lib components)
if [[ ${BENCH_PROGRAM:-worktree} == HEAD ]]; then
  git -C "$ROOT" archive HEAD "${PROGRAM_FILES[@]}" | tar -x -C "$PROGRAM"
  PROGRAM_DESCRIPTION="commit $(git -C "$ROOT" rev-parse --short HEAD)"
else
  cp -r "${PROGRAM_FILES[@]/#/$ROOT/}" "$PROGRAM/"
  PROGRAM_DESCRIPTION="working tree on commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  git -C "$ROOT" diff --quiet HEAD -- "${PROGRAM_FILES[@]}" 2>/dev/null || PROGRAM_DESCRIPTION="$PROGRAM_DESCRIPTION, with uncommitted changes"
fi
ln -s "$ROOT/node_modules" "$PROGRAM/node_modules"

# --- pulumi stacks ------------------------------------------------------------------
# `pulumi stack init` writes Pulumi.<stack>.yaml (its encryption salt) beside the
# program's copy; it is moved next to the state and used from there with --config-file.
init_stack() { # STACK TLS_TERMINATION PORT
  local stack=$1 file="$WORK/Pulumi.$1.yaml"
  pulumi stack init --cwd "$PROGRAM" --non-interactive "$stack" >/dev/null 2>&1
  mv "$PROGRAM/Pulumi.$stack.yaml" "$file"
  cat >>"$file" <<EOF
config:
  private-registry:tlsTermination: $2
  private-registry:ipAddresses:
    - $GATEWAY
  private-registry:port: $3
  private-registry:listenAddress: $GATEWAY
  private-registry:users:
    - admin
  private-registry:registryImage: $REGISTRY_IMAGE
  private-registry:nginxImage: $NGINX_IMAGE
  private-registry:pullImages: false
  private-registry:namePrefix: $stack
  private-registry:keepDataOnDestroy: false
EOF
}
pulumi_op() { # OP STACK [flags...]: runs it, log in $WORK/OP-STACK.log; prints the log's end on failure
  local op=$1 stack=$2
  shift 2
  [[ $op == preview ]] || set -- --yes "$@"
  if ! pulumi "$op" --cwd "$PROGRAM" --non-interactive --stack "$stack" --config-file "$WORK/Pulumi.$stack.yaml" "$@" >"$WORK/$op-$stack.log" 2>&1; then
    tail -40 "$WORK/$op-$stack.log" >&2
    return 1
  fi
}

docker network create --subnet "$SUBNET" --gateway "$GATEWAY" "$NET" >/dev/null
TIMES="$WORK/pulumi-times.json"

log "(a) proxy layout: pulumi up from nothing"
init_stack bench-proxy proxy "$PORT_PROXY"
t0=$(now)
pulumi_op up bench-proxy --skip-preview
UP_FRESH=$(since "$t0")
log "    up from nothing: ${UP_FRESH} s"
t0=$(now)
pulumi_op up bench-proxy --skip-preview
UP_NOCHANGE=$(since "$t0")
log "    no-change up: ${UP_NOCHANGE} s"
t0=$(now)
pulumi_op preview bench-proxy --expect-no-changes
PREVIEW=$(since "$t0")
log "    no-change preview: ${PREVIEW} s"
# Tuning, measured here because it is cheap: the Node.js language host type-checks the
# program with ts-node on every preview unless PULUMI_NODEJS_TRANSPILE_ONLY=true (or
# "noCheck" in tsconfig.json); `npm run build` type-checks anyway. Two pairs, alternating.
PREVIEW_PAIRS=()
for _ in 1 2; do
  t0=$(now)
  pulumi_op preview bench-proxy --expect-no-changes
  checked=$(since "$t0")
  t0=$(now)
  PULUMI_NODEJS_TRANSPILE_ONLY=true pulumi_op preview bench-proxy --expect-no-changes
  PREVIEW_PAIRS+=("[$checked, $(since "$t0")]")
done
log "    no-change preview [type-checked, transpile only]: ${PREVIEW_PAIRS[*]}"

log "(b) direct layout: pulumi up"
init_stack bench-direct registry "$PORT_DIRECT"
t0=$(now)
pulumi_op up bench-direct --skip-preview
UP_DIRECT=$(since "$t0")
log "    up from nothing: ${UP_DIRECT} s"

log "(c) plain registry (HTTP, no auth) and (d) distribution's nginx recipe"
docker run -d --name bench-plain --network "$NET" --ip "$PLAIN_IP" --network-alias registry \
  -p "$GATEWAY:$PORT_PLAIN:5000" -p "127.0.0.1:$PORT_PLAIN:5000" \
  -v bench-plain-data:/var/lib/registry "$REGISTRY_IMAGE" >/dev/null
RECIPE="$WORK/recipe"
mkdir -p "$RECIPE"
chmod 755 "$RECIPE"
# The recipe's nginx.conf as published (docs/content/recipes/nginx.md of
# distribution/distribution); nothing adapted but the published port (below).
cp "$ROOT/benchmarks/recipe-nginx.conf" "$RECIPE/nginx.conf"
openssl req -x509 -newkey rsa:4096 -nodes -keyout "$WORK/recipe-ca.key" -out "$WORK/recipe-ca.crt" -days 2 \
  -subj "/CN=bench recipe CA" 2>/dev/null
openssl req -newkey rsa:4096 -nodes -keyout "$RECIPE/domain.key" -out "$WORK/domain.csr" -subj "/CN=myregistrydomain.com" 2>/dev/null
printf 'subjectAltName=IP:%s,DNS:myregistrydomain.com\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' "$GATEWAY" >"$WORK/domain.ext"
openssl x509 -req -in "$WORK/domain.csr" -CA "$WORK/recipe-ca.crt" -CAkey "$WORK/recipe-ca.key" -CAcreateserial \
  -out "$RECIPE/domain.crt" -days 2 -extfile "$WORK/domain.ext" 2>/dev/null
RECIPE_PASSWORD=$(openssl rand -base64 48 | tr -dc 'A-Za-z0-9' | head -c 32)
# What `htpasswd -Bbn` writes: bcrypt at cost 10 (its default), the $2y$ prefix.
# shellcheck disable=SC2016 # JavaScript, not shell
RECIPE_PASSWORD="$RECIPE_PASSWORD" node -e \
  'process.stdout.write(`testuser:${require("bcryptjs").hashSync(process.env.RECIPE_PASSWORD, 10).replace(/^\$2a\$/, "$2y$")}\n`)' \
  >"$RECIPE/nginx.htpasswd"
chmod 644 "$RECIPE"/*
docker run -d --name bench-recipe-nginx --network "$NET" -p "$GATEWAY:$PORT_RECIPE:443" \
  -v "$RECIPE:/etc/nginx/conf.d" -v "$RECIPE/nginx.conf:/etc/nginx/nginx.conf:ro" "$NGINX_IMAGE" >/dev/null

log "client container"
# In the host's network namespace, like the load generator: its connections to the
# published ports are NATed by the kernel, as a client on another host's are. A client
# container on a Docker network is not: the engine leaves connections that come from a
# bridge to docker-proxy, a userland copy that cost (a) 2.2 s of CPU per GiB pushed and
# (c) 1.2 s here (docs/benchmarks.md), a cost no remote client pays.
docker run -d --name "$CLIENT" --network host --tmpfs /bench:rw,size=4g \
  --entrypoint sleep "$CLIENT_IMAGE" infinity >/dev/null

# Targets for sideBySide.js: passwords and CAs from the stacks' outputs (passed in the
# environment and the private work folder, not on command lines).
GATEWAY="$GATEWAY" RECIPE_PASSWORD="$RECIPE_PASSWORD" \
  PORT_PROXY="$PORT_PROXY" PORT_DIRECT="$PORT_DIRECT" PORT_PLAIN="$PORT_PLAIN" PORT_RECIPE="$PORT_RECIPE" \
  bench_data targets --cwd "$PROGRAM" --work "$WORK"
for port in "$PORT_PROXY" "$PORT_DIRECT" "$PORT_RECIPE"; do
  docker exec -i "$CLIENT" sh -c "mkdir -p /etc/docker/certs.d/$GATEWAY:$port && cat >/etc/docker/certs.d/$GATEWAY:$port/ca.crt" <"$WORK/ca-$port.crt"
done
# Every target answers before the clock starts.
for i in $(seq 1 60); do
  ok=1
  docker exec "$CLIENT" curl -fs -o /dev/null "http://$GATEWAY:$PORT_PLAIN/v2/" 2>/dev/null || ok=0
  for port in "$PORT_PROXY" "$PORT_DIRECT" "$PORT_RECIPE"; do
    code=$(docker exec "$CLIENT" curl -s -o /dev/null -w '%{http_code}' --cacert "/etc/docker/certs.d/$GATEWAY:$port/ca.crt" \
      "https://$GATEWAY:$port/v2/" 2>/dev/null || true)
    [[ $code == 401 ]] || ok=0
  done
  [[ $ok == 1 ]] && break
  [[ $i == 60 ]] && { echo "a target does not answer" >&2; docker logs bench-recipe-nginx >&2 || true; exit 1; }
  sleep 1
done

QUICK_FLAG=()
[[ $QUICK == 1 ]] && QUICK_FLAG=(--quick)
log "side by side: (a) (b) (c) (d), round-robin"
node benchmarks/sideBySide.js "$WORK/targets.json" "$WORK/results.json" "${QUICK_FLAG[@]}"

# --- tunings of the proxy's nginx, ad hoc on (a)'s running nginx (the program is unchanged) ---
NGINX_CONTAINER=bench-proxy-nginx
# The "rsa" variant serves an RSA 4096 server key and certificate instead of the stack's
# (ECDSA P-256 by default, serverKeyAlgorithm), from a CA made here, which the client and
# the load generator trust beside the stack's: what a TLS handshake's signature costs.
openssl req -x509 -newkey rsa:4096 -nodes -keyout "$WORK/rsa-ca.key" -out "$WORK/rsa-ca.crt" -days 2 -subj "/CN=bench RSA CA" 2>/dev/null
openssl req -newkey rsa:4096 -nodes -keyout "$WORK/rsa-server.key" -subj "/CN=$GATEWAY" -out "$WORK/rsa-server.csr" 2>/dev/null
printf 'subjectAltName=IP:%s\nextendedKeyUsage=serverAuth\n' "$GATEWAY" >"$WORK/rsa-ext.cnf"
openssl x509 -req -in "$WORK/rsa-server.csr" -CA "$WORK/rsa-ca.crt" -CAkey "$WORK/rsa-ca.key" -CAcreateserial \
  -days 2 -extfile "$WORK/rsa-ext.cnf" -out "$WORK/rsa-server.crt" 2>/dev/null
cat "$WORK/rsa-server.crt" "$WORK/rsa-ca.crt" >"$WORK/rsa-chain.pem"
docker exec -i "$CLIENT" sh -c "cat >>/etc/docker/certs.d/$GATEWAY:$PORT_PROXY/ca.crt" <"$WORK/rsa-ca.crt"
# The variants' target: (a), also trusting that CA; the reference's: (c). The "ssha"
# variant checks the same password against an htpasswd of salted SHA-1 ({SSHA}, which
# nginx reads natively) instead of bcrypt: what bcrypt costs per request.
bench_data variants --work "$WORK"
docker cp "$WORK/htpasswd-ssha" "$NGINX_CONTAINER:/etc/nginx/registry/htpasswd-ssha"
docker exec "$NGINX_CONTAINER" chmod 644 /etc/nginx/registry/htpasswd-ssha
variant() { # NAME ROUND DESCRIPTION SED_SCRIPT (applied to the program's nginx.conf) [rsa|reference]
  local name=$1 round=$2 description=$3 script=$4 kind=${5:-} targets="$WORK/targets-variant.json"
  # "reference": (c) measured in the same rounds, so that each variant's ratio to it is measured, not scaled.
  [[ $kind == reference ]] && targets="$WORK/targets-reference.json"
  docker exec "$NGINX_CONTAINER" sh -c "cp /etc/nginx/registry/chain.pem.program /etc/nginx/registry/chain.pem && cp /etc/nginx/registry/key.pem.program /etc/nginx/registry/key.pem"
  if [[ $kind == rsa ]]; then
    docker cp "$WORK/rsa-chain.pem" "$NGINX_CONTAINER:/etc/nginx/registry/chain.pem"
    docker cp "$WORK/rsa-server.key" "$NGINX_CONTAINER:/etc/nginx/registry/key.pem"
  fi
  docker exec "$NGINX_CONTAINER" sh -c "cp /etc/nginx/nginx.conf.program /etc/nginx/nginx.conf && sed -i '$script' /etc/nginx/nginx.conf && nginx -t -q && nginx -s reload 2>/dev/null"
  sleep 1
  log "tuning variant $name (round $round): $description"
  # The 1 GiB layer in the first round only (it is long); the request rate every round.
  BENCH_SKIP_BIG=$([[ $round == 1 ]] && echo 0 || echo 1) BENCH_TAG="$name-$round-" BENCH_REPS=1 \
    BENCH_VARIANT="$name" BENCH_DESCRIPTION="$description" \
    node benchmarks/sideBySide.js "$targets" "$WORK/variant-$name-$round.json" --subset "${QUICK_FLAG[@]}"
}
docker exec "$NGINX_CONTAINER" sh -c 'for f in /etc/nginx/nginx.conf /etc/nginx/registry/chain.pem /etc/nginx/registry/key.pem; do cp -p "$f" "$f.program"; done'
ROUNDS=3
[[ $QUICK == 1 ]] && ROUNDS=1
# Round-robin too: baseline, then each variant, ROUNDS times.
for round in $(seq 1 "$ROUNDS"); do
  variant reference "$round" "(c), the plain registry (HTTP, no auth), measured in the same rounds: what the ratios compare with" '' reference
  variant baseline "$round" "the program's nginx.conf, measured again beside the variants" ''
  variant reqbuf "$round" "proxy_request_buffering on: nginx reads a whole upload before passing it on (small layers in one piece)" \
    's|proxy_request_buffering off;|proxy_request_buffering on;|'
  variant bodybuf16k "$round" "client_body_buffer_size 16k (nginx's default; the program sets 1m): an upload relayed in smaller pieces" \
    's|client_body_buffer_size 1m;|client_body_buffer_size 16k;|'
  variant rsa "$round" "an RSA 4096 server key instead of ECDSA P-256 (the program's server key before serverKeyAlgorithm): what signing every TLS handshake costs" '' rsa
  variant ssha "$round" "the htpasswd as salted SHA-1 ({SSHA}) instead of bcrypt cost 4, the same password: what the bcrypt check costs (not the program's choice: docs/benchmarks.md)" \
    's|auth_basic_user_file .*;|auth_basic_user_file /etc/nginx/registry/htpasswd-ssha;|'
done
docker exec "$NGINX_CONTAINER" sh -c 'for f in /etc/nginx/nginx.conf /etc/nginx/registry/chain.pem /etc/nginx/registry/key.pem; do cp -p "$f.program" "$f"; done; nginx -s reload 2>/dev/null'

log "(a) proxy layout: pulumi destroy"
t0=$(now)
pulumi_op destroy bench-proxy
DESTROYS=("$(since "$t0")")
log "    destroy: ${DESTROYS[0]} s"
# Two more cycles of up from nothing and destroy, on the now quiet machine: the
# report gives the median of three of each (and of the three type-checked previews).
UP_FRESHES=("$UP_FRESH")
for cycle in 2 3; do
  t0=$(now)
  pulumi_op up bench-proxy --skip-preview
  UP_FRESHES+=("$(since "$t0")")
  t0=$(now)
  pulumi_op destroy bench-proxy
  DESTROYS+=("$(since "$t0")")
  log "    cycle $cycle: up from nothing ${UP_FRESHES[-1]} s, destroy ${DESTROYS[-1]} s"
done
pulumi stack rm --cwd "$PROGRAM" --yes --force --non-interactive --stack bench-proxy >/dev/null
rm -f "$WORK/Pulumi.bench-proxy.yaml"

cat >"$TIMES" <<EOF
{ "program": "$PROGRAM_DESCRIPTION", "runSeconds": $(since "$RUN_START"), "upNoChange": $UP_NOCHANGE, "upFreshDirect": $UP_DIRECT,
  "upFreshSamples": [$(IFS=,; echo "${UP_FRESHES[*]}")], "destroySamples": [$(IFS=,; echo "${DESTROYS[*]}")], "previewNoChangeFirst": $PREVIEW,
  "previewPairs": [$(IFS=,; echo "${PREVIEW_PAIRS[*]}")] }
EOF

DOCS_ARGS=()
[[ $WRITE_DOCS == 1 ]] && DOCS_ARGS=(--docs "$ROOT/docs/benchmarks.md" --png "$ROOT/docs/benchmarks.png")
[[ $WRITE_DOCS == 1 ]] || DOCS_ARGS=(--png "$WORK/benchmarks.png")
node benchmarks/report.js --results "$WORK/results.json" --times "$TIMES" --variants "$WORK" "${DOCS_ARGS[@]}"
if [[ $WRITE_DOCS != 1 ]]; then
  cp "$WORK/benchmarks.png" /tmp/bench-quick.png
  log "chart of this run: /tmp/bench-quick.png (docs not written; --write-docs writes them)"
fi
