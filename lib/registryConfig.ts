// Renders the registry's config.yml: the official image's defaults, plus the HTTP
// secret, which belongs in a file (mode 0600) rather than in the container's
// environment, where `docker inspect` shows it to anyone allowed to ask.
// With tlsTermination "registry" (no proxy) the same file also carries the TLS and
// htpasswd settings, for the same reason: distribution would take them from
// REGISTRY_HTTP_TLS_* and REGISTRY_AUTH_HTPASSWD_* variables as well, but those show
// in `docker inspect` and say where the key is; one uploaded file keeps the whole
// configuration in one place that only root in the container can read.

import * as crypto from "crypto";

/** Where the registry:2 images (official and the local Debian one) read their config. */
export const REGISTRY_CONFIG_PATH = "/etc/docker/registry/config.yml";
/**
 * Where registry:3 (official and the local build) reads it: distribution v3's images moved
 * it, and a file left at the v2 path alone is silently ignored; the image then runs its
 * own default config (plain HTTP on every interface and, with upstream's example config,
 * htpasswd auth at /etc/registry with a generated user).
 */
export const REGISTRY3_CONFIG_PATH = "/etc/distribution/config.yml";
/**
 * The same rendered file goes to both paths, so the program need not know the major of
 * the image it is given (a tag says nothing reliable: `latest`, digests, mirrors). One
 * config serves both: every key it uses reads the same in 2.8 and 3.x.
 */
export const REGISTRY_CONFIG_PATHS = [REGISTRY_CONFIG_PATH, REGISTRY3_CONFIG_PATH] as const;

/** Where the files of the "registry" layout are uploaded inside the registry container. */
export const REGISTRY_TLS_PATHS = {
  certificateChain: "/etc/docker/registry/tls/chain.pem",
  privateKey: "/etc/docker/registry/tls/key.pem",
  htpasswd: "/etc/docker/registry/htpasswd",
  /** sha256sum's check line for the uploaded htpasswd: what the health check compares (see registryHealthTest). */
  htpasswdDigest: "/etc/docker/registry/htpasswd.sha256",
} as const;

/**
 * TLS 1.2 ciphers of the "registry" layout: the ECDHE AEAD suites of Mozilla's
 * intermediate list, which nginx uses in the "proxy" layout (Go has no DHE suites,
 * so those three are missing here). TLS 1.3 suites are fixed by Go, as by OpenSSL.
 * Named as distribution's http.tls.ciphersuites spells them.
 */
export const REGISTRY_TLS12_CIPHER_SUITES = [
  "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
  "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
  "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
  "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
  "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
  "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
] as const;

/** The realm of the registry's own basic auth: what nginx's auth_basic announces in the proxy layout. */
export const REGISTRY_AUTH_REALM = "Registry realm";

export interface RegistryTlsConfig {
  /** Server certificate then CA, PEM. */
  certificatePath: string;
  privateKeyPath: string;
  htpasswdPath: string;
  realm: string;
}

export interface RegistryConfigInput {
  /** Signs upload state; the same across replacements so that uploads survive them. Quoted as JSON, which YAML reads. */
  httpSecret: string;
  /**
   * host:port (TCP), or the path of a unix socket: behind the proxy the registry has no
   * network at all, and nginx reaches it through the socket in a volume the two share.
   */
  listen: { net: "tcp" | "unix"; addr: string };
  /** distribution's debug server (its /debug/health), on loopback of the registry's own namespace. */
  debugAddress?: string;
  /** With debugAddress: its Prometheus metrics at REGISTRY_METRICS_PATH (http.debug.prometheus). */
  prometheus?: boolean;
  dataDir: string;
  /** Allow deleting manifests by digest (space comes back with `npm run gc`). */
  deleteEnabled: boolean;
  /** The registry terminates TLS and checks passwords itself (no proxy); omitted, it speaks plain HTTP with no auth. */
  tls?: RegistryTlsConfig;
  /**
   * A pull-through mirror (distribution's proxy mode): what it does not hold it fetches
   * from `remoteurl`, with the upstream's credentials when given; pushes are refused.
   */
  proxy?: { remoteurl: string; username?: string; password?: string };
  /**
   * S3-compatible storage in place of the filesystem (the swarm layout: replicas share
   * the bucket). Redirects are off: clients never need to reach the object store.
   */
  s3?: RegistryS3Config;
  /** On SIGTERM, finish requests in flight for up to this long (http.draintimeout), e.g. "10s". */
  drainTimeout?: string;
}

export interface RegistryS3Config {
  /** http(s)://host[:port] */
  endpoint: string;
  region: string;
  bucket: string;
  accessKey: string;
  secretKey: string;
  forcePathStyle: boolean;
  /** "" for the bucket's root. */
  rootDirectory: string;
}

export function renderRegistryConfig(input: RegistryConfigInput): string {
  const tls = input.tls;
  // Paths and the realm are fixed by the program; JSON strings are valid YAML scalars.
  const q = JSON.stringify;
  const tlsSection =
    tls === undefined
      ? ""
      : `  # TLS 1.2 and 1.3 only, as nginx in the proxy layout (distribution 2.8 reads minimumtls).
  tls:
    certificate: ${q(tls.certificatePath)}
    key: ${q(tls.privateKeyPath)}
    minimumtls: tls1.2
    ciphersuites:
${REGISTRY_TLS12_CIPHER_SUITES.map((c) => `      - ${c}`).join("\n")}
`;
  const authSection =
    tls === undefined
      ? ""
      : `# Basic auth against bcrypt htpasswd entries. Every user it knows may push, pull and
# delete: distribution's htpasswd auth has no per-user rules (hence no pullOnlyUsers here).
auth:
  htpasswd:
    realm: ${q(tls.realm)}
    path: ${q(tls.htpasswdPath)}
`;
  const proxy = input.proxy;
  const proxySection =
    proxy === undefined
      ? ""
      : `# A pull-through mirror: what is not here yet comes from the upstream, and stays.
proxy:
  remoteurl: ${q(proxy.remoteurl)}
${proxy.username ? `  username: ${q(proxy.username)}\n  password: ${q(proxy.password ?? "")}\n` : ""}`;
  return `# Rendered by the private-registry Pulumi program; changes here are overwritten.
version: 0.1
log:
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
${storageDriver(input)}  delete:
    enabled: ${input.deleteEnabled}
http:
${input.listen.net === "unix" ? "  net: unix\n" : ""}  addr: ${input.listen.addr}
${input.drainTimeout ? `  draintimeout: ${input.drainTimeout}\n` : ""}${input.debugAddress ? `  debug:\n    addr: ${input.debugAddress}\n${input.prometheus ? `    prometheus:\n      enabled: true\n      path: ${REGISTRY_METRICS_PATH}\n` : ""}` : ""}  secret: ${JSON.stringify(input.httpSecret)}
  headers:
    X-Content-Type-Options: [nosniff]
${tlsSection}${authSection}${proxySection}health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
`;
}

/** The storage driver's section (under `storage:`): the filesystem at dataDir, or S3. */
function storageDriver(input: RegistryConfigInput): string {
  const s3 = input.s3;
  if (!s3) return `  filesystem:\n    rootdirectory: ${input.dataDir}\n`;
  const q = JSON.stringify;
  return `  s3:
    regionendpoint: ${q(s3.endpoint)}
    region: ${q(s3.region)}
    bucket: ${q(s3.bucket)}
    accesskey: ${q(s3.accessKey)}
    secretkey: ${q(s3.secretKey)}
    forcepathstyle: ${s3.forcePathStyle}
    secure: ${s3.endpoint.startsWith("https:")}
    v4auth: true
${s3.rootDirectory ? `    rootdirectory: ${q(s3.rootDirectory)}\n` : ""}  # Clients get every blob from the registry itself, never a redirect to the object store.
  redirect:
    disable: true
`;
}

/**
 * The check line `sha256sum -c` reads (GNU and busybox alike): the digest of the htpasswd
 * this program uploads, at the path the rendered config names.
 */
export function htpasswdDigestLine(htpasswd: string, htpasswdPath: string = REGISTRY_TLS_PATHS.htpasswd): string {
  return `${crypto.createHash("sha256").update(htpasswd).digest("hex")}  ${htpasswdPath}\n`;
}

/**
 * The registry container's health check when it terminates TLS itself (a CMD-SHELL line;
 * busybox wget and sha256sum in the official images, GNU ones in the local Debian images).
 *
 * The registry answers `/` with 200 and no auth, and distribution's health handler turns
 * every answer into 503 while the storage check fails: so one GET says the registry
 * serves and its storage works; over TLS without verifying (the check dials 127.0.0.1,
 * which need not be a SAN).
 *
 * With TLS the check first requires the htpasswd at the configured path to be, byte for
 * byte, the uploaded one. distribution (v3, and Debian's 2.8.2 alike) answers a missing
 * htpasswd by creating one with a random user "docker" and logging its password
 * ("htpasswd is missing, provisioning with default user"), then serves as usual. Should
 * the file ever be missing at start (a path that drifted, an upload that did not land),
 * the generated file differs from the digest: the container never turns healthy, so
 * `pulumi up` (which waits for healthy) fails instead of reporting a registry whose only
 * login is in its log.
 */
export function registryHealthTest(port: number): string {
  return `sha256sum -c ${REGISTRY_TLS_PATHS.htpasswdDigest} >/dev/null 2>&1 && wget -q --no-check-certificate -O /dev/null https://127.0.0.1:${port}/ || exit 1`;
}

/** Where the debug server serves Prometheus metrics (with `prometheus`). */
export const REGISTRY_METRICS_PATH = "/metrics";

/**
 * Behind the proxy: the socket made writable for nginx's workers (not root; distribution
 * makes it with the process umask, so 0755, and a connect needs write permission), then
 * distribution's own health on its debug server (503 while the storage check fails).
 * Every check repeats the chmod, so a socket made anew by a restarted registry is open to
 * nginx again within one interval; nothing but the two containers mounts the volume.
 */
export function registrySocketHealthTest(socketPath: string, debugAddress: string, metricsFile?: string): string {
  const health = `chmod 0666 ${socketPath} && wget -q -O /dev/null http://${debugAddress}/debug/health || exit 1`;
  if (!metricsFile) return health;
  // With metrics: then a copy of the debug server's Prometheus page, replaced by a rename
  // (a reader gets the old copy or the new one, whole), for nginx to serve from the socket's
  // volume: the debug server listens on TCP only (distribution's http.debug.addr is passed to
  // http.ListenAndServe), in a namespace with no network, which nothing outside can dial. A
  // failed copy leaves the last one and never makes the registry unhealthy.
  return (
    `${health}; wget -q -O ${metricsFile}.next http://${debugAddress}${REGISTRY_METRICS_PATH} && ` +
    `chmod 0644 ${metricsFile}.next && mv -f ${metricsFile}.next ${metricsFile}; exit 0`
  );
}

/**
 * The Docker health check of a registry container (the registry, a mirror) around `test`
 * (a CMD-SHELL line). Every 3 s: Docker runs the first check one interval after the
 * start, and `up` (wait: true), gc and a replacement wait for it; 10 s made 10 of the
 * about 25 s of an `up` from nothing (docs/benchmarks.md). A check costs about 45 ms of
 * the engine's CPU. (startInterval would do better, but needs Docker 25.)
 */
export function registryHealthcheck(test: string) {
  return { tests: ["CMD-SHELL", test], interval: "3s", timeout: "5s", startPeriod: "5s", retries: 3 };
}
