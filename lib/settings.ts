// The only module that reads stack configuration. Everything else receives the
// typed, validated Settings object built here.
import { isIP } from "net";
import * as pulumi from "@pulumi/pulumi";
import { RetentionSettings } from "./retention";
import {
  CLIENT_FIELDS,
  CLIENT_KEYS,
  MIRROR_FIELDS,
  MIRROR_KEYS,
  SWARM_FIELDS,
  SWARM_KEYS,
  RETENTION_FIELDS,
  RETENTION_KEYS,
  IntegerSetting,
  SETTING_KEYS,
  SETTINGS,
  SettingDeclaration,
  SettingKey,
} from "./settingsSchema";

export type KeyAlgorithm = (typeof SETTINGS.keyAlgorithm.values)[number];
/**
 * Who terminates TLS and checks passwords: `proxy`, nginx in front of a registry that
 * listens on a unix socket with no network (the default); `registry`, the registry itself, with no
 * proxy (distribution's own TLS and htpasswd settings).
 */
export type TlsTermination = (typeof SETTINGS.tlsTermination.values)[number];
export const TLS_TERMINATIONS: readonly TlsTermination[] = SETTINGS.tlsTermination.values;

export interface ClientHostSettings {
  /** IP address or DNS name the SSH connection dials. */
  host: string;
  port: number;
  user: string;
  /** PEM private key for SSH; always a Pulumi secret. */
  privateKey: pulumi.Input<string>;
  /** Run the install/remove script through `sudo -n`. */
  sudo: boolean;
  /** Also add the CA to the host's OS trust store. */
  trustOs: boolean;
}

/** What a user may do in a project: `pull`, or `push` (which implies pull, and lets the user delete). */
export type { ProjectRight } from "./usersDirectory";
import type { ProjectRight } from "./usersDirectory";
/** The project name that stands for every project in `rights`. */
export const ALL_PROJECTS = "*";
/**
 * A project name as distribution allows a repository name's first component: lower-case
 * letters and digits, separated by one `.`, one or two `_`, or any number of `-`.
 */
export const PROJECT_NAME = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;

/** A pull-through mirror of one upstream registry (`mirrors[N]`). */
export interface MirrorSettings {
  /** What clients call the upstream in image names: `docker.io`, or the upstream's host[:port]. */
  name: string;
  /** `https://host[:port]`: where the mirror fetches what it does not hold yet. */
  upstream: string;
  /** The host port nginx publishes for this mirror. */
  port: number;
  /** Credentials for the upstream ("" and undefined: none); the password is always a Pulumi secret. */
  username: string;
  password?: pulumi.Input<string>;
  /** PEM CA(s) the mirror trusts for the upstream, besides the public ones; "" for none. */
  ca: string;
  /** Pulls need no password (Docker daemons never send one to a mirror). */
  anonymousPull: boolean;
}

// The SSH key as text, for the pre-flight login check only; Settings carries it as a secret.
const plainKeys = new WeakMap<ClientHostSettings, string>();
/** The client's private key as text (for a check that must log in); undefined for settings made elsewhere. */
export function plainPrivateKey(client: ClientHostSettings): string | undefined {
  return plainKeys.get(client);
}

export interface Settings {
  ipAddresses: string[];
  dnsNames: string[];
  port: number;
  listenAddress: string;
  /** The layout: nginx terminates TLS (`proxy`) or the registry does (`registry`). */
  tlsTermination: TlsTermination;
  users: string[];
  /** Users who may pull but not push or delete (enforced by nginx). */
  pullOnlyUsers: string[];
  /**
   * Rights per project of the users listed (spelled as in `users`): project (or `*`) to
   * right. Users not listed keep `pullOnlyUsers`' meaning on every project. Enforced by nginx.
   */
  rights: Record<string, Record<string, ProjectRight>>;
  passwordLength: number;
  /** bcrypt cost of the htpasswd entries. */
  bcryptCost: number;
  /** The CA's key. */
  keyAlgorithm: KeyAlgorithm;
  /**
   * The server certificate's key: signed with at every TLS handshake, and Docker opens
   * a new connection for every request (docs/benchmarks.md), so ECDSA by default.
   */
  serverKeyAlgorithm: KeyAlgorithm;
  rsaBits: number;
  caCommonName: string;
  organization: string;
  caValidityDays: number;
  serverCertValidityDays: number;
  serverCertEarlyRenewalDays: number;
  /** What the certificate gets: serverCertValidityHours if given, else the days in hours. */
  serverCertValidityHours: number;
  serverCertEarlyRenewalHours: number;
  /** The CA generation that signs the server certificate (1: the stack's first CA). */
  caGeneration: number;
  /** Further CA generations that clients trust too: the first and last steps of a rotation. */
  caAlsoTrust: number[];
  /** Each client host checks, in the same `up`, that the registry answers it over TLS verified by the installed CA. */
  verifyFromClients: boolean;
  /** Mutual TLS: each client host gets its own certificate, and nginx lets in only those. */
  clientCertificates: boolean;
  registryImage: string;
  nginxImage: string;
  pullImages: boolean;
  namePrefix: string;
  keepDataOnDestroy: boolean;
  /** Allow deleting images by digest (the registry's storage.delete.enabled). */
  deleteEnabled: boolean;
  /** Tag retention per project (`*`: every other project); applied by `npm run gc -- --retention` only. */
  retention: RetentionSettings;
  /** Use a data volume of the same name that this stack did not create (and never delete it). */
  adoptExistingVolume: boolean;
  /** The registry browser under /ui/ (proxy layout only; no effect with tlsTermination "registry"). */
  ui: boolean;
  /** Prometheus metrics under /metrics/ behind basic auth (proxy layout only). */
  metrics: boolean;
  clients: ClientHostSettings[];
  /** Pull-through mirrors, each behind nginx on a port of its own. */
  mirrors: MirrorSettings[];
  localClient: boolean;
  localClientSudo: boolean;
  localClientTrustOs: boolean;
  /** The Docker engine that runs the registry; undefined: the local engine, exactly as before (no explicit provider). */
  dockerEngine?: DockerEngineSettings;
  /** The swarm layout (docs/swarm.md); undefined: containers on one engine, as before. */
  swarm?: SwarmSettings;
}

/** The swarm layout: replicated services on a swarm, the images on S3-compatible storage. */
export interface SwarmSettings {
  replicas: number;
  proxyReplicas: number;
  s3: {
    /** `https://host[:port]` (or `http://`, which `up` warns about). */
    endpoint: string;
    bucket: string;
    region: string;
    /** Secrets (the whole `swarm` value is one). */
    accessKey: pulumi.Output<string>;
    secretKey: pulumi.Output<string>;
    forcePathStyle: boolean;
    rootDirectory: string;
  };
}

/** A Docker engine other than the default one: `unix://`, `ssh://` or `tcp://` with client TLS. */
export interface DockerEngineSettings {
  /** As configured: unix:///path, ssh://[user@]host[:port] or tcp://host:port. */
  host: string;
  /** Client TLS for tcp:// (all three, or none for the others); each a Pulumi secret. */
  tls?: { caCert: pulumi.Input<string>; cert: pulumi.Input<string>; key: pulumi.Input<string> };
}

// The engine's TLS material as text, for the pre-flight check only; Settings carries it as secrets.
const plainEngineTls = new WeakMap<DockerEngineSettings, { caCert: string; cert: string; key: string }>();
/** The engine's client TLS material as text (for the pre-flight docker CLI); undefined for settings made elsewhere. */
export function plainDockerTls(engine: DockerEngineSettings): { caCert: string; cert: string; key: string } | undefined {
  return plainEngineTls.get(engine);
}

/** Whether the engine is on this machine's default socket (so its ports can be probed here). */
export function isLocalEngine(engine: DockerEngineSettings | undefined): boolean {
  return engine === undefined || engine.host.startsWith("unix://");
}

/**
 * Raised for bad stack configuration; the message names every bad key, and its
 * value unless that is or may be secret (see parseSettings).
 * A RunError, so that Pulumi prints the message alone, without a stack trace.
 */
export class ConfigError extends pulumi.RunError {
  constructor(readonly problems: string[]) {
    super(problems.length === 1 ? problems[0] : `Invalid stack configuration:\n  ${problems.join("\n  ")}`);
    this.name = "ConfigError";
  }
}

const KNOWN_KEYS: readonly string[] = SETTING_KEYS;
/** The settings of one declared type. */
type KeyOfType<T extends SettingDeclaration["type"]> = {
  [K in SettingKey]: (typeof SETTINGS)[K]["type"] extends T ? K : never;
}[SettingKey];
/** The settings with a list of allowed values. */
type KeyWithValues = { [K in SettingKey]: (typeof SETTINGS)[K] extends { values: readonly string[] } ? K : never }[SettingKey];

// RFC 1123 host names: labels of letters, digits and inner hyphens, at most 253 characters.
const DNS_NAME = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;
/** A host name per RFC 1123 whose last label is not all digits (that would be a mistyped IP). */
function isDnsName(name: string): boolean {
  return DNS_NAME.test(name) && !/(^|\.)\d+$/.test(name);
}
// htpasswd user names: no colon, no white space; kept to a portable set.
const USER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
// Docker object names.
const DOCKER_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/;
// A Docker image reference: [registry[:port]/]path[:tag][@digest], loosely.
const IMAGE_REF = /^[a-z0-9]+([._:/-][a-zA-Z0-9]+)*(:[\w][\w.-]{0,127})?(@sha256:[a-f0-9]{64})?$/;

/**
 * The canonical spelling of an IP address, for comparing addresses: IPv4 as is;
 * IPv6 with `::` expanded, lower-case and without leading zeros in each group
 * (`0::1` and `::1` are both `0:0:0:0:0:0:0:1`), an embedded dotted quad turned
 * into two groups, and an IPv4-mapped address (`::ffff:192.0.2.1`) as its IPv4
 * address. A zone (`%eth0`) is kept as written. Undefined for anything else.
 */
export function canonicalIp(address: string): string | undefined {
  const family = isIP(address);
  if (family === 4) return address;
  if (family !== 6) return undefined;
  const zoneAt = address.indexOf("%");
  const zone = zoneAt < 0 ? "" : address.slice(zoneAt);
  let text = zoneAt < 0 ? address : address.slice(0, zoneAt);
  const quad = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (quad) {
    const [a, b, c, d] = quad.slice(1).map(Number);
    text = `${text.slice(0, quad.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.split("::");
  const groupsOf = (part: string | undefined) => (part ? part.split(":") : []);
  const known = [...groupsOf(head), ...groupsOf(tail)].length;
  const groups = tail === undefined ? groupsOf(head) : [...groupsOf(head), ...Array<string>(8 - known).fill("0"), ...groupsOf(tail)];
  const hex = groups.map((g) => parseInt(g, 16).toString(16));
  if (hex.slice(0, 5).every((g) => g === "0") && hex[5] === "ffff") {
    const [hi, lo] = [parseInt(hex[6], 16), parseInt(hex[7], 16)];
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}${zone}`;
  }
  return hex.join(":") + zone;
}

/** The form in which two DNS names that name the same host compare equal. */
function canonicalDnsName(name: string): string {
  return name.toLowerCase().replace(/\.$/, "");
}

/**
 * Whether a value looks like key material or another secret pasted into a
 * setting: a PEM or PuTTY key, anything multi-line or longer than 200
 * characters, or a long run of mixed-case letters and digits (a base64 key or
 * token). Such values are never shown in a message, whatever the setting.
 */
export function looksLikeKeyMaterial(value: unknown): boolean {
  if (typeof value === "string") {
    return (
      /PRIVATE KEY|BEGIN |PuTTY-User-Key-File/.test(value) ||
      /[\r\n]/.test(value) ||
      value.length > 200 ||
      (value.match(/[A-Za-z0-9+/_=-]{32,}/g) ?? []).some((run) => /[a-z]/.test(run) && /[A-Z]/.test(run) && /\d/.test(run))
    );
  }
  if (Array.isArray(value)) return value.some(looksLikeKeyMaterial) || JSON.stringify(value).length > 200;
  if (typeof value === "object" && value !== null) {
    return Object.entries(value).some(([k, v]) => safeName(k) !== k || looksLikeKeyMaterial(v)) || JSON.stringify(value).length > 200;
  }
  return false;
}

/** Client fields that are never secret in themselves, even inside a secret `clients` list. */
const CLIENT_PLAIN_FIELD =
  /^(clients\[\d+\]\.(host|port|user|sudo|trustOs)|mirrors\[\d+\]\.(upstream|port|name|anonymousPull)|swarm\.(replicas|proxyReplicas|s3Endpoint|s3Bucket|s3Region|s3ForcePathStyle|s3RootDirectory))$/;

// What a message shows in place of a value it must not print.
const HIDDEN_UNKNOWN = '"[value hidden]"';
const HIDDEN_SECRET = '"[secret]"';
const HIDDEN_KEY_MATERIAL = '"[hidden: looks like key material]"';
const MISSING = '"(missing)"';

/**
 * A setting's name as a message shows it: on one line, and never key material
 * (a key pasted where a name belongs); a name like "privatekey" is shown.
 */
function safeName(name: string): string {
  return /PRIVATE KEY|BEGIN |[\r\n]/.test(name) || name.length > 100 ? "[hidden name]" : JSON.stringify(name).slice(1, -1);
}

/** `path` and every setting that contains it: clients[0].host, clients[0], clients. */
function selfAndParents(path: string): string[] {
  const out = [path];
  for (let m = /^(.+?)(\.[^.[\]]*|\[\d+\])$/.exec(path); m; m = /^(.+?)(\.[^.[\]]*|\[\d+\])$/.exec(m[1])) {
    out.push(m[1]);
  }
  return out;
}

type Show = {
  /** The key is not one the program knows: anything may be in it. */
  unknown?: boolean;
  /** The value was not given; this is the program's default. */
  isDefault?: boolean;
  /** Text that already stands in for the value (e.g. "(missing)"); shown as is. */
  placeholder?: string;
};
type Bad = (key: string, value: unknown, why: string, show?: Show) => void;
/** Reports a setting the program does not know; its value is never shown. */
type UnknownKey = (key: string, value: unknown, known: readonly string[], hint?: string) => void;

/**
 * Validates raw stack configuration (project namespace stripped, values as the
 * engine passes them: JSON text for arrays and objects) into Settings.
 * Throws one ConfigError listing every problem, before any resource exists.
 *
 * `secretKeys` names the settings whose values are secrets (without the project
 * namespace: "clients", or a path such as "clients[0].host"); a message never
 * shows their values, nor those of anything inside them. Nor does it show the
 * value of an unknown setting or a value that looks like key material.
 */
export function parseSettings(raw: Record<string, string>, project: string, stack: string, secretKeys: Iterable<string> = []): Settings {
  const problems: string[] = [];
  const secret = new Set(secretKeys);
  const label = (key: string) => `${project}:${key}`;
  /** How a message shows `value` of `key`: the value where that is safe, else a placeholder. */
  const shown = (key: string, value: unknown, show: Show = {}): string => {
    if (show.placeholder !== undefined) return show.placeholder;
    if (show.unknown) return HIDDEN_UNKNOWN;
    if (show.isDefault) return `${JSON.stringify(value)} (default)`;
    // The engine marks the whole `clients` list secret as soon as one privateKey in it
    // is; a host, port, user or flag is not secret by nature, and a message needs it.
    const secretHere = CLIENT_PLAIN_FIELD.test(key) ? secret.has(key) : selfAndParents(key).some((k) => secret.has(k));
    if (secretHere) return HIDDEN_SECRET;
    if (looksLikeKeyMaterial(value)) return HIDDEN_KEY_MATERIAL;
    return value === undefined ? MISSING : JSON.stringify(value);
  };
  const bad: Bad = (key, value, why, show) => problems.push(`Invalid config "${label(key)}" = ${shown(key, value, show)}: ${why}.`);
  const unknownKey: UnknownKey = (key, value, known, hint) =>
    bad(key, value, `unknown setting${hint ? ` (did you mean ${hint}?)` : ""}; known settings are ${known.join(", ")}`, { unknown: true });
  const sameIgnoringCase = (name: string, known: readonly string[]) => known.find((k) => k.toLowerCase() === name.toLowerCase());

  for (const key of Object.keys(raw)) {
    if (!KNOWN_KEYS.includes(key)) {
      const hint =
        sameIgnoringCase(key, KNOWN_KEYS) ??
        (sameIgnoringCase(key, CLIENT_KEYS) ? `clients[N].${sameIgnoringCase(key, CLIENT_KEYS)}` : undefined);
      unknownKey(safeName(key), raw[key], KNOWN_KEYS, hint);
    }
  }

  const json = (key: SettingKey): unknown => {
    const text = raw[key];
    if (text === undefined) return undefined;
    try {
      return JSON.parse(text);
    } catch {
      return text; // a plain string where JSON was expected; the type checks below report it
    }
  };
  // Readers of one declared setting each: its default, range and allowed values come from
  // SETTINGS. A bad value is reported, and the reader returns undefined (or the default).
  const str = (key: KeyOfType<"string">): string => raw[key] ?? SETTINGS[key].default;
  /** A whole number in the declared range (and step); undefined (after reporting it) if the given text is not one. */
  const int = (key: KeyOfType<"integer">): number | undefined => {
    const decl: IntegerSetting = SETTINGS[key];
    const text = raw[key];
    if (text === undefined) return decl.default;
    const value = Number(text.trim());
    if (text.trim() === "" || !Number.isInteger(value) || value < decl.min || value > decl.max) {
      bad(key, text, `must be a whole number from ${decl.min} to ${decl.max}`);
      return undefined;
    }
    if (decl.multipleOf !== undefined && value % decl.multipleOf !== 0) {
      bad(key, value, `must be a multiple of ${decl.multipleOf}`);
      return undefined;
    }
    return value;
  };
  const bool = (key: KeyOfType<"boolean">): boolean => {
    const text = raw[key];
    if (text === undefined) return SETTINGS[key].default;
    if (text !== "true" && text !== "false") {
      bad(key, text, "must be true or false");
      return SETTINGS[key].default;
    }
    return text === "true";
  };
  /** One of the declared values (reported, and returned as given, if it is not). */
  const choice = <K extends KeyWithValues>(key: K): (typeof SETTINGS)[K]["values"][number] => {
    const values: readonly string[] = SETTINGS[key].values;
    const value = str(key);
    if (!values.includes(value)) bad(key, value, `must be ${values.map((v) => JSON.stringify(v)).join(" or ")}`);
    return value as (typeof SETTINGS)[K]["values"][number];
  };
  /** Whether a `zeroMeansUnset` setting is set: given, and not 0. */
  const isSet = (key: KeyOfType<"integer">) => raw[key] !== undefined && raw[key] !== "0";
  /**
   * A list of strings, each checked by `invalid` (which returns why an item is
   * bad), and no item listed twice: items are the same when their `canonical`
   * forms are (the same `noun`). An item listed again is reported once, as listed twice.
   */
  const stringList = (
    key: KeyOfType<"array">,
    noun: string,
    canonical: (item: string) => string,
    invalid: (item: string) => string | undefined,
  ): string[] => {
    const value = json(key);
    const fallback = [...SETTINGS[key].default] as string[];
    if (value === undefined) return fallback;
    if (!Array.isArray(value) || !value.every((v) => typeof v === "string")) {
      bad(key, value, "must be a list of strings");
      return fallback;
    }
    const seen = new Map<string, string>();
    for (const item of value as string[]) {
      const first = seen.get(canonical(item));
      if (first === undefined) {
        seen.set(canonical(item), item);
        const why = invalid(item);
        if (why) bad(key, item, why);
      } else if (first === item) {
        bad(key, item, "is listed twice");
      } else {
        bad(key, item, `is listed twice (${shown(key, first)} is the same ${noun})`);
      }
    }
    return value;
  };

  const ipAddresses = stringList(
    "ipAddresses",
    "address",
    (ip) => canonicalIp(ip) ?? ip,
    (ip) => (isIP(ip) ? undefined : "is not an IPv4 or IPv6 address"),
  );
  const dnsNames = stringList("dnsNames", "host name", canonicalDnsName, (name) => {
    if (isIP(name)) return "is an IP address; put it in ipAddresses";
    if (name.endsWith(".") && isDnsName(name.slice(0, -1))) return "must not end with a dot";
    return isDnsName(name) ? undefined : "is not a valid DNS name";
  });
  if (ipAddresses.length === 0 && dnsNames.length === 0) {
    bad("ipAddresses", ipAddresses, "ipAddresses and dnsNames are both empty; clients need at least one address to dial");
  }

  const port = int("port") ?? SETTINGS.port.default;
  const listenAddress = str("listenAddress");
  if (!isIP(listenAddress)) bad("listenAddress", listenAddress, "is not an IPv4 or IPv6 address");
  const tlsTermination = choice("tlsTermination");

  const users = stringList(
    "users",
    "name",
    (u) => u.toLowerCase(),
    (u) => (USER_NAME.test(u) ? undefined : "is not a valid user name (letters, digits, '.', '_', '-'; no ':')"),
  );
  if (users.length === 0) bad("users", users, "must name at least one user");
  // Compared with users as users are with each other, ignoring case (users refuses two
  // spellings of one name), and then spelled as in users: that is the name in the htpasswd.
  const spelledAsInUsers = (u: string) => users.find((n) => n.toLowerCase() === u.toLowerCase());
  const pullOnlyUsers = stringList(
    "pullOnlyUsers",
    "name",
    (u) => u.toLowerCase(),
    (u) => (spelledAsInUsers(u) !== undefined ? undefined : `is not one of users (${users.map((n) => JSON.stringify(n)).join(", ")})`),
  ).map((u) => spelledAsInUsers(u) ?? u);

  // distribution's htpasswd auth lets every user it knows do everything (it has no
  // per-user or per-method rules), so without nginx nothing could stop these users
  // from pushing: refuse rather than deploy a registry that does not do what is asked.
  if (tlsTermination === "registry" && pullOnlyUsers.length > 0) {
    bad(
      "pullOnlyUsers",
      pullOnlyUsers,
      'cannot be enforced with tlsTermination "registry": the registry\'s own htpasswd auth ' +
        'lets every user push and delete; set tlsTermination to "proxy" (nginx refuses their writes) or empty pullOnlyUsers',
    );
  }

  const rights = parseRights(json("rights"), users, pullOnlyUsers, bad);
  // Like pullOnlyUsers: distribution's htpasswd auth has no rights of any kind.
  if (tlsTermination === "registry" && Object.keys(rights).length > 0) {
    bad(
      "rights",
      Object.keys(rights),
      'cannot be enforced with tlsTermination "registry": the registry\'s own htpasswd auth lets every user read and write ' +
        'every repository; set tlsTermination to "proxy" (nginx checks the rights on every request) or remove rights',
    );
  }

  const passwordLength = int("passwordLength") ?? SETTINGS.passwordLength.default;
  const bcryptCost = int("bcryptCost") ?? SETTINGS.bcryptCost.default;
  const keyAlgorithm = choice("keyAlgorithm");
  const serverKeyAlgorithm = choice("serverKeyAlgorithm");
  const rsaBits = int("rsaBits");

  const caCommonName = str("caCommonName");
  if (caCommonName.trim() === "") bad("caCommonName", caCommonName, "must not be empty");
  const organization = str("organization");
  const caValidityDays = int("caValidityDays");
  const serverCertValidityDays = int("serverCertValidityDays");
  const serverCertEarlyRenewalDays = int("serverCertEarlyRenewalDays");
  // Hours, for certificates shorter than a day (and to rehearse a renewal). 0, the declared
  // default, means "not set": then the days count. (Pulumi hands the program every declared
  // default, so a days value is always there and the hours one, when set, wins.)
  const inHours = (hoursKey: "serverCertValidityHours" | "serverCertEarlyRenewalHours", daysKey: string, days: number | undefined) => {
    if (!isSet(hoursKey)) return { key: daysKey, value: days, hours: days === undefined ? undefined : days * 24 };
    const hours = int(hoursKey);
    return { key: hoursKey, value: hours, hours };
  };
  const validity = inHours("serverCertValidityHours", "serverCertValidityDays", serverCertValidityDays);
  const earlyRenewal = inHours("serverCertEarlyRenewalHours", "serverCertEarlyRenewalDays", serverCertEarlyRenewalDays);
  // Compared only when both were valid; a default is marked as such, since the user did not write it.
  const given = (key: string): Show => ({ isDefault: raw[key] === undefined });
  // Equal is allowed: then every `up` renews (a rehearsal of the renewal path).
  if (earlyRenewal.hours !== undefined && validity.hours !== undefined && earlyRenewal.hours > validity.hours) {
    bad(
      earlyRenewal.key,
      earlyRenewal.value,
      `must not exceed ${validity.key} (${shown(validity.key, validity.value, given(validity.key))})`,
      given(earlyRenewal.key),
    );
  }
  if (validity.hours !== undefined && caValidityDays !== undefined && validity.hours > caValidityDays * 24) {
    bad(
      validity.key,
      validity.value,
      `must not exceed caValidityDays (${shown("caValidityDays", caValidityDays, given("caValidityDays"))})`,
      given(validity.key),
    );
  }

  // CA rotation: the generation that signs, and the others clients trust meanwhile.
  const caGeneration = int("caGeneration") ?? SETTINGS.caGeneration.default;
  const { min: minGeneration, max: maxGeneration } = SETTINGS.caAlsoTrust;
  const alsoTrust = json("caAlsoTrust") ?? [];
  const caAlsoTrust: number[] = [];
  if (!Array.isArray(alsoTrust)) {
    bad("caAlsoTrust", alsoTrust, `must be a list of CA generations (whole numbers from ${minGeneration} to ${maxGeneration})`);
  } else {
    for (const g of alsoTrust) {
      if (typeof g !== "number" || !Number.isInteger(g) || g < minGeneration || g > maxGeneration) {
        bad("caAlsoTrust", g, `is not a CA generation (a whole number from ${minGeneration} to ${maxGeneration})`);
      } else if (g === caGeneration) bad("caAlsoTrust", g, `is caGeneration itself (${caGeneration}), which clients always trust`);
      else if (caAlsoTrust.includes(g)) bad("caAlsoTrust", g, "is listed twice");
      else caAlsoTrust.push(g);
    }
  }

  const registryImage = str("registryImage");
  if (!IMAGE_REF.test(registryImage)) bad("registryImage", registryImage, "is not a Docker image reference");
  const nginxImage = str("nginxImage");
  if (!IMAGE_REF.test(nginxImage)) bad("nginxImage", nginxImage, "is not a Docker image reference");
  const pullImages = bool("pullImages");
  const namePrefix = str("namePrefix") || `registry-${stack}`;
  if (!DOCKER_NAME.test(namePrefix)) {
    bad("namePrefix", namePrefix, "must be a Docker name (letters, digits, '_', '.', '-', at most 63)", { isDefault: !raw.namePrefix });
  }
  const keepDataOnDestroy = bool("keepDataOnDestroy");
  const adoptExistingVolume = bool("adoptExistingVolume");
  const deleteEnabled = bool("deleteEnabled");
  const retention = parseRetention(json("retention"), bad, unknownKey);
  // The browser is on by default, and Pulumi hands the program every declared default, so
  // ui cannot tell "not set" from "true": without nginx it simply has nothing to serve it.
  const ui = bool("ui");
  const metrics = bool("metrics");
  if (metrics && tlsTermination === "registry") {
    bad(
      "metrics",
      true,
      'needs nginx, which tlsTermination "registry" does not have (the registry\'s debug server would have to be published ' +
        'without authentication); set tlsTermination to "proxy" or metrics to false',
    );
  }

  const clients = parseClients(json("clients"), bad, unknownKey);
  const localClient = bool("localClient");
  const localClientSudo = bool("localClientSudo");
  const localClientTrustOs = bool("localClientTrustOs");
  const verifyFromClients = bool("verifyFromClients");
  const clientCertificates = bool("clientCertificates");
  if (clientCertificates && tlsTermination === "registry") {
    bad(
      "clientCertificates",
      true,
      'cannot be enforced per host with tlsTermination "registry": distribution accepts any certificate ' +
        "its CA signed and cannot refuse a removed host's; set tlsTermination to \"proxy\" (nginx keeps an allow list of the hosts' certificates)",
    );
  }
  const mirrors = parseMirrors(json("mirrors"), secret.has("mirrors"), port, bad, unknownKey);
  if (mirrors.length > 0 && tlsTermination === "registry") {
    bad(
      "mirrors",
      mirrors.map((m) => m.name),
      'need tlsTermination "proxy": nginx gives each mirror its port, certificate and users, and refuses pushes to it',
    );
  }
  const swarm = parseSwarm(json("swarm"), secret.has("swarm"), bad, unknownKey);
  if (swarm) {
    const refuse = (key: string, value: unknown, why: string) =>
      bad(key, value, `${why} in the swarm layout (swarm is set); see docs/swarm.md`);
    if (tlsTermination === "registry") refuse("tlsTermination", tlsTermination, 'must be "proxy": the TLS proxy replicas terminate TLS');
    if (mirrors.length > 0)
      refuse(
        "mirrors",
        mirrors.map((m) => m.name),
        "are not available",
      );
    if (metrics) refuse("metrics", true, "is not available (each replica has its own counters); set it to false");
    if (clientCertificates) refuse("clientCertificates", true, "is not available yet; set it to false");
    if (listenAddress !== "0.0.0.0") {
      refuse("listenAddress", listenAddress, 'must be "0.0.0.0": the edge publishes port on every address of every node (host mode)');
    }
    if (adoptExistingVolume) refuse("adoptExistingVolume", true, "has no volume to adopt (the images are in the bucket)");
  }
  const dockerEngine = parseDockerEngine(raw, secret, bad);

  if (problems.length > 0) throw new ConfigError(problems);
  // Past this point every reader returned a value (a bad one would have been reported).
  const days = (key: KeyOfType<"integer">, value: number | undefined) => value ?? SETTINGS[key].default;
  return {
    ipAddresses,
    dnsNames,
    port,
    listenAddress,
    tlsTermination,
    users,
    pullOnlyUsers,
    rights,
    passwordLength,
    bcryptCost,
    keyAlgorithm,
    serverKeyAlgorithm,
    rsaBits: days("rsaBits", rsaBits),
    caCommonName,
    organization,
    caValidityDays: days("caValidityDays", caValidityDays),
    serverCertValidityDays: days("serverCertValidityDays", serverCertValidityDays),
    serverCertEarlyRenewalDays: days("serverCertEarlyRenewalDays", serverCertEarlyRenewalDays),
    serverCertValidityHours: validity.hours ?? 0,
    serverCertEarlyRenewalHours: earlyRenewal.hours ?? 0,
    caGeneration,
    caAlsoTrust,
    verifyFromClients,
    clientCertificates,
    registryImage,
    nginxImage,
    pullImages,
    namePrefix,
    keepDataOnDestroy,
    deleteEnabled,
    retention,
    adoptExistingVolume,
    ui,
    metrics,
    clients,
    mirrors,
    localClient,
    localClientSudo,
    localClientTrustOs,
    ...(dockerEngine ? { dockerEngine } : {}),
    ...(swarm ? { swarm } : {}),
  };
}

const DOCKER_TLS_KEYS = ["dockerTlsCaCert", "dockerTlsCert", "dockerTlsKey"] as const;

/**
 * dockerHost and its client TLS material. No dockerHost (or an empty one): undefined,
 * the local engine as before. tcp:// needs all three TLS values, and the key as a secret;
 * the TLS values make sense only with tcp://. The TLS values are never shown.
 */
function parseDockerEngine(raw: Record<string, string>, secret: Set<string>, bad: Bad): DockerEngineSettings | undefined {
  const host = (raw.dockerHost ?? "").trim();
  const given = DOCKER_TLS_KEYS.filter((k) => (raw[k] ?? "") !== "");
  const hidden = (k: string) => ({ placeholder: raw[k] === undefined || raw[k] === "" ? MISSING : HIDDEN_SECRET });
  const scheme = /^([a-z]+):\/\//.exec(host)?.[1];
  if (host === "") {
    for (const k of given)
      bad(k, undefined, "is used only with a tcp:// dockerHost, and dockerHost is not set (the local engine)", hidden(k));
    return undefined;
  }
  const why = dockerHostProblem(host, scheme);
  if (why) {
    bad("dockerHost", raw.dockerHost, why);
    return undefined;
  }
  if (scheme !== "tcp") {
    for (const k of given) bad(k, undefined, `is used only with a tcp:// dockerHost, not ${scheme}://`, hidden(k));
    return given.length ? undefined : { host };
  }
  const missing = DOCKER_TLS_KEYS.filter((k) => !given.includes(k));
  if (missing.length > 0) {
    bad(
      "dockerHost",
      raw.dockerHost,
      `a tcp:// Docker engine needs client TLS: set ${missing.join(", ")} (as secrets: ` +
        "`npm run pulumi -- config set --secret dockerTlsKey < key.pem`); plain tcp:// is refused because anyone who reaches that port is root on the Docker host",
    );
    return undefined;
  }
  let ok = true;
  for (const k of DOCKER_TLS_KEYS) {
    const pem = raw[k];
    const kind = k === "dockerTlsKey" ? "PRIVATE KEY-----" : "BEGIN CERTIFICATE-----";
    if (!pem.includes(kind)) {
      bad(k, undefined, `must be a PEM ${k === "dockerTlsKey" ? "private key" : "certificate"}`, hidden(k));
      ok = false;
    }
  }
  if (!secret.has("dockerTlsKey")) {
    bad(
      "dockerTlsKey",
      undefined,
      "must be a secret: set it with `npm run pulumi -- config set --secret dockerTlsKey < key.pem` " +
        "(a key in plain text in the stack file gives root on the Docker host to whoever reads it)",
      { placeholder: '"[hidden]"' },
    );
    ok = false;
  }
  if (!ok) return undefined;
  const engine: DockerEngineSettings = {
    host,
    tls: { caCert: pulumi.secret(raw.dockerTlsCaCert), cert: pulumi.secret(raw.dockerTlsCert), key: pulumi.secret(raw.dockerTlsKey) },
  };
  plainEngineTls.set(engine, { caCert: raw.dockerTlsCaCert, cert: raw.dockerTlsCert, key: raw.dockerTlsKey });
  return engine;
}

/** Why a dockerHost value is not one the program can use, or undefined. */
function dockerHostProblem(host: string, scheme: string | undefined): string | undefined {
  const forms =
    "must be unix:///path/to/docker.sock, tcp://HOST:PORT (with dockerTlsCaCert, dockerTlsCert, dockerTlsKey) or ssh://USER@HOST[:PORT]";
  if (scheme === "unix") return /^unix:\/\/\/\S+$/.test(host) ? undefined : forms;
  if (scheme !== "tcp" && scheme !== "ssh") return forms;
  let url: URL;
  try {
    url = new URL(host);
  } catch {
    return forms;
  }
  const name = url.hostname.replace(/^\[(.*)\]$/, "$1");
  if (!(isIP(name) || isDnsName(name)) || (url.pathname !== "" && url.pathname !== "/") || url.search || url.hash || url.password)
    return forms;
  if (scheme === "tcp" && (url.port === "" || url.username))
    return `${forms}; a tcp:// address needs its port (2376 is Docker's TLS port) and no user`;
  return undefined;
}

/**
 * `rights`: `{ user: { project or "*": "pull" | "push" } }`. Each user one of `users`
 * (ignoring case, as users are compared; returned spelled as in users), listed once,
 * with at least one project; each project `*` or a name distribution allows as a
 * repository name's first component; a pull-only user never given push.
 */
function parseRights(value: unknown, users: string[], pullOnlyUsers: string[], bad: Bad): Record<string, Record<string, ProjectRight>> {
  if (value === undefined || value === "") return {};
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    bad("rights", value, 'must map user names to their projects\' rights: { "ci": { "team-a": "push" } }');
    return {};
  }
  const out: Record<string, Record<string, ProjectRight>> = {};
  for (const [user, projects] of Object.entries(value as Record<string, unknown>)) {
    const key = `rights.${safeName(user)}`;
    const spelled = users.find((u) => u.toLowerCase() === user.toLowerCase());
    if (spelled === undefined) {
      bad(key, user, `is not one of users (${users.map((n) => JSON.stringify(n)).join(", ")})`);
      continue;
    }
    if (out[spelled] !== undefined) {
      bad(key, user, `is listed twice (${JSON.stringify(spelled)} is the same name)`);
      continue;
    }
    if (typeof projects !== "object" || projects === null || Array.isArray(projects) || Object.keys(projects).length === 0) {
      bad(key, projects, 'must map at least one project (or "*" for every project) to "pull" or "push"');
      continue;
    }
    const granted: Record<string, ProjectRight> = {};
    for (const [project, right] of Object.entries(projects as Record<string, unknown>)) {
      const at = `${key}.${safeName(project)}`;
      if (project !== ALL_PROJECTS && !PROJECT_NAME.test(project)) {
        bad(
          at,
          project,
          'is not a project name: "*" (every project), or the first component of a repository name as distribution ' +
            "allows it (lower-case letters and digits, separated by '.', '_', '__' or dashes)",
        );
      } else if (right !== "pull" && right !== "push") {
        bad(at, right, 'must be "pull" or "push" (push implies pull)');
      } else if (right === "push" && pullOnlyUsers.includes(spelled)) {
        bad(at, right, `${JSON.stringify(spelled)} is in pullOnlyUsers: give it "pull", or take it out of pullOnlyUsers`);
      } else {
        granted[project] = right;
      }
    }
    out[spelled] = granted;
  }
  return out;
}

/**
 * `entry` (at `key`) as an object of known fields: a non-object is reported (undefined back),
 * and so is each unknown field, with a hint when only its case is wrong.
 */
function objectFields(
  key: string,
  entry: unknown,
  known: readonly string[],
  bad: Bad,
  unknownKey: UnknownKey,
): { fields: Record<string, unknown>; unknown: boolean } | undefined {
  if (typeof entry !== "object" || entry === null || Array.isArray(entry)) {
    bad(key, entry, `must be an object with ${known.join(", ")}`);
    return undefined;
  }
  const fields = entry as Record<string, unknown>;
  let unknown = false;
  for (const k of Object.keys(fields)) {
    if (!known.includes(k)) {
      unknown = true;
      unknownKey(
        `${key}.${safeName(k)}`,
        fields[k],
        known,
        known.find((c) => c.toLowerCase() === k.toLowerCase()),
      );
    }
  }
  return { fields, unknown };
}

function parseClients(value: unknown, bad: Bad, unknownKey: UnknownKey): ClientHostSettings[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) {
    bad("clients", value, "must be a list of client hosts");
    return [];
  }
  const seen = new Set<string>();
  return value.flatMap((entry: unknown, i): ClientHostSettings[] => {
    const key = `clients[${i}]`;
    const checked = objectFields(key, entry, CLIENT_KEYS, bad, unknownKey);
    if (!checked) return [];
    const e = checked.fields;
    const host = e.host;
    if (typeof host !== "string" || !(isIP(host) || isDnsName(host))) {
      bad(`${key}.host`, host, "must be an IP address or DNS name");
    }
    const { min, max } = CLIENT_FIELDS.port;
    const port = e.port ?? CLIENT_FIELDS.port.default;
    if (typeof port !== "number" || !Number.isInteger(port) || port < min || port > max) {
      bad(`${key}.port`, port, `must be a whole number from ${min} to ${max}`);
    }
    const user = e.user ?? CLIENT_FIELDS.user.default;
    if (typeof user !== "string" || !/^[a-z_][a-z0-9_.-]*\$?$/i.test(user)) bad(`${key}.user`, user, "is not a valid login name");
    const privateKey = e.privateKey;
    if (typeof privateKey !== "string" || !privateKey.includes("PRIVATE KEY-----")) {
      // Never echo a key: say only whether something was there.
      bad(
        `${key}.privateKey`,
        undefined,
        "must be a PEM private key (set it with `npm run pulumi -- config set --secret --path 'clients[N].privateKey' < key`)",
        { placeholder: privateKey === undefined ? MISSING : HIDDEN_SECRET },
      );
    }
    const flags = (["sudo", "trustOs"] as const).map((flag) => {
      const v = e[flag] ?? CLIENT_FIELDS[flag].default;
      if (typeof v !== "boolean") bad(`${key}.${flag}`, v, "must be true or false");
      return v === true;
    });
    // The same host however it is spelled: 2001:db8::1 and 2001:DB8:0::1, Host.Example and host.example.
    const id = `${typeof host === "string" ? (canonicalIp(host) ?? canonicalDnsName(host)) : String(host)}:${String(port)}`;
    if (seen.has(id)) bad(`${key}.host`, host, "the same host and port is listed twice");
    seen.add(id);
    const client: ClientHostSettings = {
      host: String(host),
      port: Number(port),
      user: String(user),
      privateKey: pulumi.secret(String(privateKey)),
      sudo: flags[0],
      trustOs: flags[1],
    };
    plainKeys.set(client, String(privateKey));
    return [client];
  });
}

/** What clients call an upstream: its host[:port], and `docker.io` for Docker Hub's registry hosts. */
export function upstreamName(upstream: URL): string {
  const host = upstream.hostname.toLowerCase();
  if (["registry-1.docker.io", "index.docker.io", "registry.hub.docker.com", "docker.io"].includes(host) && !upstream.port)
    return "docker.io";
  return upstream.host.toLowerCase();
}

function parseMirrors(value: unknown, isSecret: boolean, registryPort: number, bad: Bad, unknownKey: UnknownKey): MirrorSettings[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) {
    bad("mirrors", value, "must be a list of mirrors");
    return [];
  }
  const names = new Map<string, number>();
  const ports = new Map<number, string>([[registryPort, "port (the registry's)"]]);
  return value.flatMap((entry: unknown, i): MirrorSettings[] => {
    const key = `mirrors[${i}]`;
    const checked = objectFields(key, entry, MIRROR_KEYS, bad, unknownKey);
    if (!checked) return [];
    const e = checked.fields;
    let ok = !checked.unknown;
    const fail: Bad = (...args) => {
      ok = false;
      bad(...args);
    };
    let url: URL | undefined;
    const upstreamForm =
      "must be the upstream registry's https://host[:port], without a path (Docker Hub: https://registry-1.docker.io); a mirror of a plain-HTTP registry is refused";
    if (typeof e.upstream !== "string") fail(`${key}.upstream`, e.upstream, upstreamForm);
    else {
      try {
        url = new URL(e.upstream);
      } catch {
        url = undefined;
      }
      const host = url?.hostname.replace(/^\[(.*)\]$/, "$1") ?? "";
      if (
        !url ||
        url.protocol !== "https:" ||
        !(isIP(host) || isDnsName(host)) ||
        (url.pathname !== "" && url.pathname !== "/") ||
        url.search ||
        url.hash ||
        url.username ||
        url.password
      ) {
        fail(
          `${key}.upstream`,
          e.upstream,
          url?.username || url?.password ? `${upstreamForm}; credentials go in username and password` : upstreamForm,
        );
        url = undefined;
      }
    }
    const { min, max } = MIRROR_FIELDS.port;
    const port = e.port;
    if (port === undefined)
      fail(`${key}.port`, port, "is required: the host port nginx publishes for this mirror (clients dial every address with it)");
    else if (typeof port !== "number" || !Number.isInteger(port) || port < min || port > max) {
      fail(`${key}.port`, port, `must be a whole number from ${min} to ${max}`);
    } else if (ports.has(port)) fail(`${key}.port`, port, `is taken by ${ports.get(port)}; each mirror needs a port of its own`);
    else ports.set(port, key);
    const name = e.name ?? (url ? upstreamName(url) : undefined);
    if (e.name !== undefined) {
      const [host, namePort] = typeof name === "string" ? splitHostPort(name) : ["", ""];
      if (typeof name !== "string" || !(isIP(host) || isDnsName(host)) || (namePort !== "" && !/^\d{1,5}$/.test(namePort))) {
        fail(`${key}.name`, name, "must be a registry name as image names start with it: host[:port], or docker.io");
      }
    }
    if (typeof name === "string") {
      const canonical = name.toLowerCase();
      if (names.has(canonical)) fail(`${key}.name`, name, `is mirrored already by mirrors[${names.get(canonical)}]`);
      names.set(canonical, i);
    }
    const text = (field: "username" | "password" | "ca"): string => {
      const v = e[field] ?? MIRROR_FIELDS[field].default;
      if (typeof v !== "string") {
        fail(
          `${key}.${field}`,
          field === "username" ? v : undefined,
          "must be a string",
          field === "username" ? undefined : { placeholder: HIDDEN_SECRET },
        );
        return "";
      }
      return v;
    };
    const username = text("username");
    const password = text("password");
    const ca = text("ca");
    if (username !== "" && !/^[^\s:]{1,128}$/.test(username))
      fail(`${key}.username`, username, "must be a user name without spaces or colons");
    if ((username === "") !== (password === "")) {
      fail(
        `${key}.${username === "" ? "username" : "password"}`,
        username === "" ? undefined : username,
        "the upstream's username and password go together: set both or neither",
        username === "" ? { placeholder: MISSING } : undefined,
      );
    }
    if (password !== "" && !isSecret) {
      fail(
        `${key}.password`,
        undefined,
        "must be a secret: set it with `npm run pulumi -- config set --secret --path 'mirrors[N].password'` (typed or piped on stdin)",
        { placeholder: '"[hidden]"' },
      );
    }
    if (ca !== "" && !ca.includes("-----BEGIN CERTIFICATE-----"))
      fail(`${key}.ca`, undefined, "must be PEM certificates (-----BEGIN CERTIFICATE-----)", { placeholder: '"[hidden]"' });
    const anonymousPull = e.anonymousPull ?? MIRROR_FIELDS.anonymousPull.default;
    if (typeof anonymousPull !== "boolean") fail(`${key}.anonymousPull`, anonymousPull, "must be true or false");
    if (!ok || !url || typeof name !== "string") return [];
    return [
      {
        name,
        upstream: `https://${url.host}`,
        port: port as number,
        username,
        ...(password !== "" ? { password: pulumi.secret(password) } : {}),
        ca,
        anonymousPull: anonymousPull === true,
      },
    ];
  });
}

/** `swarm`: undefined when not set ({}), else its fields checked, one message per bad one. */
function parseSwarm(value: unknown, isSecret: boolean, bad: Bad, unknownKey: UnknownKey): SwarmSettings | undefined {
  if (value === undefined || (typeof value === "object" && value !== null && !Array.isArray(value) && Object.keys(value).length === 0)) {
    return undefined;
  }
  const checked = objectFields("swarm", value, SWARM_KEYS, bad, unknownKey);
  if (!checked) return undefined;
  const e = checked.fields;
  let ok = !checked.unknown;
  const fail: Bad = (...args) => {
    ok = false;
    bad(...args);
  };
  const count = (field: "replicas" | "proxyReplicas"): number => {
    const { min, max } = SWARM_FIELDS[field];
    const v = e[field] ?? SWARM_FIELDS[field].default;
    if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
      fail(`swarm.${field}`, v, `must be a whole number from ${min} to ${max}`);
      return 0;
    }
    return v;
  };
  const replicas = count("replicas");
  const proxyReplicas = count("proxyReplicas");
  const text = (field: "s3Endpoint" | "s3Bucket" | "s3Region" | "s3RootDirectory", required: string): string => {
    const v = e[field] ?? (field === "s3Region" || field === "s3RootDirectory" ? SWARM_FIELDS[field].default : undefined);
    if (v === undefined || v === "") {
      if (required) fail(`swarm.${field}`, v, `is required: ${required}`, { placeholder: MISSING });
      return "";
    }
    if (typeof v !== "string") {
      fail(`swarm.${field}`, v, "must be a string");
      return "";
    }
    return v;
  };
  const endpoint = text("s3Endpoint", "the S3-compatible server's https://host[:port]");
  if (endpoint !== "") {
    let url: URL | undefined;
    try {
      url = new URL(endpoint);
    } catch {
      url = undefined;
    }
    const host = url?.hostname.replace(/^\[(.*)\]$/, "$1") ?? "";
    if (
      !url ||
      (url.protocol !== "https:" && url.protocol !== "http:") ||
      !(isIP(host) || isDnsName(host)) ||
      (url.pathname !== "" && url.pathname !== "/") ||
      url.search ||
      url.hash ||
      url.username ||
      url.password
    ) {
      fail("swarm.s3Endpoint", endpoint, "must be the S3-compatible server's https://host[:port], without a path or credentials");
    }
  }
  const bucket = text("s3Bucket", "the bucket the images go to (made beforehand)");
  if (bucket !== "" && !/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
    fail("swarm.s3Bucket", bucket, "must be an S3 bucket name: 3-63 lower-case letters, digits, '.' and '-'");
  }
  const region = text("s3Region", "");
  if (region !== "" && !/^[a-z0-9-]{1,64}$/.test(region)) fail("swarm.s3Region", region, "must be a region name such as us-east-1");
  const rootDirectory = text("s3RootDirectory", "");
  if (rootDirectory !== "" && !/^\/?[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*\/?$/.test(rootDirectory)) {
    fail("swarm.s3RootDirectory", rootDirectory, "must be a path of letters, digits, '.', '_', '-' and '/'");
  }
  const forcePathStyle = e.s3ForcePathStyle ?? SWARM_FIELDS.s3ForcePathStyle.default;
  if (typeof forcePathStyle !== "boolean") fail("swarm.s3ForcePathStyle", forcePathStyle, "must be true or false");
  const credential = (field: "s3AccessKey" | "s3SecretKey"): string => {
    const v = e[field];
    if (v === undefined || v === "") {
      fail(`swarm.${field}`, undefined, "is required", { placeholder: MISSING });
      return "";
    }
    if (typeof v !== "string") {
      fail(`swarm.${field}`, undefined, "must be a string", { placeholder: HIDDEN_SECRET });
      return "";
    }
    if (!isSecret) {
      fail(
        `swarm.${field}`,
        undefined,
        `must be a secret: set it with \`npm run pulumi -- config set --secret --path 'swarm.${field}'\` (typed or piped on stdin)`,
        { placeholder: '"[hidden]"' },
      );
    }
    return v;
  };
  const accessKey = credential("s3AccessKey");
  const secretKey = credential("s3SecretKey");
  if (!ok) return undefined;
  return {
    replicas,
    proxyReplicas,
    s3: {
      endpoint: endpoint.replace(/\/$/, ""),
      bucket,
      region,
      accessKey: pulumi.secret(accessKey),
      secretKey: pulumi.secret(secretKey),
      forcePathStyle: forcePathStyle === true,
      rootDirectory,
    },
  };
}

function parseRetention(value: unknown, bad: Bad, unknownKey: UnknownKey): RetentionSettings {
  if (value === undefined) return {};
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    bad("retention", value, 'must be an object of policies by project, e.g. {"team-a": {"keepLast": 10}}');
    return {};
  }
  const retention: RetentionSettings = {};
  for (const [project, entry] of Object.entries(value as Record<string, unknown>)) {
    const key = `retention.${safeName(project)}`;
    // A project as `rights` names one (a repository's first path component), or `*` for every project without its own policy.
    if (project !== ALL_PROJECTS && !PROJECT_NAME.test(project)) {
      bad(
        key,
        project,
        "is not a project: the first path component of a repository name (lower-case letters, digits, '.', '_', '-'), or *",
      );
      continue;
    }
    const checked = objectFields(key, entry, RETENTION_KEYS, bad, unknownKey);
    if (!checked) continue;
    const e = checked.fields;
    let ok = !checked.unknown;
    const fail: Bad = (...args) => {
      ok = false;
      bad(...args);
    };
    const count = (field: "keepLast" | "maxAgeDays"): number | undefined => {
      const v = e[field];
      if (v === undefined) return undefined;
      const { min, max } = RETENTION_FIELDS[field];
      if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
        fail(`${key}.${field}`, v, `must be a whole number from ${min} to ${max}`);
        return undefined;
      }
      return v;
    };
    const keepLast = count("keepLast");
    const maxAgeDays = count("maxAgeDays");
    let keep: string | undefined;
    if (e.keep !== undefined) {
      if (typeof e.keep !== "string" || e.keep === "") fail(`${key}.keep`, e.keep, "must be a regular expression (a non-empty string)");
      else {
        try {
          new RegExp(e.keep);
          keep = e.keep;
        } catch (err) {
          fail(`${key}.keep`, e.keep, `is not a regular expression (${(err as Error).message})`);
        }
      }
      if (keep !== undefined && e.keepLast === undefined && e.maxAgeDays === undefined) {
        fail(`${key}.keep`, keep, "protects tags from keepLast and maxAgeDays, and the policy sets neither: add one, or remove keep");
      }
    }
    const deleteUntagged = e.deleteUntagged ?? RETENTION_FIELDS.deleteUntagged.default;
    if (typeof deleteUntagged !== "boolean") fail(`${key}.deleteUntagged`, deleteUntagged, "must be true or false");
    if (e.keepLast === undefined && e.maxAgeDays === undefined && e.keep === undefined && deleteUntagged !== true && ok) {
      fail(key, entry, "deletes nothing: set keepLast, maxAgeDays or deleteUntagged: true");
    }
    if (!ok) continue;
    retention[project] = {
      ...(keepLast !== undefined ? { keepLast } : {}),
      ...(maxAgeDays !== undefined ? { maxAgeDays } : {}),
      ...(keep !== undefined ? { keep } : {}),
      deleteUntagged: deleteUntagged === true,
    };
  }
  return retention;
}

/** "host:port" -> [host, port]; "[v6]:port" and bare IPv6 too; port "" when there is none. */
function splitHostPort(name: string): [string, string] {
  const bracket = /^\[([^\]]+)\](?::(.*))?$/.exec(name);
  if (bracket) return [bracket[1], bracket[2] ?? ""];
  if (isIP(name) === 6) return [name, ""];
  const at = name.lastIndexOf(":");
  return at < 0 ? [name, ""] : [name.slice(0, at), name.slice(at + 1)];
}

/**
 * Which of `names` (settings of `project`, namespace stripped) the stack holds as
 * secrets. The engine passes the secret keys to the program (a key whose value
 * is an object or list is secret as a whole if anything in it is, e.g.
 * `clients` once one client's privateKey is set with --secret); the Pulumi SDK
 * keeps them in its state (`runtime.isConfigSecret`, internal) and the language
 * host passes them in PULUMI_CONFIG_SECRET_KEYS. Both are consulted. If that
 * list cannot be read, every setting counts as secret.
 */
export function secretConfigKeys(project: string, names: readonly string[]): Set<string> {
  const sdk = pulumi.runtime as unknown as { isConfigSecret?: (key: string) => boolean };
  let fromEnv: unknown;
  try {
    fromEnv = JSON.parse(process.env.PULUMI_CONFIG_SECRET_KEYS || "[]");
  } catch {
    fromEnv = undefined;
  }
  const secret = new Set<string>();
  for (const name of names) {
    const fullKeys = [`${project}:${name}`, `${project}:config:${name}`];
    let isSecret: boolean;
    try {
      isSecret = !Array.isArray(fromEnv) || fullKeys.some((k) => (fromEnv as unknown[]).includes(k) || sdk.isConfigSecret?.(k) === true);
    } catch {
      isSecret = true; // the SDK could not read its list: hide rather than guess
    }
    if (isSecret) secret.add(name);
  }
  return secret;
}

/** Reads this stack's configuration from the engine and validates it. */
export function loadSettings(): Settings {
  const project = pulumi.getProject();
  const prefix = `${project}:`;
  const raw: Record<string, string> = {};
  for (const [key, value] of Object.entries(pulumi.runtime.allConfig())) {
    if (key.startsWith(prefix)) raw[key.slice(prefix.length)] = value;
  }
  return parseSettings(raw, project, pulumi.getStack(), secretConfigKeys(project, Object.keys(raw)));
}
