#!/usr/bin/env bash
# Builds the images this project needs from Debian bookworm packages, for machines that
# cannot pull images from any registry. Each stands in for an official image and is made
# to behave like it where a health check, a script or a test can tell (entrypoint, tools,
# users, stop signal). Their names and tags are those of scripts/local-images.txt:
#   registry         stands in for registry:2 (Alpine-based): Debian's docker-registry
#   registry3        stands in for registry:3: distribution v3 built from its Go module
#                    (Debian has no v3 package), the version its tag names
#   nginx            stands in for nginx (Debian-based)
#   ssh-client-host  sshd + skopeo + curl: a Docker client host for tests
#   swarm-node       a second Docker engine (Debian's docker.io) in a privileged
#                    container: a swarm worker for tests
#   seaweedfs        SeaweedFS's `weed` built from its Go module (Debian has no package):
#                    an S3 server for tests, the version its tag names
# How: debootstrap a minbase rootfs once (cached outside the repo), copy it per image,
# chroot + apt-get install, strip, then `tar | docker import` (plus a classic `docker
# build` FROM the import for what import refuses: STOPSIGNAL). The v3 registry binary and
# SeaweedFS's weed are built with Go from the module proxy (CGO_ENABLED=0) and cached by
# version outside the repo too.
# Idempotent: an image is skipped when NAME:TAG exists and its label
# private-registry.recipe matches the recipe of this script (a digest of the code that
# builds that image, see image_recipe); tags carry the package version. An image of an
# older recipe (or of a version of this script without the label) is built again under
# the same tag; the image it replaces is removed unless a container still uses it.
# PRIVATE_REGISTRY_IMAGES="registry nginx" builds only those (default: all of the manifest).
# PRIVATE_REGISTRY_IMAGE_NAMESPACE (default private-registry) names the images
# NAMESPACE/registry:..., for trying a changed recipe beside the images in use.
# Facts behind the choices: /work/shared/docs/sandbox-docker-engine.md
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/local-images.sh
. "$SCRIPT_DIR/local-images.sh"
SUITE=bookworm
CACHE_ROOT="${PRIVATE_REGISTRY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/private-registry}"
ROOTFS_DIR="$CACHE_ROOT/rootfs"
BASE_DIR="$ROOTFS_DIR/$SUITE-minbase"
IMAGES="${PRIVATE_REGISTRY_IMAGES:-$(local_image_names | paste -sd ' ')}"
NAMESPACE="${PRIVATE_REGISTRY_IMAGE_NAMESPACE:-private-registry}"
# distribution v3: the newest release the Go module proxy serves (checked 2026-11 with
# `go list -m -versions github.com/distribution/distribution/v3`: v3.0.0 v3.1.1 v3.1.2).
# Docker Hub's registry:3 is 3.1.1 (docker-library/official-images, library/registry,
# 2026-08); v3.1.1 builds the same way. The version is the one the registry3 image's tag
# in scripts/local-images.txt names (3.1.1-debian: 3.1.1).
DISTRIBUTION_V3_VERSION="$(local_image registry3)"
DISTRIBUTION_V3_VERSION="${DISTRIBUTION_V3_VERSION##*:}"
DISTRIBUTION_V3_VERSION="${DISTRIBUTION_V3_VERSION%%-*}"
REGISTRY3_BIN="$CACHE_ROOT/distribution-v$DISTRIBUTION_V3_VERSION/registry"
# SeaweedFS (Apache-2.0): a commit of its master branch, by the pseudo-version the Go
# module proxy gives it. The seaweedfs image's tag in scripts/local-images.txt is
# VERSION-COMMIT: VERSION what `weed version` prints for that commit (weed/util/version),
# COMMIT the pseudo-version's last part. Both are checked, so changing one without the
# other fails instead of mislabelling the image.
SEAWEEDFS_MODULE_VERSION=v0.0.0-20261109003541-7506e5f91cd6
SEAWEEDFS_TAG="$(local_image seaweedfs)"
SEAWEEDFS_TAG="${SEAWEEDFS_TAG##*:}"
SEAWEEDFS_BIN="$CACHE_ROOT/seaweedfs-$SEAWEEDFS_MODULE_VERSION/weed"
CHROOT_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
RECIPE_LABEL=private-registry.recipe

log() { printf '[images] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Docker's repository name rules (lowercase path components separated by /).
[[ "$NAMESPACE" =~ ^[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*$ ]] ||
  die "PRIVATE_REGISTRY_IMAGE_NAMESPACE '$NAMESPACE' is not a Docker repository path"

# image_ref NAME -> NAME:TAG, as scripts/local-images.txt writes it, in NAMESPACE. The tag
# carries the Debian package's upstream version (check_version holds the build to it),
# so a package update in Debian that changes it gives a new tag (and a rebuild).
image_ref() {
  local ref
  ref="$(local_image "$1" 2>/dev/null)" \
    || die "unknown image '$1' in PRIVATE_REGISTRY_IMAGES (known: $(local_image_names | paste -sd ' '))"
  echo "$NAMESPACE/${ref#private-registry/}"
}

# image_recipe NAME: a digest of what makes the image: the code of the functions that
# build it (as bash prints them: comments do not count, heredocs do), its packages, its
# tag and the suite. A change there is a new recipe, so the image is built again.
image_recipe() {
  local ref
  ref="$(image_ref "$1")"
  {
    printf '%s\n' "$SUITE" "${ref##*:}" "$(image_packages "$1")"
    [ "$1" != seaweedfs ] || printf '%s\n' "$SEAWEEDFS_MODULE_VERSION"
    declare -f in_chroot prepare_chroot finish_chroot check_version build_image "configure_${1//-/_}"
    case "$1" in
      registry | registry3) declare -f registry_like_official ;;
      nginx) declare -f patch_nginx_default_user write_nginx_entrypoint ;;
    esac
  } | sha256sum | cut -c1-16
}

# image_current REF RECIPE: REF exists and was built by RECIPE.
image_current() {
  local have
  have="$(docker image inspect --format "{{index .Config.Labels \"$RECIPE_LABEL\"}}" "$1" 2>/dev/null)" || return 1
  [ "$have" = "$2" ]
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

# ensure_seaweedfs_binary: SeaweedFS's weed, built once per version into the cache, as
# ensure_registry3_binary does (the caller's Go, atomic). Not `go install module@version`:
# Go refuses it for a module whose go.mod has replace directives (seaweedfs's has). So
# the module is downloaded, copied to a writable temporary directory (the module cache is
# read-only) and built there as the main module, its replace directives applying.
ensure_seaweedfs_binary() {
  local module=github.com/seaweedfs/seaweedfs work dir start version
  if [ -x "$SEAWEEDFS_BIN" ]; then log "cached: $SEAWEEDFS_BIN"; return 0; fi
  [ "${SEAWEEDFS_MODULE_VERSION##*-}" = "${SEAWEEDFS_TAG##*-}" ] ||
    die "the seaweedfs tag $SEAWEEDFS_TAG does not end with the commit of $SEAWEEDFS_MODULE_VERSION"
  command -v go >/dev/null 2>&1 || die "building $(image_ref seaweedfs) needs Go (1.26.6+, or any Go that may fetch a toolchain) and the Go module proxy"
  mkdir -p "$(dirname "$SEAWEEDFS_BIN")"
  work="$(mktemp -d "$(dirname "$SEAWEEDFS_BIN")/build.XXXXXX")"
  log "building $module/weed@$SEAWEEDFS_MODULE_VERSION with Go (measured 3.8 min on 2 shared cores with its dependencies not downloaded yet, 7 s with a warm Go cache)"
  start=$SECONDS
  # `go mod download -json` prints the module's directory in the module cache as "Dir".
  if ! go mod download -json "$module@$SEAWEEDFS_MODULE_VERSION" >"$work/download.json" 2>"$work/build.log"; then
    log "go mod download failed:"
    cat "$work/download.json" "$work/build.log" >&2
    rm -rf "$work"
    exit 1
  fi
  dir="$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' "$work/download.json")"
  if [ -z "$dir" ] || [ ! -f "$dir/go.mod" ]; then
    rm -rf "$work"
    die "go mod download gave no module directory for $module@$SEAWEEDFS_MODULE_VERSION"
  fi
  cp -r "$dir" "$work/src"
  chmod -R u+w "$work/src"
  if ! (cd "$work/src" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$work/weed" ./weed) >>"$work/build.log" 2>&1; then
    log "go build failed; last lines:"
    tail -n 20 "$work/build.log" >&2
    rm -rf "$work"
    exit 1
  fi
  mv "$work/weed" "$SEAWEEDFS_BIN"
  rm -rf "$work"
  version="$("$SEAWEEDFS_BIN" version 2>/dev/null)"
  log "built $SEAWEEDFS_BIN (${version%%$'\n'*}) in $((SECONDS - start)) s"
}
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

# run_logged LOGFILE CMD...: keep apt/debootstrap chatter in a log; show its tail on failure.
run_logged() {
  local logfile="$1"; shift
  if ! "$@" >>"$logfile" 2>&1; then
    log "command failed: $*; last lines of $logfile:"
    tail -n 25 "$logfile" >&2
    return 1
  fi
}

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

# registry_like_official: what the official registry images (Alpine: busybox, no bash)
# give a health check or a script run inside them: the binary at /bin/registry (the
# caller puts it there), upstream's /entrypoint.sh, and busybox's sh, wget and sha256sum
# with no bash. Debian's other Essential tools (coreutils, dash...) stay for dpkg; only
# these names change. https: Alpine's busybox wget hands TLS to its ssl_client helper
# (libtls over OpenSSL); Debian's hands it to `openssl s_client` when that is on PATH
# (ca-certificates brings openssl), else to busybox's own TLS 1.2 client, which sends no
# signature_algorithms: Go 1.25+ servers (distribution v3 built here) refuse it ("tls:
# missing signature_algorithms from TLS 1.2 peer", wget: "TLS error from peer (alert code
# 40): handshake failure"). So openssl stays, and wget https works as in the official image.
registry_like_official() {
  local w="$CURRENT_WORK" tool
  [ -x "$w/usr/bin/registry" ] || die "no /usr/bin/registry in $w"
  # Upstream's entrypoint (distribution-library-image): a config path means `registry
  # serve PATH`; serve, garbage-collect, help and flags go to the registry binary.
  cat >"$w/entrypoint.sh" <<'EOS'
#!/bin/sh

set -e

case "$1" in
    *.yaml|*.yml) set -- registry serve "$@" ;;
    serve|garbage-collect|help|-*) set -- registry "$@" ;;
esac

exec "$@"
EOS
  chmod 0755 "$w/entrypoint.sh"
  # /bin is /usr/bin (merged /usr). /bin/sh is dash's (dash diverts it and manages the
  # link); busybox's sh takes the link. sha256sum is coreutils': diverted aside.
  [ -x "$w/usr/bin/busybox" ] || die "no busybox in $w"
  ln -sfn busybox "$w/usr/bin/sh"
  run_logged "$LOGFILE" in_chroot dpkg-divert --local --rename --divert /usr/bin/sha256sum.coreutils --add /usr/bin/sha256sum
  for tool in sha256sum wget; do
    [ ! -e "$w/usr/bin/$tool" ] || die "/usr/bin/$tool is still there in $w"
    ln -s busybox "$w/usr/bin/$tool"
  done
  # No bash, as in Alpine: root's shell is sh, and bash goes despite being Essential.
  in_chroot usermod --shell /bin/sh root
  run_logged "$LOGFILE" in_chroot dpkg --purge --force-remove-essential bash
  for tool in sh wget sha256sum; do
    [ "$(readlink -f "$w/usr/bin/$tool")" = "$w/usr/bin/busybox" ] || die "$tool is not busybox in $w"
  done
  [ ! -e "$w/usr/bin/bash" ] || die "bash is still there in $w"
}

configure_registry() {
  local w="$CURRENT_WORK"
  check_version docker-registry 2.8.2
  # The official image has the binary at /bin/registry and nothing named docker-registry.
  run_logged "$LOGFILE" in_chroot dpkg-divert --local --rename --divert /usr/bin/registry --add /usr/bin/docker-registry
  registry_like_official
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
  # As upstream's Dockerfile: ENTRYPOINT ["/entrypoint.sh"], CMD the config path.
  CHANGES=(
    --change 'VOLUME ["/var/lib/registry"]'
    --change 'EXPOSE 5000'
    --change 'ENTRYPOINT ["/entrypoint.sh"]'
    --change 'CMD ["/etc/docker/registry/config.yml"]'
  )
}

configure_registry3() {
  local w="$CURRENT_WORK"
  install -m 0755 "$REGISTRY3_BIN" "$w/usr/bin/registry"
  PKG_VERSION="$DISTRIBUTION_V3_VERSION"
  registry_like_official
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
    --change 'ENTRYPOINT ["/entrypoint.sh"]'
    --change 'CMD ["/etc/distribution/config.yml"]'
  )
}

# patch_nginx_default_user BINARY: the user and group nginx's workers run as when the
# config has no `user` directive are compiled in: nginx/nginx in the official image
# (configure --user=nginx --group=nginx), nobody/nogroup in Debian's build (no --user).
# Rebuilding Debian's nginx with --user is not possible here: the mirror serves no source
# packages for bookworm-security (404 for nginx_*+deb12u*.dsc), and an older source would
# lack the security fixes. So the compiled-in names (and the two messages naming them)
# are replaced in the binary in place, each by a string of the same length padded with
# NUL: what --user/--group would have compiled. Exactly one match of each, else fail.
patch_nginx_default_user() {
  local bin="$1" pair from to offsets pad
  for pair in 'nobody|nginx' 'nogroup|nginx' \
      'getpwnam("nobody") failed|getpwnam("nginx") failed' 'getgrnam("nogroup") failed|getgrnam("nginx") failed'; do
    from="${pair%|*}" to="${pair#*|}"
    offsets="$(LC_ALL=C grep -obaP "\\x00\\Q$from\\E\\x00" "$bin" | cut -d: -f1)"
    [ "$(printf '%s' "$offsets" | grep -c .)" -eq 1 ] || die "'$from' is not in $bin exactly once: not patched"
    pad=$((${#from} - ${#to}))
    { printf '%s' "$to"; head -c "$pad" /dev/zero; } |
      dd of="$bin" bs=1 seek=$((offsets + 1)) conv=notrunc status=none
  done
}

# write_nginx_entrypoint: the official nginx image's /docker-entrypoint.sh and the scripts
# of its /docker-entrypoint.d, for Debian's nginx (as upstream's: POSIX sh, their log
# lines, NGINX_ENTRYPOINT_QUIET_LOGS).
write_nginx_entrypoint() {
  local w="$CURRENT_WORK" default_conf_sha256
  cat >"$w/docker-entrypoint.sh" <<'EOS'
#!/bin/sh
# When the command is nginx (or nginx-debug): source the executable *.envsh files and run
# the executable *.sh files of /docker-entrypoint.d, in version order (a failing one stops
# the start); then the command replaces this shell, whatever it is.
set -e

entrypoint_log() {
    if [ -z "${NGINX_ENTRYPOINT_QUIET_LOGS:-}" ]; then
        echo "$@"
    fi
}

if [ "$1" = "nginx" ] || [ "$1" = "nginx-debug" ]; then
    if find /docker-entrypoint.d/ -mindepth 1 -maxdepth 1 -type f -print -quit 2>/dev/null | read -r _; then
        entrypoint_log "$0: /docker-entrypoint.d/ is not empty, will attempt to perform configuration"
        entrypoint_log "$0: Looking for shell scripts in /docker-entrypoint.d/"
        find /docker-entrypoint.d/ -follow -type f -print | sort -V | while read -r f; do
            case "$f" in
                *.envsh)
                    if [ -x "$f" ]; then
                        entrypoint_log "$0: Sourcing $f"
                        . "$f"
                    else
                        entrypoint_log "$0: Ignoring $f, not executable"
                    fi
                    ;;
                *.sh)
                    if [ -x "$f" ]; then
                        entrypoint_log "$0: Launching $f"
                        "$f"
                    else
                        entrypoint_log "$0: Ignoring $f, not executable"
                    fi
                    ;;
                *) entrypoint_log "$0: Ignoring $f" ;;
            esac
        done
        entrypoint_log "$0: Configuration complete; ready for start up"
    else
        entrypoint_log "$0: No files found in /docker-entrypoint.d/, skipping configuration"
    fi
fi

exec "$@"
EOS
  mkdir -p "$w/docker-entrypoint.d"

  # The official image's default server (conf.d/default.conf: Debian's nginx.conf includes
  # conf.d/*.conf too); 10-listen-on-ipv6-by-default.sh edits it while it is unchanged.
  cat >"$w/etc/nginx/conf.d/default.conf" <<'EOS'
server {
    listen       80;
    server_name  localhost;

    location / {
        root   /usr/share/nginx/html;
        index  index.html index.htm;
    }

    error_page   500 502 503 504  /50x.html;
    location = /50x.html {
        root   /usr/share/nginx/html;
    }
}
EOS
  default_conf_sha256="$(sha256sum "$w/etc/nginx/conf.d/default.conf" | cut -d' ' -f1)"
  mkdir -p "$w/usr/share/nginx/html"
  [ -e "$w/usr/share/nginx/html/index.html" ] ||
    printf '<!DOCTYPE html>\n<html><head><title>Welcome to nginx!</title></head>\n<body><h1>Welcome to nginx!</h1></body></html>\n' \
      >"$w/usr/share/nginx/html/index.html"
  [ -e "$w/usr/share/nginx/html/50x.html" ] ||
    printf '<!DOCTYPE html>\n<html><head><title>Error</title></head>\n<body><h1>An error occurred.</h1></body></html>\n' \
      >"$w/usr/share/nginx/html/50x.html"

  # Upstream compares default.conf with its package's checksum; here, the one written above.
  sed "s/@DEFAULT_CONF_SHA256@/$default_conf_sha256/" >"$w/docker-entrypoint.d/10-listen-on-ipv6-by-default.sh" <<'EOS'
#!/bin/sh
# Adds `listen [::]:80;` to the default server when the container has IPv6 and
# /etc/nginx/conf.d/default.conf is still the image's own.
set -e

entrypoint_log() {
    if [ -z "${NGINX_ENTRYPOINT_QUIET_LOGS:-}" ]; then
        echo "$@"
    fi
}

ME=$(basename "$0")
DEFAULT_CONF_FILE="/etc/nginx/conf.d/default.conf"
DEFAULT_CONF_SHA256="@DEFAULT_CONF_SHA256@"

if [ ! -f "/proc/net/if_inet6" ]; then
    entrypoint_log "$ME: info: ipv6 not available"
    exit 0
fi
if [ ! -f "$DEFAULT_CONF_FILE" ]; then
    entrypoint_log "$ME: info: $DEFAULT_CONF_FILE is not a file or does not exist"
    exit 0
fi
if ! touch "$DEFAULT_CONF_FILE" 2>/dev/null; then
    entrypoint_log "$ME: info: can not modify $DEFAULT_CONF_FILE (read-only file system?)"
    exit 0
fi
if grep -q 'listen  \[::\]:80;' "$DEFAULT_CONF_FILE"; then
    entrypoint_log "$ME: info: IPv6 listen already enabled"
    exit 0
fi
entrypoint_log "$ME: info: Getting the checksum of $DEFAULT_CONF_FILE"
if ! echo "$DEFAULT_CONF_SHA256  $DEFAULT_CONF_FILE" | sha256sum -c - >/dev/null 2>&1; then
    entrypoint_log "$ME: info: $DEFAULT_CONF_FILE differs from the packaged version"
    exit 0
fi
sed -i -E 's,listen       80;,listen       80;\n    listen  [::]:80;,' "$DEFAULT_CONF_FILE"
entrypoint_log "$ME: info: Enabled listen on IPv6 in $DEFAULT_CONF_FILE"
exit 0
EOS

  cat >"$w/docker-entrypoint.d/15-local-resolvers.envsh" <<'EOS'
#!/bin/sh
# Sourced. With NGINX_ENTRYPOINT_LOCAL_RESOLVERS set: exports NGINX_LOCAL_RESOLVERS, the
# nameservers of /etc/resolv.conf (IPv6 ones in brackets), for the templates.
if [ -n "${NGINX_ENTRYPOINT_LOCAL_RESOLVERS:-}" ]; then
    NGINX_LOCAL_RESOLVERS=$(awk '$1 == "nameserver" { printf "%s%s", sep, ($2 ~ /:/ ? "[" $2 "]" : $2); sep = " " }' /etc/resolv.conf)
    export NGINX_LOCAL_RESOLVERS
fi
EOS

  cat >"$w/docker-entrypoint.d/20-envsubst-on-templates.sh" <<'EOS'
#!/bin/sh
# Each NGINX_ENVSUBST_TEMPLATE_DIR/**/*NGINX_ENVSUBST_TEMPLATE_SUFFIX (default
# /etc/nginx/templates, .template) becomes NGINX_ENVSUBST_OUTPUT_DIR/** (default
# /etc/nginx/conf.d) without the suffix, with only the variables defined in the
# environment (and matching NGINX_ENVSUBST_FILTER) substituted.
set -e

entrypoint_log() {
    if [ -z "${NGINX_ENTRYPOINT_QUIET_LOGS:-}" ]; then
        echo "$@"
    fi
}

ME=$(basename "$0")

auto_envsubst() {
    template_dir="${NGINX_ENVSUBST_TEMPLATE_DIR:-/etc/nginx/templates}"
    suffix="${NGINX_ENVSUBST_TEMPLATE_SUFFIX:-.template}"
    output_dir="${NGINX_ENVSUBST_OUTPUT_DIR:-/etc/nginx/conf.d}"
    filter="${NGINX_ENVSUBST_FILTER:-}"

    [ -d "$template_dir" ] || return 0
    if [ ! -w "$output_dir" ]; then
        entrypoint_log "$ME: ERROR: $template_dir exists, but $output_dir is not writable"
        return 0
    fi
    defined_envs=$(awk -v filter="$filter" 'END { for (name in ENVIRON) if (name ~ filter) printf "${%s} ", name }' </dev/null)
    find "$template_dir" -follow -type f -name "*$suffix" -print | while read -r template; do
        relative_path="${template#"$template_dir/"}"
        output_path="$output_dir/${relative_path%"$suffix"}"
        mkdir -p "$(dirname "$output_path")"
        entrypoint_log "$ME: Running envsubst on $template to $output_path"
        envsubst "$defined_envs" <"$template" >"$output_path"
    done
}

auto_envsubst
exit 0
EOS

  cat >"$w/docker-entrypoint.d/30-tune-worker-processes.sh" <<'EOS'
#!/bin/sh
# With NGINX_ENTRYPOINT_WORKER_PROCESSES_AUTOTUNE set: worker_processes in
# /etc/nginx/nginx.conf becomes the number of CPUs this container may use (its CPU set,
# and its CFS quota from cgroup v2 cpu.max or v1 cpu.cfs_quota_us).
set -eu

entrypoint_log() {
    if [ -z "${NGINX_ENTRYPOINT_QUIET_LOGS:-}" ]; then
        echo "$@"
    fi
}

ME=$(basename "$0")

[ -n "${NGINX_ENTRYPOINT_WORKER_PROCESSES_AUTOTUNE:-}" ] || exit 0

if ! touch /etc/nginx/nginx.conf 2>/dev/null; then
    entrypoint_log "$ME: error: can not modify /etc/nginx/nginx.conf (read-only file system?)"
    exit 0
fi

ncpu=$(nproc)
quota="" period=""
if [ -r /sys/fs/cgroup/cpu.max ]; then
    read -r quota period </sys/fs/cgroup/cpu.max
elif [ -r /sys/fs/cgroup/cpu/cpu.cfs_quota_us ] && [ -r /sys/fs/cgroup/cpu/cpu.cfs_period_us ]; then
    quota=$(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us)
    period=$(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us)
fi
case "$quota" in
    "" | max | -1) ;;
    *)
        by_quota=$(( (quota + period - 1) / period ))
        [ "$by_quota" -ge "$ncpu" ] || ncpu=$by_quota
        ;;
esac
[ "$ncpu" -ge 1 ] || ncpu=1

sed -i.bak -E "s/^(worker_processes)(.*)$/# Commented out by $ME on $(date)\n#\1\2\n\1 $ncpu;/" /etc/nginx/nginx.conf
entrypoint_log "$ME: info: worker_processes set to $ncpu"
EOS
  chmod 0755 "$w/docker-entrypoint.sh" "$w"/docker-entrypoint.d/*
}

configure_nginx() {
  local w="$CURRENT_WORK"
  check_version nginx 1.22.1
  # The official image's user and group: nginx, uid and gid 101.
  if in_chroot getent passwd 101 >/dev/null || in_chroot getent group 101 >/dev/null; then
    die "uid or gid 101 is taken in the nginx image: $(in_chroot getent passwd 101) $(in_chroot getent group 101)"
  fi
  in_chroot groupadd --system --gid 101 nginx
  in_chroot useradd --system --gid nginx --uid 101 --no-create-home --home-dir /nonexistent \
    --comment "nginx user" --shell /bin/false nginx
  # Workers of a config without `user` run as nginx (uid 101), as in the official image.
  patch_nginx_default_user "$w/usr/sbin/nginx"
  printf 'events {}\n' >"$w/tmp/no-user.conf"
  in_chroot nginx -t -q -c /tmp/no-user.conf || die "the patched nginx refuses a config without a user directive"
  # Debian's nginx.conf names www-data; the official image's nginx.conf names nginx.
  sed -i 's/^user www-data;/user nginx;/' "$w/etc/nginx/nginx.conf"
  grep -q '^user nginx;' "$w/etc/nginx/nginx.conf" || die "Debian's nginx.conf has no 'user www-data;' line any more"
  # An uploaded /etc/nginx/nginx.conf must be the whole config: no Debian default site
  # (the official image's conf.d/default.conf instead, for the image's own nginx.conf).
  rm -f "$w/etc/nginx/sites-enabled/default"
  # Logs to the container's stdout/stderr, like the official image.
  ln -sf /dev/stdout "$w/var/log/nginx/access.log"
  ln -sf /dev/stderr "$w/var/log/nginx/error.log"
  write_nginx_entrypoint
  CHANGES=(
    --change 'ENTRYPOINT ["/docker-entrypoint.sh"]'
    --change 'EXPOSE 80'
    --change 'CMD ["nginx", "-g", "daemon off;"]'
  )
  # This engine's `docker import` refuses STOPSIGNAL: set in a build FROM the import.
  BUILD_LINES=('STOPSIGNAL SIGQUIT')
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

configure_swarm_node() {
  local w="$CURRENT_WORK"
  # shellcheck disable=SC2016 # ${Version} is dpkg-query's format, not shell
  PKG_VERSION="$(in_chroot dpkg-query -W -f='${Version}' docker.io)"
  [ -x "$w/usr/bin/tini" ] || die "no /usr/bin/tini in $w (docker.io depends on tini)"
  cat >"$w/usr/local/bin/start-dockerd" <<'EOF'
#!/bin/sh
# Entrypoint of private-registry/swarm-node: a second Docker engine for tests. Run it with
# a volume at /var/lib/docker (overlay2 does not work on the container's own overlay
# filesystem) and --privileged, or, where the engine's capability bounding set lacks one
# that --privileged asks for ("unable to apply caps: operation not permitted": no
# CAP_SYS_RESOURCE on the machines measured), with what --privileged gives but that one:
#   --cap-add ALL --cap-drop SYS_RESOURCE --security-opt seccomp=unconfined
#   --security-opt apparmor=unconfined --security-opt systempaths=unconfined
#   --device-cgroup-rule 'a *:* rwm'
# Arguments go to dockerd. tini is PID 1 (reaps the shims).
set -eu
# A killed container starts again with the files of its last run in /run (the container's
# own layer): a stale containerd pid makes dockerd wait for a containerd that never comes
# ("timeout waiting for containerd to start"). Nothing of the last run is alive any more.
rm -rf /run/docker /run/containerd /run/docker.pid /run/docker.sock
# Without --privileged, /sys and this container's cgroups are mounted read-only: the
# engine could not make its containers' cgroups. Writable, as --privileged mounts them.
if awk '$2 == "/sys" && $4 ~ /(^|,)ro(,|$)/ { found = 1 } END { exit !found }' /proc/mounts; then
  mount -o remount,rw /sys
fi
awk '$3 ~ /^cgroup2?$/ && $4 ~ /(^|,)ro(,|$)/ { print $2 }' /proc/mounts | while read -r m; do
  mount -o remount,bind,rw "$m" || { echo "start-dockerd: cannot make $m writable: run with --privileged" >&2; exit 1; }
done
# cgroup v2 (unused on the machines measured, which have v1): as moby's hack/dind, move
# this container's processes into a child group so that the controllers can be delegated.
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
  mkdir -p /sys/fs/cgroup/init
  xargs -rn1 </sys/fs/cgroup/cgroup.procs >/sys/fs/cgroup/init/cgroup.procs 2>/dev/null || :
  sed -e 's/ / +/g' -e 's/^/+/' </sys/fs/cgroup/cgroup.controllers >/sys/fs/cgroup/cgroup.subtree_control || :
fi
exec dockerd --host unix:///var/run/docker.sock --exec-opt native.cgroupdriver=cgroupfs "$@"
EOF
  chmod 755 "$w/usr/local/bin/start-dockerd"
  CHANGES=(
    --change 'VOLUME ["/var/lib/docker"]'
    --change 'ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/start-dockerd"]'
  )
}

configure_seaweedfs() {
  local w="$CURRENT_WORK" version
  install -m 0755 "$SEAWEEDFS_BIN" "$w/usr/local/bin/weed"
  # `weed version` prints "version 30GB 4.53  linux amd64" (then an advertisement): the
  # tag's VERSION must be in its first line.
  version="$(in_chroot weed version 2>/dev/null)"
  version="${version%%$'\n'*}"
  case " $version " in
    *" ${SEAWEEDFS_TAG%-*} "*) log "weed: $version ($SEAWEEDFS_MODULE_VERSION)" ;;
    *) die "weed $SEAWEEDFS_MODULE_VERSION says '$version', not ${SEAWEEDFS_TAG%-*}: update the seaweedfs tag in scripts/local-images.txt" ;;
  esac
  PKG_VERSION="$SEAWEEDFS_MODULE_VERSION"
  mkdir -p "$w/data"
  # One process: master, volume server, filer and the S3 gateway on 8333. S3 identities: a
  # JSON file (-s3.config=FILE) or, without one, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY
  # (an admin identity). The master reports usage statistics to seaweedfs.com by default:
  # turned off, as nothing may leave these machines.
  CHANGES=(
    --change 'VOLUME ["/data"]'
    --change 'EXPOSE 8333 9333 8888'
    --change 'WORKDIR /data'
    --change 'CMD ["weed", "server", "-dir=/data", "-s3", "-master.telemetry=false"]'
  )
}

image_packages() {
  case "$1" in
    # busybox: sh, wget and sha256sum as in the official image (Alpine); ca-certificates too.
    registry) echo "docker-registry busybox ca-certificates" ;;
    registry3) echo "busybox ca-certificates" ;;
    # gettext-base: envsubst for 20-envsubst-on-templates.sh, as the official image has it.
    # libnginx-mod-stream: TCP proxying (stream {}), for a config that loads it itself
    # (load_module modules/ngx_stream_module.so; Debian's nginx.conf includes it through
    # modules-enabled/50-mod-stream.conf, harmless for an http-only config).
    nginx) echo "nginx gettext-base libnginx-mod-stream" ;;
    # netavark only satisfies skopeo's container-network-stack dependency; otherwise apt
    # picks containernetworking-plugins (+ iptables), 45 MB that skopeo never uses.
    ssh-client-host) echo "openssh-server skopeo netavark curl ca-certificates sudo" ;;
    # iptables and procps: dockerd's networking and its `ps`-like checks; curl for probes.
    swarm-node) echo "docker.io iptables ca-certificates curl procps" ;;
    seaweedfs) echo "ca-certificates" ;;
  esac
}

build_image() {
  local name="$1" ref key packages start recipe previous id
  ref="$(image_ref "$name")"
  recipe="$(image_recipe "$name")"
  if image_current "$ref" "$recipe"; then log "present: $ref"; return 0; fi
  previous="$(docker image inspect --format '{{.Id}}' "$ref" 2>/dev/null || true)"
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
  PKG_VERSION="" CHANGES=() BUILD_LINES=()
  LOGFILE="$logfile"
  "configure_$key"
  finish_chroot
  log "$ref: importing into Docker (recipe $recipe)"
  local import=(docker import
    --change "ENV PATH=$CHROOT_PATH"
    --change "LABEL private-registry.debian-suite=$SUITE org.opencontainers.image.version=$PKG_VERSION $RECIPE_LABEL=$recipe"
    "${CHANGES[@]}" -)
  if [ "${#BUILD_LINES[@]}" -eq 0 ]; then
    tar -C "$CURRENT_WORK" --numeric-owner -c . | "${import[@]}" "$ref" >/dev/null
  else
    # What import refuses, a classic build adds (FROM the untagged import, which stays as
    # the new image's parent layer).
    id="$(tar -C "$CURRENT_WORK" --numeric-owner -c . | "${import[@]}")"
    if ! printf 'FROM %s\n%s\n' "$id" "$(printf '%s\n' "${BUILD_LINES[@]}")" |
        run_logged "$logfile" env DOCKER_BUILDKIT=0 docker build --quiet --tag "$ref" -; then
      docker image rm "$id" >/dev/null 2>&1 || true
      die "$ref: docker build FROM the imported image failed"
    fi
  fi
  rm -rf "$CURRENT_WORK"
  CURRENT_WORK=""
  # The image this one replaces (an older recipe): removed unless a container uses it.
  if [ -n "$previous" ] && [ "$previous" != "$(docker image inspect --format '{{.Id}}' "$ref")" ]; then
    if docker image rm "$previous" >/dev/null 2>&1; then
      log "$ref: removed the image of the older recipe (${previous:7:12})"
    else
      log "$ref: kept the image of the older recipe (${previous:7:12}): a container still uses it"
    fi
  fi
  log "$ref: built in $((SECONDS - start)) s"
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
  if image_current "$ref" "$(image_recipe "$name")"; then
    log "present: $ref"
  else
    if image_exists "$ref"; then log "stale: $ref (built by another recipe): building it again"; fi
    missing+=("$name")
  fi
done
if [ "${#missing[@]}" -eq 0 ]; then
  print_sizes
  exit 0
fi

for name in "${missing[@]}"; do
  if [ "$name" = registry3 ]; then ensure_registry3_binary; fi
  if [ "$name" = seaweedfs ]; then ensure_seaweedfs_binary; fi
done

# debootstrap, chroot and mount need root. Pass the cache path on: sudo may reset HOME.
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || die "building images needs root (debootstrap, chroot)"
  log "re-running as root with sudo"
  exec sudo PRIVATE_REGISTRY_CACHE="$CACHE_ROOT" PRIVATE_REGISTRY_IMAGES="$IMAGES" \
    PRIVATE_REGISTRY_IMAGE_NAMESPACE="$NAMESPACE" \
    ${DOCKER_HOST:+DOCKER_HOST="$DOCKER_HOST"} "$0" "$@"
fi

if ! command -v debootstrap >/dev/null 2>&1; then
  log "installing debootstrap"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >&2
fi

MIRROR="${DEBIAN_MIRROR:-$(first_uri_for "$SUITE")}"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"
UPDATES_MIRROR="$(first_uri_for "$SUITE-updates")"
SECURITY_MIRROR="${DEBIAN_SECURITY_MIRROR:-$(first_uri_for "$SUITE-security")}"
log "Debian mirror: $MIRROR (updates: ${UPDATES_MIRROR:-none}, security: ${SECURITY_MIRROR:-none})"

mkdir -p "$ROOTFS_DIR"
# One build at a time per cache (a second caller waits, then finds its images built).
exec 9>"$CACHE_ROOT/.build-local-images.lock"
flock 9

trap on_exit EXIT

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

for name in "${missing[@]}"; do build_image "$name"; done
print_sizes
