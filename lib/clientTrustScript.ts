// Renders the POSIX sh scripts that install and remove the registry's CA on a
// Docker client host. The CA arrives on stdin; nothing secret is in the scripts.
import * as crypto from "crypto";

export interface ClientTrustScriptInput {
  /** Registry endpoints as clients dial them (host or host:port). */
  endpoints: string[];
  /**
   * Endpoints that answer without a password (mirrors open to anyone, or whose login is
   * the client certificate): the CA is installed for them too, and the check wants 200.
   */
  openEndpoints?: string[];
  /** Also manage the CA in the OS trust store. */
  trustOs: boolean;
  /** File name (without .crt) used in the OS trust store. */
  anchorName: string;
  /** Overridable for tests; Docker reads /etc/docker/certs.d. */
  dockerCertsDir?: string;
  /**
   * Mutual TLS: stdin also carries this host's certificate and key, after the CA,
   * each behind its CLIENT_CERT_MARKER / CLIENT_KEY_MARKER line; they go beside
   * ca.crt as client.cert (0644) and client.key (0600), where Docker looks.
   */
  clientCertificate?: boolean;
}

export const CLIENT_CERT_MARKER = "# private-registry client.cert";
export const CLIENT_KEY_MARKER = "# private-registry client.key";

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
${
  input.trustOs
    ? `anchor_name=${shellQuote(`${input.anchorName}.crt`)}
# The trust-store tools chatter on stderr (c_rehash warns about the bundle itself);
# show their output only when they fail, so a deploy prints nothing to act on.
quietly() {
  if ! out=$("$@" 2>&1); then
    printf '%s\\n' "$out" >&2
    return 1
  fi
}
`
    : ""
}`;
}

function endpointWords(input: ClientTrustScriptInput): string {
  return [...input.endpoints, ...(input.openEndpoints ?? [])].map(shellQuote).join(" ");
}

/**
 * Installs the CA from stdin for every endpoint; safe to run any number of times.
 * A run that fails part way takes away again every file and folder it created (so a
 * failed first install leaves the host as it was: nothing that the state does not know of).
 */
export function renderInstallScript(input: ClientTrustScriptInput): string {
  const osTrust = input.trustOs
    ? `
# OS trust store, the way each family expects it (never appended to a bundle).
if [ -d ${DEBIAN_ANCHORS} ] && command -v update-ca-certificates >/dev/null 2>&1; then
  [ -e "${DEBIAN_ANCHORS}/$anchor_name" ] || { made "${DEBIAN_ANCHORS}/$anchor_name"; anchor_tool=update-ca-certificates; }
  install -m 0644 "$ca_file" "${DEBIAN_ANCHORS}/$anchor_name"
  quietly update-ca-certificates
elif command -v update-ca-trust >/dev/null 2>&1; then
  mkdir -p ${RHEL_ANCHORS}
  [ -e "${RHEL_ANCHORS}/$anchor_name" ] || { made "${RHEL_ANCHORS}/$anchor_name"; anchor_tool=update-ca-trust; }
  install -m 0644 "$ca_file" "${RHEL_ANCHORS}/$anchor_name"
  quietly update-ca-trust extract
else
  echo "private-registry: no supported OS trust store (need update-ca-certificates or update-ca-trust)" >&2
  exit 1
fi
echo "private-registry: CA added to the OS trust store as $anchor_name"
`
    : "";
  const undoAnchor = input.trustOs
    ? `
  case "$anchor_tool" in
    update-ca-certificates) quietly update-ca-certificates --fresh || true ;;
    update-ca-trust) quietly update-ca-trust extract || true ;;
  esac`
    : "";
  const tempFiles = input.clientCertificate ? `"$ca_file" "$cert_file" "$key_file"` : `"$ca_file"`;
  const read = input.clientCertificate
    ? `ca_file=$(mktemp)
cert_file=$(mktemp)
key_file=$(mktemp)
# The CA, then this host's certificate and key, each behind its marker line.
awk -v ca="$ca_file" -v cert="$cert_file" -v key="$key_file" '
  $0 == "${CLIENT_CERT_MARKER}" { out = cert; next }
  $0 == "${CLIENT_KEY_MARKER}" { out = key; next }
  { print > (out == "" ? ca : out) }'
if ! grep -q -- '-----BEGIN CERTIFICATE-----' "$cert_file" || ! grep -q -- 'PRIVATE KEY-----' "$key_file"; then
  echo "private-registry: expected this host's client certificate and key on stdin after the CA" >&2
  exit 1
fi
`
    : `ca_file=$(mktemp)
cat >"$ca_file"
`;
  const installClientCert = input.clientCertificate
    ? `  for file in client.cert client.key; do
    [ -e "$certs_dir/$endpoint/$file" ] || made "$certs_dir/$endpoint/$file"
    made "$certs_dir/$endpoint/$file.new"
  done
  install -m 0644 "$cert_file" "$certs_dir/$endpoint/client.cert.new"
  mv -f "$certs_dir/$endpoint/client.cert.new" "$certs_dir/$endpoint/client.cert"
  install -m 0600 "$key_file" "$certs_dir/$endpoint/client.key.new"
  mv -f "$certs_dir/$endpoint/client.key.new" "$certs_dir/$endpoint/client.key"
  echo "private-registry: client certificate installed at $certs_dir/$endpoint/client.cert"
`
    : "";
  return `${header(input)}# What this run creates, newest first: taken away again should it fail.
created=""
made() {
  created="$1
$created"
}
${input.trustOs ? 'anchor_tool=""\n' : ""}ca_file=""${
    input.clientCertificate
      ? `
cert_file=""
key_file=""`
      : ""
  }
finish() {
  status=$?
  rm -f ${tempFiles}
  if [ "$status" -ne 0 ] && [ -n "$created" ]; then
    while IFS= read -r path; do
      if [ -d "$path" ]; then rmdir "$path" 2>/dev/null || true; elif [ -n "$path" ]; then rm -f "$path" || true; fi
    done <<CREATED
$created
CREATED${undoAnchor}
    echo "private-registry: the install failed; what it had created on this host is removed again" >&2
  fi
  exit "$status"
}
trap finish EXIT
${read}if ! grep -q -- '-----BEGIN CERTIFICATE-----' "$ca_file"; then
  echo "private-registry: expected the CA certificate (PEM) on stdin" >&2
  exit 1
fi
if [ ! -d "$certs_dir" ]; then
  # Count the folder levels created here, so that remove can take them away again.
  levels=0
  dir=$certs_dir
  new_dirs=""
  while [ ! -d "$dir" ]; do
    levels=$((levels + 1))
    new_dirs="$dir
$new_dirs"
    dir=$(dirname "$dir")
  done
  # Outermost first, so that the innermost is undone first.
  while IFS= read -r dir; do
    [ -z "$dir" ] || made "$dir"
  done <<NEW_DIRS
$new_dirs
NEW_DIRS
  made "$marker"
  mkdir -p "$certs_dir"
  printf '%s\\n' "$levels" >"$marker"
  echo "private-registry: created $certs_dir"
fi
for endpoint in ${endpointWords(input)}; do
  [ -e "$certs_dir/$endpoint" ] || made "$certs_dir/$endpoint"
  [ -e "$certs_dir/$endpoint/ca.crt" ] || made "$certs_dir/$endpoint/ca.crt"
  made "$certs_dir/$endpoint/ca.crt.new"
  mkdir -p "$certs_dir/$endpoint"
  # Write beside, then rename: a client never reads a half-written file.
  install -m 0644 "$ca_file" "$certs_dir/$endpoint/ca.crt.new"
  mv -f "$certs_dir/$endpoint/ca.crt.new" "$certs_dir/$endpoint/ca.crt"
  echo "private-registry: CA installed at $certs_dir/$endpoint/ca.crt"
${installClientCert}done
${osTrust}`;
}

/**
 * The check from the host, a step of its own after the install: every endpoint answers
 * from this host over TLS verified by the installed CA alone, as a registry (the API
 * version header, and 401 without credentials). Needs curl on the host. Changes nothing,
 * so a failed check leaves only what the install recorded in the state.
 */
export function renderCheckScript(input: ClientTrustScriptInput): string {
  return `set -u
certs_dir=${shellQuote(input.dockerCertsDir ?? DOCKER_CERTS_DIR)}
# The deployment proves itself: every endpoint answers from this host, over TLS
# verified by the CA just installed and nothing else, as a registry that wants a login.
if ! command -v curl >/dev/null 2>&1; then
  echo "private-registry: no curl on this host to check the registry from here; install curl, or set verifyFromClients to false" >&2
  exit 1
fi
failed=0
# 401 without a password; 200 where none is asked (open mirrors).
${
  input.openEndpoints?.length
    ? `expected() {
  case " ${input.openEndpoints.join(" ")} " in
    *" $1 "*) echo 200 ;;
    *) echo 401 ;;
  esac
}`
    : "expected() { echo 401; }"
}
for endpoint in ${endpointWords(input)}; do
  url="https://$endpoint/v2/"${
    input.clientCertificate
      ? `
  # curl reads "file:password" in --cert: the colon of host:port must be escaped.
  client_cert=$(printf '%s' "$certs_dir/$endpoint/client.cert" | sed 's/:/\\\\:/g')`
      : ""
  }
  if ! headers=$(curl --silent --show-error --noproxy '*' --max-time 15 --cacert "$certs_dir/$endpoint/ca.crt" --capath /nonexistent${
    input.clientCertificate ? ' --cert "$client_cert" --key "$certs_dir/$endpoint/client.key"' : ""
  } \
      --output /dev/null --dump-header - "$url" 2>&1); then
    echo "private-registry: $url does not answer from this host over TLS verified by the installed CA: $(printf '%s' "$headers" | tail -n 1)" >&2
    failed=1
  elif ! printf '%s' "$headers" | head -n 1 | grep -q " $(expected "$endpoint")"; then
    echo "private-registry: $url answers '$(printf '%s' "$headers" | head -n 1 | tr -d '\r')' without credentials from this host, not $(expected "$endpoint")" >&2
    failed=1
  elif ! printf '%s' "$headers" | grep -qi '^docker-distribution-api-version: *registry/2.0'; then
    echo "private-registry: $url answers without the Docker-Distribution-Api-Version header: not a registry" >&2
    failed=1
  else
    echo "private-registry: $url answers from this host (TLS verified by the installed CA, $(expected "$endpoint") without credentials)"
  fi
done
[ "$failed" -eq 0 ]
`;
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
  const clientFiles = input.clientCertificate
    ? `
  rm -f "$certs_dir/$endpoint/client.cert" "$certs_dir/$endpoint/client.cert.new" "$certs_dir/$endpoint/client.key" "$certs_dir/$endpoint/client.key.new"`
    : "";
  return `${header(input)}for endpoint in ${endpointWords(input)}; do
  # Only our files: anything else in the folder (a client certificate) stays, and so does the folder.
  rm -f "$certs_dir/$endpoint/ca.crt" "$certs_dir/$endpoint/ca.crt.new"${clientFiles}
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

/** A comment naming the CA a check runs with, so that a new CA changes the check's input (and it runs again). */
export function caComment(caPem: string): string {
  return `# with the CA bundle of SHA-256 ${crypto.createHash("sha256").update(caPem).digest("hex")}\n`;
}

/** The line that ends a script sent on stdin; what follows is the script's own input. */
export const STDIN_SCRIPT_END = "# private-registry: end of script";

/**
 * A short command line that reads a script from stdin, up to STDIN_SCRIPT_END, and runs
 * it with the rest of stdin as its input. The script never appears on a command line,
 * so a failure reports the few lines the script printed, not the script.
 */
export function scriptFromStdin(sudo: boolean): string {
  const boot = `s=; while IFS= read -r l && [ "$l" != ${shellQuote(STDIN_SCRIPT_END)} ]; do s="$s$l
"; done; [ -n "$s" ] || { echo "private-registry: no script on stdin" >&2; exit 1; }; eval "$s"`;
  return asCommand(boot, sudo);
}

/** The stdin for scriptFromStdin: the script, its end line, then its input. */
export function scriptThenInput(script: string, input = ""): string {
  return `${script.endsWith("\n") ? script : `${script}\n`}${STDIN_SCRIPT_END}\n${input}`;
}
