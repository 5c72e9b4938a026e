#!/usr/bin/env bash
# How many TLS connections a push opens through the proxy layout, and what the server
# key costs. Deploys the program (proxy layout, local images, a file backend in a
# temporary folder) with serverKeyAlgorithm=$SERVER_KEY (ECDSA, the default, or RSA),
# logs nginx's connection serial with every request, then times three skopeo pushes
# of a 50 x 100 KiB image from a client container and one `docker push` of it from
# this machine's Docker engine, and counts requests and connections for each.
#   SERVER_KEY=RSA bash benchmarks/connections.sh
# Needs what `npm test` sets up. Network: only 10.251.51.0/24, the benchmark's (do not
# run both at once). This machine's /etc/docker/certs.d/10.251.51.1:19443 and its
# docker login for that address exist only while it runs; everything is removed at
# the end, also on failure.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=scripts/local-images.sh
. "$ROOT/scripts/local-images.sh"
export PATH="$HOME/.cache/private-registry/pulumi-v3.248.0/bin:$PATH"
GATEWAY=10.251.51.1
PORT=19443
ENDPOINT="$GATEWAY:$PORT"
NET=bench-net
CLIENT=bench-client
NGINX=bench-proxy-nginx
STACK=bench-proxy
WORK=$(mktemp -d /tmp/connections.XXXXXX)
mkdir -p "$WORK/state"
PULUMI_CONFIG_PASSPHRASE=$(openssl rand -hex 16)
export PULUMI_BACKEND_URL="file://$WORK/state" PULUMI_CONFIG_PASSPHRASE
export PULUMI_SKIP_UPDATE_CHECK=true PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
PROGRAM="$WORK/program"
mkdir -p "$PROGRAM"
cp -r Pulumi.yaml package.json tsconfig.json index.ts lib components "$PROGRAM/"
ln -s "$ROOT/node_modules" "$PROGRAM/node_modules"

cleanup() {
  set +e
  docker logout "$ENDPOINT" >/dev/null 2>&1
  rm -rf "/etc/docker/certs.d/$ENDPOINT"
  docker rmi -f bench/small:1 "$ENDPOINT/bench/dsmall:1" >/dev/null 2>&1
  pulumi destroy --cwd "$PROGRAM" --yes --non-interactive --stack "$STACK" --config-file "$WORK/stack.yaml" >/dev/null 2>&1
  docker rm -f "$CLIENT" >/dev/null 2>&1
  docker network rm "$NET" >/dev/null 2>&1
  local volume
  for volume in $(docker volume ls -q | grep '^bench-'); do docker volume rm "$volume" >/dev/null; done
  rm -rf "$WORK"
}
trap cleanup EXIT

docker network create --subnet 10.251.51.0/24 --gateway "$GATEWAY" "$NET" >/dev/null
pulumi stack init --cwd "$PROGRAM" --non-interactive "$STACK" >/dev/null 2>&1
mv "$PROGRAM/Pulumi.$STACK.yaml" "$WORK/stack.yaml"
cat >>"$WORK/stack.yaml" <<EOF
config:
  private-registry:ipAddresses:
    - $GATEWAY
  private-registry:port: $PORT
  private-registry:listenAddress: $GATEWAY
  private-registry:users:
    - admin
  private-registry:registryImage: $(local_image registry)
  private-registry:nginxImage: $(local_image nginx)
  private-registry:pullImages: false
  private-registry:namePrefix: $STACK
  private-registry:keepDataOnDestroy: false
  private-registry:serverKeyAlgorithm: ${SERVER_KEY:-ECDSA}
EOF
pulumi up --cwd "$PROGRAM" --yes --skip-preview --non-interactive --stack "$STACK" --config-file "$WORK/stack.yaml" >"$WORK/up.log" 2>&1 \
  || { tail -30 "$WORK/up.log" >&2; exit 1; }
# output KEY [SUBKEY]: one of the stack's outputs, on stdout (benchmarks/benchData.ts, Automation API).
output() { "$ROOT/node_modules/.bin/tsx" "$ROOT/benchmarks/benchData.ts" output --cwd "$PROGRAM" --stack "$STACK" "$@"; }
output caCertPem >"$WORK/ca.crt"

docker run -d --name "$CLIENT" --network "$NET" --ip 10.251.51.21 --tmpfs /bench:rw,size=1g \
  --entrypoint sleep "$(local_image ssh-client-host)" infinity >/dev/null
docker exec -i "$CLIENT" sh -c "mkdir -p /etc/docker/certs.d/$ENDPOINT && cat >/etc/docker/certs.d/$ENDPOINT/ca.crt" <"$WORK/ca.crt"
# nginx logs its connection serial with every request (in this test container only).
# shellcheck disable=SC2016 # nginx variables, not shell
docker exec "$NGINX" sh -c 'sed -i "s|^  access_log .*|  log_format conn \"\$connection \$request_method \$status\"; access_log /tmp/conn.log conn;|" /etc/nginx/nginx.conf && nginx -t -q && nginx -s reload 2>/dev/null'
MAKE_IMAGE_SH=$(node benchmarks/loadTs.js tests/helpers/ociImage.ts MAKE_IMAGE_SH)
docker exec -i "$CLIENT" sh -c "mkdir -p /bench/tmp && export TMPDIR=/bench/tmp && $MAKE_IMAGE_SH
make_image /bench/small 50 102400 >/dev/null"
output credentials admin | docker exec -i "$CLIENT" skopeo login --username admin --password-stdin "$ENDPOINT" >/dev/null

count() { # what nginx saw since the last reset
  docker exec "$NGINX" sh -c 'echo "    requests $(wc -l </tmp/conn.log), connections $(cut -d" " -f1 /tmp/conn.log | sort -u | wc -l)"; : >/tmp/conn.log'
}
ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

echo "serverKeyAlgorithm ${SERVER_KEY:-ECDSA}:"
docker exec "$NGINX" sh -c ': >/tmp/conn.log'
for i in 1 2 3; do
  start=$(date +%s%N)
  docker exec "$CLIENT" sh -c "rm -rf /var/lib/containers/cache /root/.local/share/containers/cache && skopeo copy oci:/bench/small:latest docker://$ENDPOINT/bench/small$i:latest >/dev/null"
  echo "  skopeo push $i: $(ms_since "$start") ms"
  count
done

# The same image through this machine's Docker engine.
docker exec "$CLIENT" skopeo copy oci:/bench/small:latest docker-archive:/small.tar:bench/small:1 >/dev/null
docker cp "$CLIENT:/small.tar" "$WORK/small.tar"
docker load -i "$WORK/small.tar" >/dev/null
docker tag bench/small:1 "$ENDPOINT/bench/dsmall:1"
mkdir -p "/etc/docker/certs.d/$ENDPOINT"
cp "$WORK/ca.crt" "/etc/docker/certs.d/$ENDPOINT/ca.crt"
output credentials admin | docker login --username admin --password-stdin "$ENDPOINT" >/dev/null 2>&1
start=$(date +%s%N)
docker push "$ENDPOINT/bench/dsmall:1" >/dev/null
echo "  docker push: $(ms_since "$start") ms"
count
