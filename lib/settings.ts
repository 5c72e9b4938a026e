// The only module that reads stack configuration. Everything else receives the
// typed, validated Settings object built here.
import { isIP } from "net";
import * as pulumi from "@pulumi/pulumi";

export type KeyAlgorithm = "RSA" | "ECDSA";

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

export interface Settings {
  ipAddresses: string[];
  dnsNames: string[];
  port: number;
  listenAddress: string;
  users: string[];
  passwordLength: number;
  keyAlgorithm: KeyAlgorithm;
  rsaBits: number;
  caCommonName: string;
  organization: string;
  caValidityDays: number;
  serverCertValidityDays: number;
  serverCertEarlyRenewalDays: number;
  registryImage: string;
  nginxImage: string;
  pullImages: boolean;
  namePrefix: string;
  keepDataOnDestroy: boolean;
  clients: ClientHostSettings[];
  localClient: boolean;
  localClientSudo: boolean;
  localClientTrustOs: boolean;
}

/**
 * Raised for bad stack configuration; the message names every bad key and value.
 * A RunError, so that Pulumi prints the message alone, without a stack trace.
 */
export class ConfigError extends pulumi.RunError {
  constructor(readonly problems: string[]) {
    super(problems.length === 1 ? problems[0] : `Invalid stack configuration:\n  ${problems.join("\n  ")}`);
    this.name = "ConfigError";
  }
}

const KNOWN_KEYS = [
  "ipAddresses", "dnsNames", "port", "listenAddress", "users", "passwordLength", "keyAlgorithm", "rsaBits",
  "caCommonName", "organization", "caValidityDays", "serverCertValidityDays", "serverCertEarlyRenewalDays",
  "registryImage", "nginxImage", "pullImages", "namePrefix", "keepDataOnDestroy", "clients", "localClient",
  "localClientSudo", "localClientTrustOs",
] as const;
const CLIENT_KEYS = ["host", "port", "user", "privateKey", "sudo", "trustOs"];

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
 * Validates raw stack configuration (project namespace stripped, values as the
 * engine passes them: JSON text for arrays and objects) into Settings.
 * Throws one ConfigError listing every problem, before any resource exists.
 */
export function parseSettings(raw: Record<string, string>, project: string, stack: string): Settings {
  const problems: string[] = [];
  const label = (key: string) => `${project}:${key}`;
  const bad = (key: string, value: unknown, why: string) =>
    problems.push(`Invalid config "${label(key)}" = ${JSON.stringify(value)}: ${why}.`);

  for (const key of Object.keys(raw)) {
    if (!(KNOWN_KEYS as readonly string[]).includes(key)) {
      bad(key, raw[key], `unknown setting; known settings are ${KNOWN_KEYS.join(", ")}`);
    }
  }

  const json = (key: string): unknown => {
    const text = raw[key];
    if (text === undefined) return undefined;
    try {
      return JSON.parse(text);
    } catch {
      return text; // a plain string where JSON was expected; the type checks below report it
    }
  };
  const str = (key: string, fallback: string): string => raw[key] ?? fallback;
  const int = (key: string, fallback: number, min: number, max: number): number => {
    const text = raw[key];
    if (text === undefined) return fallback;
    const value = Number(text.trim());
    if (text.trim() === "" || !Number.isInteger(value) || value < min || value > max) {
      bad(key, text, `must be a whole number from ${min} to ${max}`);
      return fallback;
    }
    return value;
  };
  const bool = (key: string, fallback: boolean): boolean => {
    const text = raw[key];
    if (text === undefined) return fallback;
    if (text !== "true" && text !== "false") {
      bad(key, text, "must be true or false");
      return fallback;
    }
    return text === "true";
  };
  const stringList = (key: string, fallback: string[]): string[] => {
    const value = json(key);
    if (value === undefined) return fallback;
    if (!Array.isArray(value) || !value.every((v) => typeof v === "string")) {
      bad(key, value, "must be a list of strings");
      return fallback;
    }
    const seen = new Set<string>();
    for (const item of value) {
      if (seen.has(item.toLowerCase())) bad(key, item, "is listed twice");
      seen.add(item.toLowerCase());
    }
    return value;
  };

  const ipAddresses = stringList("ipAddresses", ["127.0.0.1"]);
  ipAddresses.forEach((ip) => isIP(ip) || bad("ipAddresses", ip, "is not an IPv4 or IPv6 address"));
  const dnsNames = stringList("dnsNames", ["localhost"]);
  dnsNames.forEach((name) => {
    if (isIP(name)) bad("dnsNames", name, "is an IP address; put it in ipAddresses");
    else if (!isDnsName(name)) bad("dnsNames", name, "is not a valid DNS name");
  });
  if (ipAddresses.length === 0 && dnsNames.length === 0) {
    bad("ipAddresses", ipAddresses, "ipAddresses and dnsNames are both empty; clients need at least one address to dial");
  }

  const port = int("port", 443, 1, 65535);
  const listenAddress = str("listenAddress", "0.0.0.0");
  if (!isIP(listenAddress)) bad("listenAddress", listenAddress, "is not an IPv4 or IPv6 address");

  const users = stringList("users", ["admin"]);
  if (users.length === 0) bad("users", users, "must name at least one user");
  users.forEach((u) => USER_NAME.test(u) || bad("users", u, "is not a valid user name (letters, digits, '.', '_', '-'; no ':')"));

  const passwordLength = int("passwordLength", 32, 16, 72); // bcrypt reads at most 72 bytes
  const keyAlgorithm = str("keyAlgorithm", "RSA");
  if (keyAlgorithm !== "RSA" && keyAlgorithm !== "ECDSA") bad("keyAlgorithm", keyAlgorithm, 'must be "RSA" or "ECDSA"');
  const rsaBits = int("rsaBits", 4096, 2048, 8192);
  if (rsaBits % 1024 !== 0) bad("rsaBits", rsaBits, "must be a multiple of 1024");

  const caCommonName = str("caCommonName", "Private Registry CA");
  if (caCommonName.trim() === "") bad("caCommonName", caCommonName, "must not be empty");
  const organization = str("organization", "Private Registry");
  const caValidityDays = int("caValidityDays", 3650, 1, 36500);
  const serverCertValidityDays = int("serverCertValidityDays", 365, 1, 3650);
  const serverCertEarlyRenewalDays = int("serverCertEarlyRenewalDays", 30, 0, 3650);
  if (serverCertEarlyRenewalDays >= serverCertValidityDays) {
    bad("serverCertEarlyRenewalDays", serverCertEarlyRenewalDays, `must be less than serverCertValidityDays (${serverCertValidityDays})`);
  }
  if (serverCertValidityDays > caValidityDays) {
    bad("serverCertValidityDays", serverCertValidityDays, `must not exceed caValidityDays (${caValidityDays})`);
  }

  const registryImage = str("registryImage", "registry:2.8.3");
  if (!IMAGE_REF.test(registryImage)) bad("registryImage", registryImage, "is not a Docker image reference");
  const nginxImage = str("nginxImage", "nginx:1.27.5");
  if (!IMAGE_REF.test(nginxImage)) bad("nginxImage", nginxImage, "is not a Docker image reference");
  const pullImages = bool("pullImages", true);
  const namePrefix = str("namePrefix", "") || `registry-${stack}`;
  if (!DOCKER_NAME.test(namePrefix)) bad("namePrefix", namePrefix, "must be a Docker name (letters, digits, '_', '.', '-', at most 63)");
  const keepDataOnDestroy = bool("keepDataOnDestroy", true);

  const clients = parseClients(json("clients"), bad);
  const localClient = bool("localClient", false);
  const localClientSudo = bool("localClientSudo", false);
  const localClientTrustOs = bool("localClientTrustOs", false);

  if (problems.length > 0) throw new ConfigError(problems);
  return {
    ipAddresses, dnsNames, port, listenAddress, users, passwordLength, keyAlgorithm: keyAlgorithm as KeyAlgorithm,
    rsaBits, caCommonName, organization, caValidityDays, serverCertValidityDays, serverCertEarlyRenewalDays,
    registryImage, nginxImage, pullImages, namePrefix, keepDataOnDestroy, clients, localClient, localClientSudo,
    localClientTrustOs,
  };
}

function parseClients(value: unknown, bad: (key: string, value: unknown, why: string) => void): ClientHostSettings[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) {
    bad("clients", value, "must be a list of client hosts");
    return [];
  }
  const seen = new Set<string>();
  return value.flatMap((entry: unknown, i): ClientHostSettings[] => {
    const key = `clients[${i}]`;
    if (typeof entry !== "object" || entry === null || Array.isArray(entry)) {
      bad(key, entry, "must be an object with host, port, user, privateKey, sudo, trustOs");
      return [];
    }
    const e = entry as Record<string, unknown>;
    for (const k of Object.keys(e)) {
      if (!CLIENT_KEYS.includes(k)) bad(`${key}.${k}`, k === "privateKey" ? "[secret]" : e[k], `unknown setting; known are ${CLIENT_KEYS.join(", ")}`);
    }
    const host = e.host;
    if (typeof host !== "string" || !(isIP(host) || isDnsName(host))) {
      bad(`${key}.host`, host, "must be an IP address or DNS name");
    }
    const port = e.port ?? 22;
    if (typeof port !== "number" || !Number.isInteger(port) || port < 1 || port > 65535) {
      bad(`${key}.port`, port, "must be a whole number from 1 to 65535");
    }
    const user = e.user ?? "root";
    if (typeof user !== "string" || !/^[a-z_][a-z0-9_.-]*\$?$/i.test(user)) bad(`${key}.user`, user, "is not a valid login name");
    const privateKey = e.privateKey;
    if (typeof privateKey !== "string" || !privateKey.includes("PRIVATE KEY-----")) {
      // Never echo a key: say only whether something was there.
      bad(`${key}.privateKey`, privateKey === undefined ? "(missing)" : "[secret]",
        "must be a PEM private key (set it with `pulumi config set --secret --path 'clients[N].privateKey' < key`)");
    }
    const flags = ["sudo", "trustOs"].map((flag) => {
      const v = e[flag] ?? false;
      if (typeof v !== "boolean") bad(`${key}.${flag}`, v, "must be true or false");
      return v === true;
    });
    const id = `${String(host)}:${String(port)}`;
    if (seen.has(id)) bad(`${key}.host`, host, "the same host and port is listed twice");
    seen.add(id);
    return [{
      host: String(host), port: Number(port), user: String(user),
      privateKey: pulumi.secret(String(privateKey)), sudo: flags[0], trustOs: flags[1],
    }];
  });
}

/** Reads this stack's configuration from the engine and validates it. */
export function loadSettings(): Settings {
  const project = pulumi.getProject();
  const prefix = `${project}:`;
  const raw: Record<string, string> = {};
  for (const [key, value] of Object.entries(pulumi.runtime.allConfig())) {
    if (key.startsWith(prefix)) raw[key.slice(prefix.length)] = value;
  }
  return parseSettings(raw, project, pulumi.getStack());
}
