// Every stack setting, declared once: its name, type, range or allowed values, default
// and description. lib/settings.ts parses the stack configuration from these
// declarations; `npm run docs:settings` (scripts/settings-table.ts) writes Pulumi.yaml's
// `config:` section and the table in docs/configuration.md from them, and
// tests/settingsSchema.test.ts fails when either is stale.
//
// A description is the table's text (Markdown); `{range}` in it stands for the key's
// range ("min-max") and `{multipleOf}` for its step, so the numbers are written once.

interface Common {
  /** What the setting does, as docs/configuration.md's table says it (Markdown). */
  description: string;
  /** The table's default column, when the declared default needs explaining (`""` → the local engine). */
  docDefault?: string;
}
export interface IntegerSetting extends Common {
  type: "integer";
  default: number;
  min: number;
  max: number;
  multipleOf?: number;
  /** The declared default (0) means "not set": the program then uses another key. */
  zeroMeansUnset?: true;
}
export interface StringSetting extends Common {
  type: "string";
  default: string;
  /** The only values allowed, in the order a message lists them. */
  values?: readonly string[];
}
export interface BooleanSetting extends Common {
  type: "boolean";
  default: boolean;
}
export interface ArraySetting extends Common {
  type: "array";
  items: "string" | "integer" | "object";
  default: readonly (string | number)[];
  /** For integer items. */
  min?: number;
  max?: number;
}
/** A map from names to values (Pulumi.yaml `type: object`), set with `config set --path`. */
export interface ObjectSetting extends Common {
  type: "object";
  default: Readonly<Record<string, never>>;
}
export type SettingDeclaration = IntegerSetting | StringSetting | BooleanSetting | ArraySetting | ObjectSetting;

/** The settings, in the order a message lists them ("known settings are ..."). */
export const SETTINGS = {
  ipAddresses: {
    type: "array",
    items: "string",
    default: ["127.0.0.1"],
    description: "every IP clients dial; each is an IP SAN and a client endpoint",
  },
  dnsNames: {
    type: "array",
    items: "string",
    default: ["localhost"],
    description: "every DNS name clients dial; each is a DNS SAN and a client endpoint",
  },
  port: {
    type: "integer",
    default: 443,
    min: 1,
    max: 65535,
    description: "host port nginx publishes ({range}); with 443 clients use `certs.d/<host>`, else `certs.d/<host>:<port>`",
  },
  listenAddress: {
    type: "string",
    default: "0.0.0.0",
    description: "host address the port is published on",
  },
  tlsTermination: {
    type: "string",
    default: "proxy",
    values: ["proxy", "registry"],
    description:
      "who terminates TLS and checks passwords: `proxy` (nginx in front of a registry on a unix socket) or `registry` " +
      "(the registry itself, no nginx; `pullOnlyUsers` is refused then). See [Layouts](layouts.md); switching is one `pulumi up` " +
      "and keeps the images (to `registry`, the `up` stops this stack's nginx before the registry publishes the port nginx held, and says so)",
  },
  users: {
    type: "array",
    items: "string",
    default: ["admin"],
    description: "registry users; each gets a generated password",
  },
  pullOnlyUsers: {
    type: "array",
    items: "string",
    default: [],
    description:
      "users (each also in `users`) who may pull but not push or delete: after checking the password, nginx answers " +
      "their other requests 403 with Docker's `DENIED` error. See [Day two: users](day-two.md#users)",
  },
  rights: {
    type: "object",
    default: {},
    description:
      "rights per project (the first path component of a repository name: `team-a` in `team-a/app`): " +
      '`{ "<user>": { "<project>" or "*": "pull" or "push" } }`, push implying pull. A user listed here gets exactly those ' +
      "rights; the others keep `users` and `pullOnlyUsers` (every project). nginx checks them on every request, blob mounts " +
      "included; `/v2/_catalog` only for users who may pull from `*`. A change replaces no container. Proxy layout only. " +
      'See the README\'s "Rights per project"',
  },
  passwordLength: {
    // bcrypt reads at most 72 bytes
    type: "integer",
    default: 32,
    min: 16,
    max: 72,
    description: "generated password length ({range})",
  },
  bcryptCost: {
    type: "integer",
    default: 4,
    min: 4,
    max: 14,
    description:
      "bcrypt cost of the htpasswd entries ({range}); see [Performance](performance.md) for why low is right for generated passwords",
  },
  keyAlgorithm: {
    type: "string",
    default: "RSA",
    values: ["RSA", "ECDSA"],
    description: "`RSA` or `ECDSA` (P-256), for the CA's key",
  },
  serverKeyAlgorithm: {
    type: "string",
    default: "ECDSA",
    values: ["RSA", "ECDSA"],
    description:
      "`ECDSA` (P-256) or `RSA` (`rsaBits`), for the server certificate's key. Docker and skopeo open a new TLS connection " +
      "for every registry request (measured: 207 requests, 207 connections for a 50-layer `docker push`), and the server signs every " +
      "handshake: about 0.03 ms with ECDSA P-256, 6 ms with RSA 4096, which made the 50-layer push twice as slow " +
      "([docs/benchmarks.md](benchmarks.md)). Any CA signs either kind; clients notice no difference. A stack made before this key " +
      "existed gets an ECDSA server certificate at its next `up` (like a renewal: nginx is replaced, clients keep their CA) unless it sets `RSA`",
  },
  rsaBits: {
    type: "integer",
    default: 4096,
    min: 2048,
    max: 8192,
    multipleOf: 1024,
    description: "RSA key size ({range}, multiple of {multipleOf})",
  },
  caCommonName: {
    type: "string",
    default: "Private Registry CA",
    description: "the CA's common name",
  },
  organization: {
    type: "string",
    default: "Private Registry",
    description: "organization in both subjects",
  },
  caValidityDays: {
    type: "integer",
    default: 3650,
    min: 1,
    max: 36500,
    description: "CA lifetime in days ({range})",
  },
  serverCertValidityDays: {
    type: "integer",
    default: 365,
    min: 1,
    max: 3650,
    description: "server certificate lifetime in days ({range}; not longer than the CA's)",
  },
  serverCertEarlyRenewalDays: {
    type: "integer",
    default: 30,
    min: 0,
    max: 3650,
    description:
      "a `pulumi up` this close to expiry, in days ({range}), issues a new server certificate (at most the validity; equal: every `up` renews)",
  },
  serverCertValidityHours: {
    type: "integer",
    default: 0,
    min: 1,
    max: 87600,
    zeroMeansUnset: true,
    docDefault: "`0` (unset)",
    description: "validity in hours ({range}); when set it replaces `serverCertValidityDays`: certificates shorter than a day",
  },
  serverCertEarlyRenewalHours: {
    type: "integer",
    default: 0,
    min: 1,
    max: 87600,
    zeroMeansUnset: true,
    docDefault: "`0` (unset)",
    description: "renewal window in hours ({range}); when set it replaces `serverCertEarlyRenewalDays`",
  },
  caGeneration: {
    type: "integer",
    default: 1,
    min: 1,
    max: 1000,
    description:
      'the CA generation that signs the server certificate ({range}); see ["Rotating the CA"](day-two.md#rotating-the-ca-without-a-trust-gap)',
  },
  caAlsoTrust: {
    type: "array",
    items: "integer",
    default: [],
    min: 1,
    max: 1000,
    description: "other CA generations clients trust too (steps 1 and 2 of a rotation)",
  },
  verifyFromClients: {
    type: "boolean",
    default: true,
    description:
      "after installing the CA, each client host (and this machine, with `localClient`) checks in the same `up` that every " +
      "endpoint answers it over TLS verified by that CA alone, with the registry's API header and 401 without credentials; a failure " +
      "names the host, the URL and curl's reason, and fails the `up`. Needs `curl` on the hosts; `false` for hosts that cannot reach the registry yet",
  },
  clientCertificates: {
    type: "boolean",
    default: false,
    description:
      "mutual TLS: the CA issues a key and certificate per client host (and for this machine, with `localClient`), installed " +
      "beside `ca.crt` as `client.cert` and `client.key` (0600); nginx serves nothing without a valid one and lets in only the current " +
      "hosts' certificates. Proxy layout only",
  },
  registryImage: {
    type: "string",
    default: "registry:3.1.1",
    description:
      "registry image (distribution 2.x or 3.x, see [Registry 3](layouts.md#registry-3) and [Default images](layouts.md#default-images): " +
      "the program uploads its config to both `/etc/docker/registry/config.yml` and `/etc/distribution/config.yml`; needs `sh`, `chmod` and " +
      "`wget` for its health check, as the official image has; with `tlsTermination: registry` a `wget` that speaks https: GNU wget, or " +
      "busybox wget with Alpine's `ssl_client`)",
  },
  nginxImage: {
    type: "string",
    default: "nginx:1.30.4",
    description:
      "nginx image; must verify bcrypt and have `bash` for its health check (Debian-based images do both; Alpine-based ones have no `bash`)",
  },
  pullImages: {
    type: "boolean",
    default: true,
    description: "`false`: use images already on the Docker host",
  },
  namePrefix: {
    type: "string",
    default: "",
    docDefault: "`registry-<stack>`",
    description: "prefix of container, network and volume names",
  },
  keepDataOnDestroy: {
    type: "boolean",
    default: true,
    description: "keep the data volume on `pulumi destroy`",
  },
  deleteEnabled: {
    type: "boolean",
    default: false,
    description: "allow deleting images by digest (the registry's `storage.delete.enabled`); `npm run gc` then gives the space back",
  },
  retention: {
    type: "object",
    default: {},
    description:
      "tag retention per project (the first path component of a repository; `*` for every project without its own): " +
      "`keepLast` (keep the newest N tags, by their image's `created` time, {keepLastRange}), `maxAgeDays` (keep tags created " +
      "within D days, {maxAgeDaysRange}), `keep` (a regular expression: tags matching it are kept), `deleteUntagged` (false: " +
      "delete manifests no tag refers to, stored for more than an hour). A tag stays when any rule keeps it. Applied only by " +
      "`npm run gc -- --stack NAME --retention` (needs `deleteEnabled`), never by `pulumi up`. See [Day two](day-two.md#retention)",
  },
  adoptExistingVolume: {
    type: "boolean",
    default: false,
    description:
      "use a `<namePrefix>-data` volume that this stack did not create (its images become the registry's); such a volume is " +
      "never deleted by destroy. Without it an existing volume stops the run before anything is created",
  },
  ui: {
    type: "boolean",
    default: true,
    description:
      "the registry browser at `https://<endpoint>/ui/`, served by nginx with the same users and passwords as `/v2/`: repositories, " +
      "tags, digests, platforms, sizes, `docker pull` lines, and delete for users who may push when `deleteEnabled` is on. " +
      "Proxy layout only: with `tlsTermination: registry` there is no nginx to serve it and this key has no effect. See [The registry browser](ui.md)",
  },
  metrics: {
    type: "boolean",
    default: false,
    description:
      "Prometheus metrics behind the same basic auth as `/v2/`: the registry's at `/metrics/registry`, nginx's `stub_status` at " +
      "`/metrics/nginx`. Proxy layout only (refused with `tlsTermination: registry`). See [Metrics](ui.md#metrics)",
  },
  clients: {
    type: "array",
    items: "object",
    default: [],
    description: "client hosts: `host`, `port` (22), `user` (root), `privateKey` (secret, required), `sudo` (false), `trustOs` (false)",
  },
  mirrors: {
    type: "array",
    items: "object",
    default: [],
    description:
      "pull-through mirrors of upstream registries: `upstream` (`https://host[:port]`, required), `port` (the host port nginx " +
      "publishes for it, required), `name` (what clients call the upstream; from `upstream`, `docker.io` for Docker Hub), `username` and " +
      "`password` (secret) for the upstream, `ca` (PEM, when the upstream's certificate is not publicly trusted), `anonymousPull` (false). " +
      "Each client host gets Docker's `registry-mirrors` (for `docker.io`), containerd's `hosts.toml` and a `registries.conf.d` drop-in. " +
      "Proxy layout only. See [Mirror](mirror.md)",
  },
  swarm: {
    type: "object",
    default: {},
    description:
      "the swarm layout (set: on): the registry as `replicas` (2, {replicasRange}) stateless replicas of a Docker Swarm service " +
      "on S3-compatible storage, nginx as `proxyReplicas` (2, {proxyReplicasRange}) TLS proxy replicas, and an edge on every node " +
      "publishing `port` there (host mode). Storage: `s3Endpoint` (`https://host[:port]`, required), `s3Bucket` (required, made " +
      "beforehand), `s3Region` (`us-east-1`), `s3AccessKey` and `s3SecretKey` (both required, secrets), `s3ForcePathStyle` " +
      '(true), `s3RootDirectory` (""). `dockerHost` (or the local engine) must be a swarm manager. Renewals and user changes ' +
      "roll through the replicas with no failed request. Proxy layout only; not with `mirrors`, `metrics` or " +
      "`clientCertificates`. See [More than one machine](swarm.md)",
  },
  localClient: {
    type: "boolean",
    default: false,
    description: "also install the CA on the machine running `pulumi up`",
  },
  localClientSudo: {
    type: "boolean",
    default: false,
    description: "use `sudo -n` for that",
  },
  localClientTrustOs: {
    type: "boolean",
    default: false,
    description: "also add it to this machine's OS trust store (see the note on `trustOs` below)",
  },
  dockerHost: {
    type: "string",
    default: "",
    docDefault: '`""` (the local engine)',
    description:
      "the Docker engine that runs the registry: `unix:///path`, `tcp://HOST:PORT` (with the three `dockerTls*` keys; plain tcp " +
      "is refused) or `ssh://USER@HOST[:PORT]`. See [Registry on another machine](remote-engine.md)",
  },
  dockerTlsCaCert: {
    type: "string",
    default: "",
    description: "secret: PEM CA that signed the `tcp://` engine's server certificate",
  },
  dockerTlsCert: {
    type: "string",
    default: "",
    description: "secret: PEM client certificate for the `tcp://` engine",
  },
  dockerTlsKey: {
    type: "string",
    default: "",
    description: "secret, and refused unless set with `--secret`: PEM client key for the `tcp://` engine",
  },
} as const satisfies Record<string, SettingDeclaration>;

export type SettingKey = keyof typeof SETTINGS;
export const SETTING_KEYS = Object.keys(SETTINGS) as SettingKey[];

/** The fields of a client host (`clients[N]`), with their defaults; `privateKey` has none. */
export const CLIENT_FIELDS = {
  host: { type: "string" },
  port: { type: "integer", default: 22, min: 1, max: 65535 },
  user: { type: "string", default: "root" },
  privateKey: { type: "string" },
  sudo: { type: "boolean", default: false },
  trustOs: { type: "boolean", default: false },
} as const;
export const CLIENT_KEYS = Object.keys(CLIENT_FIELDS) as (keyof typeof CLIENT_FIELDS)[];

/** The fields of a mirror (`mirrors[N]`), with their defaults; `upstream` and `port` have none. */
export const MIRROR_FIELDS = {
  upstream: { type: "string" },
  port: { type: "integer", min: 1, max: 65535 },
  name: { type: "string" },
  username: { type: "string", default: "" },
  password: { type: "string", default: "" },
  ca: { type: "string", default: "" },
  anonymousPull: { type: "boolean", default: false },
} as const;
export const MIRROR_KEYS = Object.keys(MIRROR_FIELDS) as (keyof typeof MIRROR_FIELDS)[];

/** The fields of the swarm layout (`swarm`), with their ranges and defaults; the s3 ones without a default are required. */
export const SWARM_FIELDS = {
  replicas: { type: "integer", min: 1, max: 32, default: 2 },
  proxyReplicas: { type: "integer", min: 1, max: 32, default: 2 },
  s3Endpoint: { type: "string" },
  s3Bucket: { type: "string" },
  s3Region: { type: "string", default: "us-east-1" },
  s3AccessKey: { type: "string" },
  s3SecretKey: { type: "string" },
  s3ForcePathStyle: { type: "boolean", default: true },
  s3RootDirectory: { type: "string", default: "" },
} as const;
export const SWARM_KEYS = Object.keys(SWARM_FIELDS) as (keyof typeof SWARM_FIELDS)[];

/** The fields of a project's retention policy (`retention.<project>`), with their ranges and defaults. */
export const RETENTION_FIELDS = {
  keepLast: { type: "integer", min: 1, max: 100000 },
  maxAgeDays: { type: "integer", min: 1, max: 36500 },
  keep: { type: "string" },
  deleteUntagged: { type: "boolean", default: false },
} as const;
export const RETENTION_KEYS = Object.keys(RETENTION_FIELDS) as (keyof typeof RETENTION_FIELDS)[];

/** A description with its placeholders filled in from the declaration. */
export function describeSetting(decl: SettingDeclaration): string {
  const range = "min" in decl && decl.min !== undefined ? `${decl.min}-${decl.max}` : "";
  const step = decl.type === "integer" && decl.multipleOf !== undefined ? String(decl.multipleOf) : "";
  return decl.description
    .replace(/\{range\}/g, range)
    .replace(/\{multipleOf\}/g, step)
    .replace(/\{keepLastRange\}/g, `${RETENTION_FIELDS.keepLast.min}-${RETENTION_FIELDS.keepLast.max}`)
    .replace(/\{maxAgeDaysRange\}/g, `${RETENTION_FIELDS.maxAgeDays.min}-${RETENTION_FIELDS.maxAgeDays.max}`)
    .replace(/\{replicasRange\}/g, `${SWARM_FIELDS.replicas.min}-${SWARM_FIELDS.replicas.max}`)
    .replace(/\{proxyReplicasRange\}/g, `${SWARM_FIELDS.proxyReplicas.min}-${SWARM_FIELDS.proxyReplicas.max}`);
}
