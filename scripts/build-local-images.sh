#!/usr/bin/env bash
# Builds the images this project needs from Debian bookworm packages, for machines that
# cannot pull images from any registry:
#   private-registry/registry:2.8.2-debian      stands in for registry:2
#   private-registry/registry:3.1.2-debian      stands in for registry:3: distribution v3 built
#                                               from its Go module (Debian has no v3 package)
#   private-registry/nginx:1.22.1-debian        stands in for nginx
#   private-registry/ssh-client-host:bookworm   sshd + skopeo + curl: a Docker client host for tests
# How: debootstrap a minbase rootfs once (cached outside the repo), copy it per image,
# chroot + apt-get install, strip, then `tar | docker import`. The v3 registry binary is
# built with Go from the module proxy (CGO_ENABLED=0) and cached by version outside the
# repo too.
# Idempotent: an image whose NAME:TAG exists is skipped (tags carry the package version).
# PRIVATE_REGISTRY_IMAGES="registry nginx ssh-client-host registry3" builds only a subset.
# Facts behind the choices: /work/shared/docs/sandbox-docker-engine.md
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SUITE=bookworm
CACHE_ROOT="${PRIVATE_REGISTRY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/private-registry}"
ROOTFS_DIR="$CACHE_ROOT/rootfs"
BASE_DIR="$ROOTFS_DIR/$SUITE-minbase"
IMAGES="${PRIVATE_REGISTRY_IMAGES:-registry nginx ssh-client-host registry3}"
# distribution v3: the newest release the Go module proxy serves (checked 2026-11 with
# `go list -m -versions github.com/distribution/distribution/v3`: v3.0.0 v3.1.1 v3.1.2).
DISTRIBUTION_V3_VERSION=3.1.2
REGISTRY3_BIN="$CACHE_ROOT/distribution-v$DISTRIBUTION_V3_VERSION/registry"
CHROOT_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

log() { printf '[images] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# image_ref NAME -> NAME:TAG. The tag carries the Debian package's upstream version, so a
# package update in Debian that changes it gives a new tag (and a rebuild).
image_ref() {
  case "$1" in
    registry) echo "private-registry/registry:2.8.2-debian" ;;
    nginx) echo "private-registry/nginx:1.22.1-debian" ;;
    ssh-client-host) echo "private-registry/ssh-client-host:$SUITE" ;;
    registry3) echo "private-registry/registry:$DISTRIBUTION_V3_VERSION-debian" ;;
    *) die "unknown image '$1' in PRIVATE_REGISTRY_IMAGES (known: registry nginx ssh-client-host registry3)" ;;
  esac
}

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

print_sizes() {
  local name ref size
  for name in $IMAGES; do
    ref="$(image_ref "$name")"
    size="$(docker image inspect --format '{{.Size}}' "$ref")"
    log "$(printf '%-45s %6s MB' "$ref" "$((size / 1000000))")"
  done
}

for name in $IMAGES; do image_ref "$name" >/dev/null; done

# The images go into a Docker engine; start one if none answers.
if ! docker version >/dev/null 2>&1; then
  log "no Docker engine answers; running ensure-docker-engine.sh"
  "$SCRIPT_DIR/ensure-docker-engine.sh"
fi

missing=()
for name in $IMAGES; do
  ref="$(image_ref "$name")"
  if image_exists "$ref"; then log "present: $ref"; else missing+=("$name"); fi
done
if [ "${#missing[@]}" -eq 0 ]; then
  print_sizes
  exit 0
fi

# ensure_registry3_binary: distribution v3's cmd/registry, built once per version into
# the cache. Before the sudo below, so it uses the caller's Go and module cache; atomic
# (a temporary GOBIN, then mv), so a concurrent or killed build never leaves half a file.
ensure_registry3_binary() {
  local module=github.com/distribution/distribution/v3 gobin start
  if [ -x "$REGISTRY3_BIN" ]; then log "cached: $REGISTRY3_BIN"; return 0; fi
  command -v go >/dev/null 2>&1 || die "building $(image_ref registry3) needs Go (1.26+, or any Go that may fetch a toolchain) and the Go module proxy"
  mkdir -p "$(dirname "$REGISTRY3_BIN")"
  gobin="$(mktemp -d "$(dirname "$REGISTRY3_BIN")/build.XXXXXX")"
  log "building $module/cmd/registry@v$DISTRIBUTION_V3_VERSION with Go (measured 7.5 min on 2 shared cores with nothing downloaded or compiled yet, 15 s with a warm Go cache)"
  start=$SECONDS
  if ! GOBIN="$gobin" CGO_ENABLED=0 go install -trimpath \
      -ldflags "-s -w -X $module/version.version=v$DISTRIBUTION_V3_VERSION" \
      "$module/cmd/registry@v$DISTRIBUTION_V3_VERSION" >"$gobin/build.log" 2>&1; then
    log "go install failed; last lines:"
    tail -n 20 "$gobin/build.log" >&2
    rm -rf "$gobin"
    exit 1
  fi
  mv "$gobin/registry" "$REGISTRY3_BIN"
  rm -rf "$gobin"
  log "built $REGISTRY3_BIN ($("$REGISTRY3_BIN" --version)) in $((SECONDS - start)) s"
}
for name in "${missing[@]}"; do
  if [ "$name" = registry3 ]; then ensure_registry3_binary; fi
done

# debootstrap, chroot and mount need root. Pass the cache path on: sudo may reset HOME.
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || die "building images needs root (debootstrap, chroot)"
  log "re-running as root with sudo"
  exec sudo PRIVATE_REGISTRY_CACHE="$CACHE_ROOT" PRIVATE_REGISTRY_IMAGES="$IMAGES" \
    ${DOCKER_HOST:+DOCKER_HOST="$DOCKER_HOST"} "$0" "$@"
fi

if ! command -v debootstrap >/dev/null 2>&1; then
  log "installing debootstrap"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >&2
fi

# apt_sources: "URI SUITE" for every enabled binary source apt uses on this machine
# (one-line *.list and deb822 *.sources), so the images come from the same reachable mirror.
apt_sources() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -r "$f" ] || continue
    sed -e 's/#.*//' -e 's/\[[^]]*\]//' "$f" | awk '$1 == "deb" { print $2, $3 }'
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] || continue
    awk '
      function flush(  n, m, i, j, u, s) {
        if (types ~ /(^| )deb( |$)/ && enabled != "no") {
          n = split(uris, u, " "); m = split(suites, s, " ")
          for (i = 1; i <= n; i++) for (j = 1; j <= m; j++) print u[i], s[j]
        }
        types = uris = suites = ""; enabled = "yes"
      }
      BEGIN { enabled = "yes" }
      /^[ \t]*#/ { next }
      /^[ \t]*$/ { flush(); next }
      /^[^ \t]/ {
        key = tolower($1); sub(/:$/, "", key); $1 = ""; val = $0; sub(/^ +/, "", val)
        if (key == "types") types = val
        else if (key == "uris") uris = val
        else if (key == "suites") suites = val
        else if (key == "enabled") enabled = tolower(val)
      }
      END { flush() }' "$f"
  done
}
first_uri_for() { apt_sources | awk -v s="$1" '$2 == s { sub(/\/+$/, "", $1); print $1; exit }'; }

MIRROR="${DEBIAN_MIRROR:-$(first_uri_for "$SUITE")}"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"
UPDATES_MIRROR="$(first_uri_for "$SUITE-updates")"
SECURITY_MIRROR="${DEBIAN_SECURITY_MIRROR:-$(first_uri_for "$SUITE-security")}"
log "Debian mirror: $MIRROR (updates: ${UPDATES_MIRROR:-none}, security: ${SECURITY_MIRROR:-none})"

mkdir -p "$ROOTFS_DIR"
# One build at a time per cache (a second caller waits, then finds its images built).
exec 9>"$CACHE_ROOT/.build-local-images.lock"
flock 9

# unmount_under DIR: a run killed mid-build leaves /proc mounted in its work dir;
# unmount it before anything removes that directory.
unmount_under() {
  local mnt
  awk -v d="$1/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r | while read -r mnt; do
    umount -l "$mnt" || true
  done
}
CURRENT_WORK=""
on_exit() {
  local rc=$?
  if [ -n "$CURRENT_WORK" ]; then
    unmount_under "$CURRENT_WORK"
    [ "$rc" -ne 0 ] && log "failed; work dir left for inspection: $CURRENT_WORK"
  fi
  return "$rc"
}
trap on_exit EXIT

# run_logged LOGFILE CMD...: keep apt/debootstrap chatter in a log; show its tail on failure.
run_logged() {
  local logfile="$1"; shift
  if ! "$@" >>"$logfile" 2>&1; then
    log "command failed: $*; last lines of $logfile:"
    tail -n 25 "$logfile" >&2
    return 1
  fi
}

if [ ! -e "$BASE_DIR/.complete" ]; then
  log "debootstrap --variant=minbase $SUITE into $BASE_DIR (about 30-45 s)"
  unmount_under "$BASE_DIR.tmp"
  rm -rf "$BASE_DIR.tmp" "$BASE_DIR"
  run_logged "$ROOTFS_DIR/debootstrap.log" debootstrap --variant=minbase \
    --keyring=/usr/share/keyrings/debian-archive-keyring.gpg "$SUITE" "$BASE_DIR.tmp" "$MIRROR"
  touch "$BASE_DIR.tmp/.complete"
  mv "$BASE_DIR.tmp" "$BASE_DIR"
else
  log "cached base rootfs: $BASE_DIR"
fi

in_chroot() {
  chroot "$CURRENT_WORK" /usr/bin/env -i PATH="$CHROOT_PATH" HOME=/root LANG=C.UTF-8 \
    DEBIAN_FRONTEND=noninteractive "$@"
}

# prepare_chroot: apt sources (with security updates), no docs, no service starts, DNS, /proc.
prepare_chroot() {
  local w="$CURRENT_WORK"
  {
    echo "deb $MIRROR $SUITE main"
    [ -z "$UPDATES_MIRROR" ] || echo "deb $UPDATES_MIRROR $SUITE-updates main"
    [ -z "$SECURITY_MIRROR" ] || echo "deb $SECURITY_MIRROR $SUITE-security main"
  } >"$w/etc/apt/sources.list"
  # Kept in the image, like Debian's slim images: later installs stay small too.
  cat >"$w/etc/dpkg/dpkg.cfg.d/01-private-registry-nodoc" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
  cat >"$w/etc/apt/apt.conf.d/01-private-registry" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
EOF
  # Package scripts must not try to start services inside the chroot.
  printf '#!/bin/sh\nexit 101\n' >"$w/usr/sbin/policy-rc.d"
  chmod 755 "$w/usr/sbin/policy-rc.d"
  rm -f "$w/etc/resolv.conf"
  cp /etc/resolv.conf "$w/etc/resolv.conf"
  mount -t proc proc "$w/proc"
}

# finish_chroot: drop what an image must not carry (caches, logs, host DNS/hostname, /dev nodes).
finish_chroot() {
  local w="$CURRENT_WORK"
  in_chroot apt-get clean
  umount "$w/proc"
  rm -f "$w/usr/sbin/policy-rc.d"
  rm -rf "${w:?}"/var/lib/apt/lists/* "${w:?}"/var/cache/apt/*.bin "${w:?}"/var/cache/debconf/*-old \
    "${w:?}"/var/lib/dpkg/*-old "${w:?}"/var/cache/ldconfig/aux-cache "${w:?}"/var/log/apt/* \
    "${w:?}"/var/log/dpkg.log "${w:?}"/var/log/alternatives.log "${w:?}"/var/log/bootstrap.log \
    "${w:?}"/tmp/* "${w:?}"/var/tmp/* "${w:?}"/root/.cache "${w:?}"/dev/* "$w/.complete"
  rm -rf "${w:?}"/usr/share/man/* "${w:?}"/usr/share/info/* "${w:?}"/usr/share/lintian/*
  find "$w/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
  find "$w/usr/share/doc" -mindepth 1 -type d -empty -delete
  find "$w/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
  # Docker bind-mounts its own resolv.conf/hostname/hosts at run time.
  : >"$w/etc/resolv.conf"
  : >"$w/etc/hostname"
  printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$w/etc/hosts"
  [ ! -e "$w/etc/machine-id" ] || : >"$w/etc/machine-id"
}

# check_version PACKAGE UPSTREAM: the tag promises this upstream version; fail rather than lie.
check_version() {
  local v
  # shellcheck disable=SC2016 # ${Version} is dpkg-query's format, not shell
  v="$(in_chroot dpkg-query -W -f='${Version}' "$1")"
  case "${v#*:}" in
    "$2" | "$2"[-+~]*) log "$1 $v" ;;
    *) die "$1 is $v in Debian now, not $2: update the tag in image_ref" ;;
  esac
  PKG_VERSION="$v"
}

configure_registry() {
  local w="$CURRENT_WORK"
  check_version docker-registry 2.8.2
  # The official registry:2 image's default config.yml.
  mkdir -p "$w/etc/docker/registry" "$w/var/lib/registry"
  cat >"$w/etc/docker/registry/config.yml" <<'EOF'
version: 0.1
log:
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: /var/lib/registry
http:
  addr: :5000
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
EOF
  CHANGES=(
    --change 'VOLUME ["/var/lib/registry"]'
    --change 'EXPOSE 5000'
    --change 'CMD ["/usr/bin/docker-registry", "serve", "/etc/docker/registry/config.yml"]'
  )
}

configure_registry3() {
  local w="$CURRENT_WORK"
  install -m 0755 "$REGISTRY3_BIN" "$w/usr/bin/registry"
  PKG_VERSION="$DISTRIBUTION_V3_VERSION"
  # As the official registry:3 image, its config is /etc/distribution/config.yml (registry:2
  # read /etc/docker/registry/config.yml). The default one is upstream's
  # cmd/registry/config-example.yml, which turns on htpasswd auth at /etc/registry: a file
  # v3 creates with a random user "docker" when it is missing. Kept as it is, so that the
  # tests meet what an ignored config leads to.
  mkdir -p "$w/etc/distribution" "$w/var/lib/registry"
  cat >"$w/etc/distribution/config.yml" <<'EOF'
version: 0.1
log:
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: /var/lib/registry
  tag:
    concurrencylimit: 8
http:
  addr: :5000
  headers:
    X-Content-Type-Options: [nosniff]
auth:
  htpasswd:
    realm: basic-realm
    path: /etc/registry
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
EOF
  CHANGES=(
    --change 'VOLUME ["/var/lib/registry"]'
    --change 'EXPOSE 5000'
    # As upstream's image: v3 would otherwise export traces to localhost:4318.
    --change 'ENV OTEL_TRACES_EXPORTER=none'
    --change 'CMD ["registry", "serve", "/etc/distribution/config.yml"]'
  )
}

configure_nginx() {
  local w="$CURRENT_WORK"
  check_version nginx 1.22.1
  # An uploaded /etc/nginx/nginx.conf must be the whole config: no Debian default site.
  rm -f "$w/etc/nginx/sites-enabled/default"
  # Logs to the container's stdout/stderr, like the official image.
  ln -sf /dev/stdout "$w/var/log/nginx/access.log"
  ln -sf /dev/stderr "$w/var/log/nginx/error.log"
  # Configs written for the official image say `user nginx;`.
  in_chroot useradd --system --user-group --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin nginx
  CHANGES=(
    --change 'EXPOSE 80'
    --change 'CMD ["nginx", "-g", "daemon off;"]'
  )
}

configure_ssh_client_host() {
  local w="$CURRENT_WORK"
  # shellcheck disable=SC2016 # ${Version} is dpkg-query's format, not shell
  PKG_VERSION="$(in_chroot dpkg-query -W -f='${Version}' openssh-server)"
  # Host keys are made per container at start, never shared through the image.
  rm -f "${w:?}"/etc/ssh/ssh_host_*
  mkdir -p "$w/etc/docker/certs.d"
  cat >"$w/etc/ssh/sshd_config.d/private-registry.conf" <<'EOF'
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
EOF
  cat >"$w/usr/local/bin/start-sshd" <<'EOF'
#!/bin/sh
# Entrypoint of private-registry/ssh-client-host (a stand-in Docker client host for tests).
# AUTHORIZED_KEY: public key allowed for root (and for SSH_USER, if set and not root).
set -eu
ssh-keygen -A >/dev/null
mkdir -p /run/sshd
chmod 0755 /run/sshd

# install_key HOME OWNER
install_key() {
  mkdir -p "$1/.ssh"
  printf '%s\n' "$AUTHORIZED_KEY" >"$1/.ssh/authorized_keys"
  chmod 700 "$1/.ssh"
  chmod 600 "$1/.ssh/authorized_keys"
  chown -R "$2:" "$1/.ssh"
}

if [ -n "${AUTHORIZED_KEY:-}" ]; then
  install_key /root root
else
  echo "start-sshd: AUTHORIZED_KEY is empty; only keys already in /root/.ssh/authorized_keys work" >&2
fi

if [ -n "${SSH_USER:-}" ] && [ "$SSH_USER" != root ]; then
  case "$SSH_USER" in
    *[!a-z0-9_-]* | [!a-z_]*) echo "start-sshd: invalid SSH_USER '$SSH_USER'" >&2; exit 1 ;;
  esac
  if ! id -u "$SSH_USER" >/dev/null 2>&1; then
    useradd --create-home --shell /bin/bash "$SSH_USER"
    usermod -p '*' "$SSH_USER" # no password, but not "locked" either: key logins work
  fi
  printf '%s ALL=(ALL) NOPASSWD:ALL\n' "$SSH_USER" >/etc/sudoers.d/90-ssh-user
  chmod 440 /etc/sudoers.d/90-ssh-user
  if [ -n "${AUTHORIZED_KEY:-}" ]; then
    install_key "$(getent passwd "$SSH_USER" | cut -d: -f6)" "$SSH_USER"
  fi
fi

exec /usr/sbin/sshd -D -e
EOF
  chmod 755 "$w/usr/local/bin/start-sshd"
  CHANGES=(
    --change 'EXPOSE 22'
    --change 'CMD ["/usr/local/bin/start-sshd"]'
  )
}

image_packages() {
  case "$1" in
    # wget: the health check the program sets (the official image has busybox wget).
    registry) echo "docker-registry wget" ;;
    # wget (with TLS) for the health check; ca-certificates as the official image has.
    registry3) echo "wget ca-certificates" ;;
    nginx) echo "nginx" ;;
    # netavark only satisfies skopeo's container-network-stack dependency; otherwise apt
    # picks containernetworking-plugins (+ iptables), 45 MB that skopeo never uses.
    ssh-client-host) echo "openssh-server skopeo netavark curl ca-certificates sudo" ;;
  esac
}

build_image() {
  local name="$1" ref key packages start
  ref="$(image_ref "$name")"
  if image_exists "$ref"; then log "present: $ref"; return 0; fi
  start=$SECONDS
  key="${name//-/_}"
  packages="$(image_packages "$name")"
  local logfile="$ROOTFS_DIR/$name.log"
  : >"$logfile"
  CURRENT_WORK="$ROOTFS_DIR/$name.work"
  unmount_under "$CURRENT_WORK"
  rm -rf "$CURRENT_WORK"
  log "$ref: copying base rootfs, installing: $packages (log: $logfile)"
  cp -a "$BASE_DIR" "$CURRENT_WORK"
  prepare_chroot
  run_logged "$logfile" in_chroot apt-get update
  run_logged "$logfile" in_chroot apt-get -y upgrade
  # shellcheck disable=SC2086 # a space-separated package list
  run_logged "$logfile" in_chroot apt-get install -y $packages
  PKG_VERSION="" CHANGES=()
  "configure_$key"
  finish_chroot
  log "$ref: importing into Docker"
  tar -C "$CURRENT_WORK" --numeric-owner -c . | docker import \
    --change "ENV PATH=$CHROOT_PATH" \
    --change "LABEL private-registry.debian-suite=$SUITE org.opencontainers.image.version=$PKG_VERSION" \
    "${CHANGES[@]}" - "$ref" >/dev/null
  rm -rf "$CURRENT_WORK"
  CURRENT_WORK=""
  log "$ref: built in $((SECONDS - start)) s"
}

for name in "${missing[@]}"; do build_image "$name"; done
print_sizes
