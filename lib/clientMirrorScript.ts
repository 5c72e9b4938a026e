// Renders the POSIX sh scripts that point a client host's container runtimes at the
// stack's pull-through mirrors, and put every file back on destroy.
//
// - Docker: registry-mirrors merged into daemon.json with jq (every other key kept), then
//   dockerd reloaded (SIGHUP); only for the docker.io mirror, and only when Docker can
//   use it (Docker daemons never send a password to a mirror).
// - containerd: /etc/containerd/certs.d/<upstream>/hosts.toml per mirror.
// - podman, skopeo, buildah, CRI-O: one /etc/containers/registries.conf.d drop-in.
//
// Each file changed is recorded in a state folder on the host (/var/lib/private-registry/
// mirrors-<anchor>): the original bytes (or that there was none) and what was written.
// Remove (and an install, before it writes anew) puts each file back byte for byte when
// nobody changed it since; a daemon.json changed since loses only this stack's mirrors.
// An install that fails puts back what it had changed, so the host is never left with
// files that no state records. Nothing secret is in the scripts.
import { shellQuote } from "./clientTrustScript";
import {
  ClientMirror,
  DAEMON_JSON_MERGE,
  DAEMON_JSON_UNMERGE,
  dockerMirrorUrls,
  registriesConfDropIn,
  renderHostsToml,
  renderRegistriesConf,
} from "./mirrors";

export interface ClientMirrorScriptInput {
  /** The stack's namePrefix: names the drop-in and the state folder. */
  anchorName: string;
  /** Every mirror, by the upstream's name, with the endpoints clients try in order. */
  mirrors: ClientMirror[];
  /**
   * The docker.io mirror's endpoints when Docker daemons can use it (no password asked);
   * [] when there is none or it needs a password (`dockerNote` then says why).
   */
  dockerMirrorEndpoints: string[];
  /** Printed on hosts with Docker when it gets no registry-mirrors although a docker.io mirror exists. */
  dockerNote?: string;
  /** The host has a client certificate (mutual TLS): containerd gets it too. */
  clientCertificate: boolean;
  /** Where things live; overridable for tests. */
  paths?: Partial<ClientMirrorPaths>;
}

export interface ClientMirrorPaths {
  stateRoot: string;
  dockerCertsDir: string;
  /** Used when dockerd's command line names no --config-file. */
  dockerConfig: string;
  /** The process name looked for in /proc (its --config-file, its reload). */
  dockerd: string;
  /** The docker CLI that confirms the reload (absent: not confirmed). */
  dockerCli: string;
  containerdDir: string;
  containersDir: string;
}

const DEFAULT_PATHS: ClientMirrorPaths = {
  stateRoot: "/var/lib/private-registry",
  dockerCertsDir: "/etc/docker/certs.d",
  dockerConfig: "/etc/docker/daemon.json",
  dockerd: "dockerd",
  dockerCli: "docker",
  containerdDir: "/etc/containerd",
  containersDir: "/etc/containers",
};

/** The helpers both scripts use: the state folder, put and restore. */
function common(input: ClientMirrorScriptInput): string {
  const p = { ...DEFAULT_PATHS, ...input.paths };
  return `set -eu
umask 022
state_root=${shellQuote(p.stateRoot)}
state="$state_root/mirrors-"${shellQuote(input.anchorName)}
dockerd_name=${shellQuote(p.dockerd)}
docker_touched=0
say() { printf 'private-registry: %s\\n' "$*"; }
# dockerd's pid (the first one in this PID namespace), or nothing.
dockerd_pid() {
  for d in /proc/[0-9]*; do
    # Not a zombie (state Z): a dockerd that just died is not one to reload.
    if [ "$(cat "$d/comm" 2>/dev/null)" = "$dockerd_name" ] && ! grep -q '^State:.*Z' "$d/status" 2>/dev/null; then
      basename "$d"
      return 0
    fi
  done
}
# dockerd reads its settings again on SIGHUP (registry-mirrors among them); running containers are untouched.
reload_dockerd() {
  pid=$(dockerd_pid)
  if [ -n "$pid" ]; then
    kill -HUP "$pid"
    say "dockerd (pid $pid) reloaded"
  fi
}
# Puts back every file an earlier install of this stack changed, newest first: its own
# bytes when nobody changed it since; else daemon.json loses only this stack's mirrors
# and another file stays as it is now. Then the folders it made, when empty.
restore() {
  [ -d "$state" ] || return 0
  n=$(cat "$state/count" 2>/dev/null || echo 0)
  while [ "$n" -gt 0 ]; do
    e="$state/$n"
    n=$((n - 1))
    [ -d "$e" ] || continue
    target=$(cat "$e/path")
    kind=$(cat "$e/kind")
    if [ ! -e "$target" ] || cmp -s "$target" "$e/ours"; then
      if [ -e "$e/orig" ]; then
        cp -p "$e/orig" "$target.private-registry.new"
        mv -f "$target.private-registry.new" "$target"
        say "put back $target as it was"
      elif [ -e "$target" ]; then
        rm -f "$target"
        say "removed $target"
      fi
    elif [ "$kind" = docker ] && command -v jq >/dev/null 2>&1 && jq -e 'type == "object"' "$target" >/dev/null 2>&1; then
      jq --argjson ours "$(cat "$e/mirrors")" ${shellQuote(DAEMON_JSON_UNMERGE)} "$target" >"$target.private-registry.new"
      cat "$target.private-registry.new" >"$target"
      rm -f "$target.private-registry.new"
      say "$target changed since this stack wrote it: only this stack's registry-mirrors taken out"
    else
      say "$target changed since this stack wrote it: left as it is now" >&2
    fi
    [ "$kind" != docker ] || docker_touched=1
    rm -rf "$e"
  done
  rm -f "$state/count"
  if [ -f "$state/dirs" ]; then
    # Innermost first.
    sed -n '1!G;h;$p' "$state/dirs" | while IFS= read -r dir; do
      [ -z "$dir" ] || rmdir "$dir" 2>/dev/null || true
    done
    rm -f "$state/dirs"
  fi
}
`;
}

/**
 * Configures every runtime found on the host for the mirrors; safe to run again (it
 * first puts back what the last run changed, then writes anew).
 */
export function renderMirrorInstallScript(input: ClientMirrorScriptInput): string {
  const p = { ...DEFAULT_PATHS, ...input.paths };
  const hostsTomls = input.mirrors
    .map(
      (m, i) => `  mkdir -p "$tmp/hosts-${i}"
  cat >"$tmp/hosts-${i}/hosts.toml" <<'PRIVATE_REGISTRY_EOF'
${renderHostsToml(m, p.dockerCertsDir, input.clientCertificate, input.anchorName)}PRIVATE_REGISTRY_EOF
  put "$containerd_dir/certs.d/"${shellQuote(m.name)}"/hosts.toml" "$tmp/hosts-${i}/hosts.toml" file
  say "containerd: $containerd_dir/certs.d/"${shellQuote(m.name)}"/hosts.toml"
`,
    )
    .join("");
  const urls = JSON.stringify(dockerMirrorUrls(input.dockerMirrorEndpoints));
  const docker =
    input.dockerMirrorEndpoints.length > 0
      ? `if [ -n "$(dockerd_pid)" ] || command -v "$dockerd_name" >/dev/null 2>&1; then
  pid=$(dockerd_pid)
  config=${shellQuote(p.dockerConfig)}
  if [ -n "$pid" ]; then
    args=$(tr '\\0' '\\n' <"/proc/$pid/cmdline")
    given=$(printf '%s\\n' "$args" | sed -n 's/^--config-file=//p')
    [ -n "$given" ] || given=$(printf '%s\\n' "$args" | sed -n '/^--config-file$/{n;p;}')
    [ -z "$given" ] || config=$given
    if printf '%s\\n' "$args" | grep -q -- '^--registry-mirror'; then
      say "dockerd runs with --registry-mirror on its command line, and Docker refuses registry-mirrors in $config as well; move that flag's value into $config (or take docker.io out of mirrors)" >&2
      exit 1
    fi
  fi
  if ! command -v jq >/dev/null 2>&1; then
    say "Docker: jq is needed to add registry-mirrors to $config keeping every other setting; install jq (apt-get install jq, dnf install jq)" >&2
    exit 1
  fi
  if [ -e "$config" ] && ! jq -e 'type == "object"' "$config" >/dev/null 2>&1; then
    say "Docker: $config is not a JSON object; it is left alone (fix it, then deploy again)" >&2
    exit 1
  fi
  if [ -e "$config" ]; then cp "$config" "$tmp/daemon.json"; else printf '{}\\n' >"$tmp/daemon.json"; fi
  jq --argjson ours ${shellQuote(urls)} ${shellQuote(DAEMON_JSON_MERGE)} "$tmp/daemon.json" >"$tmp/daemon.json.new"
  put "$config" "$tmp/daemon.json.new" docker ${shellQuote(urls)}
  docker_touched=1
  say "Docker: registry-mirrors in $config"
fi
`
      : input.dockerNote
        ? `if [ -n "$(dockerd_pid)" ] || command -v "$dockerd_name" >/dev/null 2>&1; then
  say ${shellQuote(`Docker: ${input.dockerNote}`)}
fi
`
        : "";
  const dropIn = renderRegistriesConf(input.mirrors, input.anchorName);
  return `${common(input)}containerd_dir=${shellQuote(p.containerdDir)}
containers_dir=${shellQuote(p.containersDir)}
tmp=$(mktemp -d)
# Records a file's original bytes (or that there was none), then writes it atomically
# (keeping an existing file's mode); kind "docker" also records the mirrors it added.
put() {
  target=$1
  n=$(($(cat "$state/count" 2>/dev/null || echo 0) + 1))
  printf '%s\n' "$n" >"$state/count"
  e="$state/$n"
  mkdir "$e"
  printf '%s\\n' "$target" >"$e/path"
  printf '%s\\n' "$3" >"$e/kind"
  [ -z "\${4:-}" ] || printf '%s\\n' "$4" >"$e/mirrors"
  if [ -e "$target" ]; then cp -p "$target" "$e/orig"; fi
  make_dirs "$(dirname "$target")"
  if [ -e "$target" ]; then cp -p "$target" "$target.private-registry.new"; cat "$2" >"$target.private-registry.new"; else cp "$2" "$target.private-registry.new"; fi
  mv -f "$target.private-registry.new" "$target"
  cp "$target" "$e/ours"
}
# mkdir -p that records, outermost first, each folder it made.
make_dirs() {
  missing=""
  dir=$1
  while [ ! -d "$dir" ]; do
    missing="$dir
$missing"
    dir=$(dirname "$dir")
  done
  printf '%s' "$missing" | while IFS= read -r dir; do
    [ -z "$dir" ] && continue
    mkdir "$dir"
    printf '%s\\n' "$dir" >>"$state/dirs"
  done
}
finish() {
  status=$?
  rm -rf "$tmp"
  if [ "$status" -ne 0 ]; then
    restore
    rmdir "$state" 2>/dev/null || true
    rmdir "$state_root" 2>/dev/null || true
    [ "$docker_touched" -eq 0 ] || reload_dockerd
    say "configuring the mirrors failed; every file it had changed on this host is put back" >&2
  fi
  exit "$status"
}
trap finish EXIT
restore
mkdir -p "$state"
configured=0
${docker}if [ -d "$containerd_dir" ]; then
${hostsTomls}  configured=1
fi
if [ -d "$containers_dir" ]; then
  cat >"$tmp/drop-in.conf" <<'PRIVATE_REGISTRY_EOF'
${dropIn}PRIVATE_REGISTRY_EOF
  put "$containers_dir/registries.conf.d/"${shellQuote(registriesConfDropIn(input.anchorName))} "$tmp/drop-in.conf" file
  say "podman/skopeo/CRI-O: $containers_dir/registries.conf.d/"${shellQuote(registriesConfDropIn(input.anchorName))}
  configured=1
fi
[ "$docker_touched" -eq 0 ] || configured=1
[ "$configured" -eq 1 ] || say "no Docker, containerd or containers configuration on this host: no runtime to point at the mirrors"
if [ "$docker_touched" -eq 1 ]; then
  reload_dockerd
${
  input.dockerMirrorEndpoints.length > 0
    ? `  # The reload is asynchronous and reports errors only in dockerd's log: wait until it shows our mirror.
  docker_cli=${shellQuote(p.dockerCli)}
  if [ -n "$(dockerd_pid)" ] && command -v "$docker_cli" >/dev/null 2>&1 && "$docker_cli" info >/dev/null 2>&1; then
    i=0
    until "$docker_cli" info --format '{{json .RegistryConfig.Mirrors}}' 2>/dev/null | grep -qF ${shellQuote(`https://${input.dockerMirrorEndpoints[0]}`)}; do
      i=$((i + 1))
      if [ "$i" -ge 40 ]; then
        say "dockerd did not take the new registry-mirrors within 10 s; its log says why" >&2
        exit 1
      fi
      sleep 0.25
    done
    say "dockerd lists the mirror"
  fi
`
    : ""
}fi
`;
}

/** Puts back every file the install changed; safe when there is nothing to put back. */
export function renderMirrorRemoveScript(input: ClientMirrorScriptInput): string {
  return `${common(input)}restore
rmdir "$state" 2>/dev/null || true
rmdir "$state_root" 2>/dev/null || true
[ "$docker_touched" -eq 0 ] || reload_dockerd
`;
}
