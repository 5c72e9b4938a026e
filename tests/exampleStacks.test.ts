// The stack files under examples/stacks/ (one per layout, referenced from the docs)
// checked with the program's own settings parser, so that a typo in a key or a bad
// value fails here rather than in a reader's first `pulumi up`. No deployment, no engine.
import * as fs from "fs";
import * as path from "path";
import { isIP } from "net";
import { ConfigError, parseSettings, Settings } from "../lib/settings";

// js-yaml is a dependency of @pulumi/pulumi (which parses stack files with it); it ships no types.
// eslint-disable-next-line @typescript-eslint/no-var-requires
const yaml = require("js-yaml") as { load(text: string): unknown };

const PROJECT = "private-registry";
const projectDir = path.join(__dirname, "..");
const examplesDir = path.join(projectDir, "examples", "stacks");
const exampleFiles = fs
  .readdirSync(examplesDir)
  .filter((f) => /\.ya?ml$/.test(f))
  .sort();

// Stand-ins for the secrets a stack file never holds in clear (set with --secret before deploying).
const DUMMY_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n";
const DUMMY_CERT = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
const DUMMY_TLS_KEY = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";

/** The `config:` map of a stack file, as parsed YAML. */
function configOf(text: string): Record<string, unknown> {
  const doc = yaml.load(text) as { config?: unknown } | null;
  if (!doc || typeof doc !== "object" || !doc.config || typeof doc.config !== "object" || Array.isArray(doc.config)) {
    throw new Error("the file has no `config:` map");
  }
  return doc.config as Record<string, unknown>;
}

/**
 * The raw settings as the Pulumi engine hands them to the program (the project
 * namespace stripped; scalars as text, lists and objects as JSON), with dummy
 * secrets where the file leaves them to `config set --secret`; and which are secret.
 */
function rawSettings(config: Record<string, unknown>): { raw: Record<string, string>; secretKeys: string[] } {
  const raw: Record<string, string> = {};
  const secretKeys: string[] = [];
  for (const [fullKey, value] of Object.entries(config)) {
    const m = /^([^:]+):(.+)$/.exec(fullKey);
    if (!m || m[1] !== PROJECT) throw new Error(`key "${fullKey}" is not in the ${PROJECT}: namespace`);
    if (value !== null && typeof value === "object" && !Array.isArray(value) && "secure" in value) {
      throw new Error(`key "${fullKey}" holds a secret (secure:); example files carry none`);
    }
    raw[m[2]] =
      typeof value === "string" ? value : typeof value === "number" || typeof value === "boolean" ? String(value) : JSON.stringify(value);
  }
  if (raw.clients !== undefined) {
    const clients = JSON.parse(raw.clients) as unknown;
    if (Array.isArray(clients)) {
      for (const c of clients)
        if (c && typeof c === "object" && !("privateKey" in c)) (c as Record<string, unknown>).privateKey = DUMMY_KEY;
      raw.clients = JSON.stringify(clients);
      secretKeys.push("clients");
    }
  }
  if (raw.mirrors !== undefined) {
    const mirrors = JSON.parse(raw.mirrors) as unknown;
    if (Array.isArray(mirrors)) {
      for (const m of mirrors)
        if (m && typeof m === "object" && "username" in m && !("password" in m)) (m as Record<string, unknown>).password = "dummy-password";
      raw.mirrors = JSON.stringify(mirrors);
      secretKeys.push("mirrors");
    }
  }
  if (raw.swarm !== undefined) {
    const swarm = JSON.parse(raw.swarm) as Record<string, unknown>;
    swarm.s3AccessKey ??= "dummy-access-key";
    swarm.s3SecretKey ??= "dummy-secret-key";
    raw.swarm = JSON.stringify(swarm);
    secretKeys.push("swarm");
  }
  if ((raw.dockerHost ?? "").startsWith("tcp://")) {
    raw.dockerTlsCaCert ??= DUMMY_CERT;
    raw.dockerTlsCert ??= DUMMY_CERT;
    raw.dockerTlsKey ??= DUMMY_TLS_KEY;
    secretKeys.push("dockerTlsCaCert", "dockerTlsCert", "dockerTlsKey");
  }
  return { raw, secretKeys };
}

function settingsOf(file: string): Settings {
  const { raw, secretKeys } = rawSettings(configOf(fs.readFileSync(file, "utf8")));
  return parseSettings(raw, PROJECT, path.basename(file).replace(/\.ya?ml$/, ""), secretKeys);
}

/** 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24 (RFC 5737) or 2001:db8::/32 (RFC 3849). */
function isDocumentationAddress(address: string): boolean {
  if (isIP(address) === 4) return /^(192\.0\.2|198\.51\.100|203\.0\.113)\.\d+$/.test(address);
  return /^2001:db8:/i.test(address);
}

/** Every address or name the settings make something dial or listen on. */
function addressesOf(s: Settings): string[] {
  const listen = s.listenAddress === "0.0.0.0" || s.listenAddress === "::" ? [] : [s.listenAddress];
  const engine =
    s.dockerEngine && !s.dockerEngine.host.startsWith("unix://") ? [new URL(s.dockerEngine.host).hostname.replace(/^\[(.*)\]$/, "$1")] : [];
  const s3 = s.swarm ? [new URL(s.swarm.s3.endpoint).hostname.replace(/^\[(.*)\]$/, "$1")] : [];
  return [...s.ipAddresses, ...s.dnsNames, ...listen, ...s.clients.map((c) => c.host), ...engine, ...s3];
}

describe("the example stack files under examples/stacks/", () => {
  test("there are some", () => {
    expect(exampleFiles.length).toBeGreaterThanOrEqual(5);
  });

  test.each(exampleFiles)("%s is valid for the program's settings parser", (file) => {
    expect(() => settingsOf(path.join(examplesDir, file))).not.toThrow();
  });

  test.each(exampleFiles)("%s carries no encryptionsalt and no secret", (file) => {
    const text = fs.readFileSync(path.join(examplesDir, file), "utf8");
    expect({ salt: /^encryptionsalt:/m.test(text), secure: /\bsecure:/.test(text) }).toEqual({ salt: false, secure: false });
  });

  test.each(exampleFiles)("%s uses only documentation addresses and example.com names", (file) => {
    const s = settingsOf(path.join(examplesDir, file));
    for (const address of addressesOf(s)) {
      const ok = isIP(address) ? isDocumentationAddress(address) : /(^|\.)example\.com$/i.test(address);
      expect({ address, ok }).toEqual({ address, ok: true });
    }
  });

  test.each(exampleFiles)("%s is referenced from the README or a page under docs/", (file) => {
    const docs = [
      path.join(projectDir, "README.md"),
      ...fs
        .readdirSync(path.join(projectDir, "docs"))
        .filter((f) => f.endsWith(".md"))
        .map((f) => path.join(projectDir, "docs", f)),
    ];
    expect(docs.some((d) => fs.readFileSync(d, "utf8").includes(`examples/stacks/${file}`))).toBe(true);
  });
});

describe("the check itself", () => {
  const check = (config: Record<string, unknown>) => {
    const { raw, secretKeys } = rawSettings(config);
    return parseSettings(raw, PROJECT, "example", secretKeys);
  };

  test("a misspelled key, a bad value, a secret or another namespace fails", () => {
    expect(() => check({ "private-registry:prot": 443 })).toThrow(/unknown setting/);
    expect(() => check({ "private-registry:port": 70000 })).toThrow(ConfigError);
    expect(() => check({ "private-registry:tlsTermination": "nginx" })).toThrow(/must be "proxy" or "registry"/);
    expect(() => check({ "private-registry:clients": [{ host: "198.51.100.21", sudo: "yes" }] })).toThrow(/sudo.*must be true or false/);
    expect(() => check({ "private-registry:dockerTlsKey": { secure: "v1:abc" } })).toThrow(/holds a secret/);
    expect(() => check({ port: 443 })).toThrow(/namespace/);
  });

  test("values arrive as the engine passes them: numbers, booleans, lists and client objects", () => {
    const s = check({
      "private-registry:port": 5443,
      "private-registry:localClient": true,
      "private-registry:users": ["admin", "ci"],
      "private-registry:clients": [{ host: "203.0.113.22", port: 2222 }],
    });
    expect(s).toMatchObject({ port: 5443, localClient: true, users: ["admin", "ci"] });
    expect(s.clients[0]).toMatchObject({ host: "203.0.113.22", port: 2222, user: "root" });
  });

  test("documentation addresses are told from others", () => {
    expect(["192.0.2.10", "198.51.100.21", "203.0.113.22", "2001:db8::1"].every(isDocumentationAddress)).toBe(true);
    expect(["10.0.0.1", "192.0.3.1", "127.0.0.1", "2001:db9::1"].some(isDocumentationAddress)).toBe(false);
  });
});
