// Renders the POSIX sh scripts that install and remove the registry's CA on a
// Docker client host. The CA arrives on stdin; nothing secret is in the scripts.

export interface ClientTrustScriptInput {
  /** Registry endpoints as clients dial them (host or host:port). */
  endpoints: string[];
  /** Also manage the CA in the OS trust store. */
  trustOs: boolean;
  /** File name (without .crt) used in the OS trust store. */
  anchorName: string;
  /** Overridable for tests; Docker reads /etc/docker/certs.d. */
  dockerCertsDir?: string;
}

const DOCKER_CERTS_DIR = "/etc/docker/certs.d";
const DEBIAN_ANCHORS = "/usr/local/share/ca-certificates";
const RHEL_ANCHORS = "/etc/pki/ca-trust/source/anchors";

/** Single-quotes a value for sh. */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/**
 * Left in the certs directory when the install script created it (and maybe its
 * parents). Holds how many folder levels it created, so that the last remove on
 * the host takes them away again. Shared by every stack on the host.
 */
export const CREATED_MARKER = ".private-registry-created";

function header(input: ClientTrustScriptInput): string {
  return `set -eu
umask 022
certs_dir=${shellQuote(input.dockerCertsDir ?? DOCKER_CERTS_DIR)}
marker="$certs_dir/${CREATED_MARKER}"
${input.trustOs ? `anchor_name=${shellQuote(`${input.anchorName}.crt`)}
# The trust-store tools chatter on stderr (c_rehash warns about the bundle itself);
# show their output only when they fail, so a deploy prints nothing to act on.
quietly() {
  if ! out=$("$@" 2>&1); then
    printf '%s\\n' "$out" >&2
    return 1
  fi
}
` : ""}`;
}

function endpointWords(input: ClientTrustScriptInput): string {
  return input.endpoints.map(shellQuote).join(" ");
}

/** Installs the CA from stdin for every endpoint; safe to run any number of times. */
export function renderInstallScript(input: ClientTrustScriptInput): string {
  const osTrust = input.trustOs
    ? `
# OS trust store, the way each family expects it (never appended to a bundle).
if [ -d ${DEBIAN_ANCHORS} ] && command -v update-ca-certificates >/dev/null 2>&1; then
  install -m 0644 "$ca_file" "${DEBIAN_ANCHORS}/$anchor_name"
  quietly update-ca-certificates
elif command -v update-ca-trust >/dev/null 2>&1; then
  mkdir -p ${RHEL_ANCHORS}
  install -m 0644 "$ca_file" "${RHEL_ANCHORS}/$anchor_name"
  quietly update-ca-trust extract
else
  echo "private-registry: no supported OS trust store (need update-ca-certificates or update-ca-trust)" >&2
  exit 1
fi
echo "private-registry: CA added to the OS trust store as $anchor_name"
`
    : "";
  return `${header(input)}ca_file=$(mktemp)
trap 'rm -f "$ca_file"' EXIT
cat >"$ca_file"
if ! grep -q -- '-----BEGIN CERTIFICATE-----' "$ca_file"; then
  echo "private-registry: expected the CA certificate (PEM) on stdin" >&2
  exit 1
fi
if [ ! -d "$certs_dir" ]; then
  # Count the folder levels created here, so that remove can take them away again.
  levels=0
  dir=$certs_dir
  while [ ! -d "$dir" ]; do
    levels=$((levels + 1))
    dir=$(dirname "$dir")
  done
  mkdir -p "$certs_dir"
  printf '%s\\n' "$levels" >"$marker"
  echo "private-registry: created $certs_dir"
fi
for endpoint in ${endpointWords(input)}; do
  mkdir -p "$certs_dir/$endpoint"
  # Write beside, then rename: a client never reads a half-written file.
  install -m 0644 "$ca_file" "$certs_dir/$endpoint/ca.crt.new"
  mv -f "$certs_dir/$endpoint/ca.crt.new" "$certs_dir/$endpoint/ca.crt"
  echo "private-registry: CA installed at $certs_dir/$endpoint/ca.crt"
done
${osTrust}`;
}

/** Removes exactly what the install script put there; safe when already gone. */
export function renderRemoveScript(input: ClientTrustScriptInput): string {
  const osTrust = input.trustOs
    ? `
if [ -f "${DEBIAN_ANCHORS}/$anchor_name" ]; then
  rm -f "${DEBIAN_ANCHORS}/$anchor_name"
  quietly update-ca-certificates --fresh
fi
if [ -f "${RHEL_ANCHORS}/$anchor_name" ]; then
  rm -f "${RHEL_ANCHORS}/$anchor_name"
  quietly update-ca-trust extract
fi
`
    : "";
  return `${header(input)}for endpoint in ${endpointWords(input)}; do
  # Only our files: anything else in the folder (a client certificate) stays, and so does the folder.
  rm -f "$certs_dir/$endpoint/ca.crt" "$certs_dir/$endpoint/ca.crt.new"
  rmdir "$certs_dir/$endpoint" 2>/dev/null || true
  echo "private-registry: CA removed from $certs_dir/$endpoint"
done
# Folders an install created go once nothing else lives in them; while another
# stack's (or anyone's) files remain, the marker stays for whoever removes last.
if [ -f "$marker" ]; then
  levels=$(cat "$marker")
  case "$levels" in '' | *[!0-9]*) levels=1 ;; esac
  rm -f "$marker"
  if rmdir "$certs_dir" 2>/dev/null; then
    echo "private-registry: removed $certs_dir"
    dir=$(dirname "$certs_dir")
    while [ "$levels" -gt 1 ] && rmdir "$dir" 2>/dev/null; do
      echo "private-registry: removed $dir"
      levels=$((levels - 1))
      dir=$(dirname "$dir")
    done
  else
    printf '%s\\n' "$levels" >"$marker"
  fi
fi
${osTrust}`;
}

/** Wraps a script as one command line for a remote or local shell, optionally under sudo. */
export function asCommand(script: string, sudo: boolean): string {
  return `${sudo ? "sudo -n " : ""}sh -c ${shellQuote(script)}`;
}
