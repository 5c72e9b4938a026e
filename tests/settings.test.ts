import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { canonicalIp, ConfigError, loadSettings, parseSettings } from "../lib/settings";

const KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n";
const parse = (raw: Record<string, string>, secretKeys?: string[]) => parseSettings(raw, "private-registry", "dev", secretKeys);

/** The one message that bad input produces. */
function messageFor(raw: Record<string, string>, secretKeys?: string[]): string {
  try {
    parse(raw, secretKeys);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error(`expected ${JSON.stringify(raw)} to be rejected`);
}

describe("parseSettings defaults", () => {
  test("an empty stack config is the one-machine layout on 443", () => {
    const s = parse({});
    expect(s).toMatchObject({
      ipAddresses: ["127.0.0.1"],
      dnsNames: ["localhost"],
      port: 443,
      listenAddress: "0.0.0.0",
      users: ["admin"],
      passwordLength: 32,
      keyAlgorithm: "RSA",
      serverKeyAlgorithm: "ECDSA",
      rsaBits: 4096,
      registryImage: "registry:3.1.1",
      nginxImage: "nginx:1.30.4",
      pullImages: true,
      namePrefix: "registry-dev",
      keepDataOnDestroy: true,
      clients: [],
      localClient: false,
      tlsTermination: "proxy",
    });
  });

  test("client hosts get port 22, user root, no sudo, no OS trust unless set", () => {
    const s = parse({ clients: JSON.stringify([{ host: "client.example.com", privateKey: KEY }]) });
    expect(s.clients).toEqual([
      expect.objectContaining({ host: "client.example.com", port: 22, user: "root", sudo: false, trustOs: false }),
    ]);
  });

  test("every key declared in Pulumi.yaml is one the program reads, and no other", () => {
    const yaml = fs.readFileSync(path.join(__dirname, "..", "Pulumi.yaml"), "utf8");
    const configSection = yaml.slice(yaml.indexOf("\nconfig:\n"));
    const declared = [...configSection.matchAll(/^ {2}([A-Za-z]+):$/gm)].map((m) => m[1]);
    for (const key of declared) expect(() => parse({ [key]: "" })).not.toThrow(/unknown setting/);
    expect(messageFor({ notDeclared: "x" })).toMatch(/unknown setting/);
    expect(declared).toHaveLength(44);
  });
});

describe("parseSettings rejects bad input with one message naming the key and the value", () => {
  test.each([
    [
      "an address that is not an IP",
      { ipAddresses: '["192.0.2.300"]' },
      'Invalid config "private-registry:ipAddresses" = "192.0.2.300": is not an IPv4 or IPv6 address.',
    ],
    ["a port above 65535", { port: "70000" }, 'Invalid config "private-registry:port" = "70000": must be a whole number from 1 to 65535.'],
    ["port 0", { port: "0" }, 'Invalid config "private-registry:port" = "0": must be a whole number from 1 to 65535.'],
    [
      "a port that is not a number",
      { port: "https" },
      'Invalid config "private-registry:port" = "https": must be a whole number from 1 to 65535.',
    ],
    [
      "no IP and no name",
      { ipAddresses: "[]", dnsNames: "[]" },
      'Invalid config "private-registry:ipAddresses" = []: ipAddresses and dnsNames are both empty; clients need at least one address to dial.',
    ],
    ["a duplicate user", { users: '["admin","ci","admin"]' }, 'Invalid config "private-registry:users" = "admin": is listed twice.'],
    [
      "a user name with a colon",
      { users: '["bad:user"]' },
      `Invalid config "private-registry:users" = "bad:user": is not a valid user name (letters, digits, '.', '_', '-'; no ':').`,
    ],
    ["no users", { users: "[]" }, 'Invalid config "private-registry:users" = []: must name at least one user.'],
    [
      "an invalid DNS name",
      { dnsNames: '["bad_name.example.com"]' },
      'Invalid config "private-registry:dnsNames" = "bad_name.example.com": is not a valid DNS name.',
    ],
    [
      "an IP among the DNS names",
      { dnsNames: '["192.0.2.1"]' },
      'Invalid config "private-registry:dnsNames" = "192.0.2.1": is an IP address; put it in ipAddresses.',
    ],
    [
      "a duplicate IP",
      { ipAddresses: '["192.0.2.1","192.0.2.1"]' },
      'Invalid config "private-registry:ipAddresses" = "192.0.2.1": is listed twice.',
    ],
    [
      "an unknown option (its value hidden)",
      { prot: "443" },
      'Invalid config "private-registry:prot" = "[value hidden]": unknown setting; known settings are ipAddresses, ',
    ],
    [
      "a bad listen address",
      { listenAddress: "localhost" },
      'Invalid config "private-registry:listenAddress" = "localhost": is not an IPv4 or IPv6 address.',
    ],
    [
      "an unknown key algorithm",
      { keyAlgorithm: "DSA" },
      'Invalid config "private-registry:keyAlgorithm" = "DSA": must be "RSA" or "ECDSA".',
    ],
    [
      "an unknown server key algorithm",
      { serverKeyAlgorithm: "ed25519" },
      'Invalid config "private-registry:serverKeyAlgorithm" = "ed25519": must be "RSA" or "ECDSA".',
    ],
    ["an odd RSA size", { rsaBits: "3000" }, 'Invalid config "private-registry:rsaBits" = 3000: must be a multiple of 1024.'],
    ["a boolean that is not one", { pullImages: "yes" }, 'Invalid config "private-registry:pullImages" = "yes": must be true or false.'],
    [
      "early renewal longer than validity",
      { serverCertValidityDays: "30", serverCertEarlyRenewalDays: "31" },
      'Invalid config "private-registry:serverCertEarlyRenewalDays" = 31: must not exceed serverCertValidityDays (30).',
    ],
    [
      "early renewal in hours longer than validity in hours",
      { serverCertValidityHours: "2", serverCertEarlyRenewalHours: "3" },
      'Invalid config "private-registry:serverCertEarlyRenewalHours" = 3: must not exceed serverCertValidityHours (2).',
    ],
    [
      "a server certificate in hours outliving the CA",
      { caValidityDays: "1", serverCertValidityHours: "25", serverCertEarlyRenewalHours: "1" },
      'Invalid config "private-registry:serverCertValidityHours" = 25: must not exceed caValidityDays (1).',
    ],
    [
      "caAlsoTrust naming the signing generation",
      { caGeneration: "2", caAlsoTrust: "[2]" },
      'Invalid config "private-registry:caAlsoTrust" = 2: is caGeneration itself (2), which clients always trust.',
    ],
    [
      "caAlsoTrust not a generation",
      { caAlsoTrust: "[0]" },
      'Invalid config "private-registry:caAlsoTrust" = 0: is not a CA generation (a whole number from 1 to 1000).',
    ],
    ["caAlsoTrust a generation twice", { caAlsoTrust: "[2, 2]" }, 'Invalid config "private-registry:caAlsoTrust" = 2: is listed twice.'],
    [
      "a server certificate outliving its CA",
      { caValidityDays: "100", serverCertValidityDays: "365" },
      'Invalid config "private-registry:serverCertValidityDays" = 365: must not exceed caValidityDays (100).',
    ],
    [
      "a bad image reference",
      { nginxImage: "Nginx Latest" },
      'Invalid config "private-registry:nginxImage" = "Nginx Latest": is not a Docker image reference.',
    ],
    [
      "a bad name prefix",
      { namePrefix: "-reg" },
      `Invalid config "private-registry:namePrefix" = "-reg": must be a Docker name (letters, digits, '_', '.', '-', at most 63).`,
    ],
    ["a list that is not one", { users: "admin" }, 'Invalid config "private-registry:users" = "admin": must be a list of strings.'],
    [
      "a client without a key",
      { clients: '[{"host":"198.51.100.21"}]' },
      'Invalid config "private-registry:clients[0].privateKey" = "(missing)": must be a PEM private key',
    ],
    [
      "a client with a bad host",
      { clients: JSON.stringify([{ host: "198.51.100.999", privateKey: KEY }]) },
      'Invalid config "private-registry:clients[0].host" = "198.51.100.999": must be an IP address or DNS name.',
    ],
    [
      "a client with a bad port",
      { clients: JSON.stringify([{ host: "198.51.100.21", port: 0, privateKey: KEY }]) },
      'Invalid config "private-registry:clients[0].port" = 0: must be a whole number from 1 to 65535.',
    ],
    [
      "a client with an unknown option (its value hidden)",
      { clients: JSON.stringify([{ host: "198.51.100.21", sudoo: true, privateKey: KEY }]) },
      'Invalid config "private-registry:clients[0].sudoo" = "[value hidden]": unknown setting; known settings are host, ',
    ],
    [
      "a client without a host",
      { clients: JSON.stringify([{ privateKey: KEY }]) },
      'Invalid config "private-registry:clients[0].host" = "(missing)": must be an IP address or DNS name.',
    ],
    [
      "a DNS name with a trailing dot",
      { dnsNames: '["registry.example.com."]' },
      'Invalid config "private-registry:dnsNames" = "registry.example.com.": must not end with a dot.',
    ],
    [
      "a default that conflicts with a given value",
      { serverCertValidityDays: "29" },
      'Invalid config "private-registry:serverCertEarlyRenewalDays" = 30 (default): must not exceed serverCertValidityDays (29).',
    ],
    [
      "a client listed twice",
      {
        clients: JSON.stringify([
          { host: "198.51.100.21", privateKey: KEY },
          { host: "198.51.100.21", privateKey: KEY },
        ]),
      },
      'Invalid config "private-registry:clients[1].host" = "198.51.100.21": the same host and port is listed twice.',
    ],
  ])("%s", (_label, raw, expected) => {
    const message = messageFor(raw as Record<string, string>);
    expect(message.startsWith(expected)).toBe(true);
    expect(message.split("\n")).toHaveLength(1);
  });

  test("a client's key is never echoed in a message", () => {
    const message = messageFor({ clients: JSON.stringify([{ host: "bad host", privateKey: KEY }]) });
    expect(message).not.toContain("OPENSSH");
    const wrongKey = messageFor({ clients: JSON.stringify([{ host: "198.51.100.21", privateKey: "hunter2" }]) });
    expect(wrongKey).toContain('"[secret]"');
    expect(wrongKey).not.toContain("hunter2");
  });

  test("several problems are reported together, one per line", () => {
    const message = messageFor({ port: "0", users: '["a:b"]' });
    expect(
      message
        .split("\n")
        .slice(1)
        .map((l) => l.trim().split(" = ")[0]),
    ).toEqual(['Invalid config "private-registry:port"', 'Invalid config "private-registry:users"']);
  });
});

// A private key with a body that must never appear in a message.
const PEM_BODY = "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW";
const PEM = `-----BEGIN OPENSSH PRIVATE KEY-----\n${PEM_BODY}\nQyNTUxOQAAACDx0V8yqL1kV1j1Q7+EXAMPLE\n-----END OPENSSH PRIVATE KEY-----\n`;

/** The message must not contain the value, in any spelling a message could give it. */
function expectHidden(message: string, value: string) {
  for (const spelling of [value, JSON.stringify(value), JSON.stringify(value).slice(1, -1)]) expect(message).not.toContain(spelling);
}

describe("messages never show a value that is or may be secret", () => {
  test("a PEM under a mistyped top-level key: the key is named, the key material is not shown", () => {
    const message = messageFor({ privateKey: PEM });
    expect(
      message.startsWith(
        'Invalid config "private-registry:privateKey" = "[value hidden]": unknown setting (did you mean clients[N].privateKey?)',
      ),
    ).toBe(true);
    expect(message).not.toContain(PEM_BODY);
    expect(message).not.toContain("BEGIN");
    expect(message.split("\n")).toHaveLength(1);
  });

  test("a PEM under a mistyped client key: the key is named, the key material is not shown", () => {
    const message = messageFor({ clients: JSON.stringify([{ host: "198.51.100.21", privatekey: PEM }]) });
    expect(message).toContain(
      'Invalid config "private-registry:clients[0].privatekey" = "[value hidden]": unknown setting (did you mean privateKey?)',
    );
    expect(message).not.toContain(PEM_BODY);
    expect(message).not.toContain("BEGIN");
  });

  test("an unknown key's value is hidden even when it looks harmless", () => {
    const top = messageFor({ adminPassword: "hunter2-horse" });
    expect(top).toContain('"private-registry:adminPassword" = "[value hidden]"');
    expectHidden(top, "hunter2-horse");
    const client = messageFor({ clients: JSON.stringify([{ host: "198.51.100.21", privateKey: KEY, password: "hunter2-horse" }]) });
    expect(client).toContain('"private-registry:clients[0].password" = "[value hidden]"');
    expectHidden(client, "hunter2-horse");
  });

  test("a key name with a line break stays on one line", () => {
    expect(messageFor({ "bad\nkey": "x" }).split("\n")).toHaveLength(1);
  });

  test.each([
    ["a PEM in a known top-level key", { listenAddress: PEM }, "listenAddress", PEM],
    ["a PEM in a client's host", { clients: JSON.stringify([{ host: PEM, privateKey: KEY }]) }, "clients[0].host", PEM],
    ["a PEM in a list", { ipAddresses: JSON.stringify([PEM]) }, "ipAddresses", PEM],
    ["a value with a line break", { keyAlgorithm: "RSA\nsecret-ish" }, "keyAlgorithm", "RSA\nsecret-ish"],
    ["a value longer than 200 characters", { namePrefix: "n".repeat(201) }, "namePrefix", "n".repeat(201)],
    [
      "a token-like run of mixed-case letters and digits",
      { listenAddress: "ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8" },
      "listenAddress",
      "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8",
    ],
    ["the words PRIVATE KEY", { keyAlgorithm: "my PRIVATE KEY" }, "keyAlgorithm", "my PRIVATE KEY"],
    ["the word BEGIN", { keyAlgorithm: "-----BEGIN RSA" }, "keyAlgorithm", "-----BEGIN RSA"],
  ])("key material under a known key is hidden: %s", (_label, raw, key, value) => {
    const message = messageFor(raw as Record<string, string>);
    expect(message).toContain(`"private-registry:${key}" = "[hidden: looks like key material]": `);
    expectHidden(message, value);
    expect(message).not.toContain(PEM_BODY);
  });

  test("a 200-character value that is not key material is still shown", () => {
    expect(messageFor({ namePrefix: "n".repeat(200) })).toContain(`= "${"n".repeat(200)}": must be a Docker name`);
  });

  test("a key marked secret never has its value shown; other keys still do", () => {
    const message = messageFor({ port: "70000", rsaBits: "3000" }, ["port"]);
    expect(message).toContain('Invalid config "private-registry:port" = "[secret]": must be a whole number from 1 to 65535.');
    expect(message).toContain('Invalid config "private-registry:rsaBits" = 3000: must be a multiple of 1024.');
    expectHidden(message, "70000");
  });

  test("a secret object hides every field inside it, known or not", () => {
    const raw = { users: JSON.stringify(["bad:user"]), dnsNames: JSON.stringify(["bad_name!"]) };
    const message = messageFor(raw, ["users", "dnsNames"]);
    expect(message).toContain('Invalid config "private-registry:users" = "[secret]"');
    expect(message).toContain('Invalid config "private-registry:dnsNames" = "[secret]"');
    expectHidden(message, "bad:user");
    expectHidden(message, "bad_name!");
    // Without the secret mark the same values are shown.
    expect(messageFor(raw)).toContain('"bad:user"');
  });

  test("a secret clients list (secret because of its keys) still shows host, port, user and flags, hides the rest", () => {
    const raw = { clients: JSON.stringify([{ host: "bad host", port: 0, sudo: "yes", privateKey: KEY, passwd: "hunter2" }]) };
    const message = messageFor(raw, ["clients"]);
    expect(message).toContain('Invalid config "private-registry:clients[0].host" = "bad host": must be an IP address or DNS name.');
    expect(message).toContain('Invalid config "private-registry:clients[0].port" = 0: must be a whole number from 1 to 65535.');
    expect(message).toContain('Invalid config "private-registry:clients[0].sudo" = "yes": must be true or false.');
    expectHidden(message, "hunter2");
    expectHidden(message, KEY.split("\n")[1]);
  });

  test("a secret path inside an object hides that field only", () => {
    const raw = {
      clients: JSON.stringify([
        { host: "bad host", privateKey: KEY },
        { host: "bad host2", privateKey: KEY },
      ]),
    };
    const message = messageFor(raw, ["clients[0].host"]);
    expect(message).toContain('"private-registry:clients[0].host" = "[secret]"');
    expect(message).toContain('"private-registry:clients[1].host" = "bad host2"');
    expect(message).not.toContain('"bad host"');
  });

  test("a secret value quoted in another key's message is hidden there too", () => {
    const message = messageFor({ caValidityDays: "100", serverCertValidityDays: "365" }, ["caValidityDays"]);
    expect(message).toBe('Invalid config "private-registry:serverCertValidityDays" = 365: must not exceed caValidityDays ("[secret]").');
    const dup = messageFor({ ipAddresses: '["::1","0::1"]' }, ["ipAddresses"]);
    expect(dup).toBe('Invalid config "private-registry:ipAddresses" = "[secret]": is listed twice ("[secret]" is the same address).');
  });
});

describe("loadSettings learns which keys are secret from the engine", () => {
  const env = process.env.PULUMI_CONFIG_SECRET_KEYS;
  beforeAll(() =>
    pulumi.runtime.setMocks({ newResource: (a) => ({ id: a.name, state: a.inputs }), call: (a) => a.inputs }, "private-registry", "dev"),
  );
  afterEach(() => {
    if (env === undefined) delete process.env.PULUMI_CONFIG_SECRET_KEYS;
    else process.env.PULUMI_CONFIG_SECRET_KEYS = env;
  });
  const config = {
    "private-registry:port": "70000",
    "private-registry:clients": JSON.stringify([{ host: "bad host", privateKey: KEY }]),
    "other-project:port": "1",
  };
  function loadMessage(): string {
    try {
      loadSettings();
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      return (e as Error).message;
    }
    throw new Error("expected loadSettings to fail");
  }

  test("from the SDK's state (what the language host sets)", () => {
    delete process.env.PULUMI_CONFIG_SECRET_KEYS;
    pulumi.runtime.setAllConfig(config, ["private-registry:port"]);
    const message = loadMessage();
    expect(message).toContain('Invalid config "private-registry:port" = "[secret]": must be a whole number from 1 to 65535.');
    expect(message).not.toContain("70000");
  });

  test("from PULUMI_CONFIG_SECRET_KEYS, in either key spelling", () => {
    pulumi.runtime.setAllConfig(config, []);
    expect(loadMessage()).toContain('"private-registry:port" = "70000"');
    process.env.PULUMI_CONFIG_SECRET_KEYS = '["private-registry:port"]';
    expect(loadMessage()).toContain('"private-registry:port" = "[secret]"');
    process.env.PULUMI_CONFIG_SECRET_KEYS = '["private-registry:config:port"]';
    expect(loadMessage()).toContain('"private-registry:port" = "[secret]"');
  });

  test("an unreadable list of secret keys hides every value", () => {
    pulumi.runtime.setAllConfig(config, []);
    process.env.PULUMI_CONFIG_SECRET_KEYS = "not json";
    const message = loadMessage();
    expect(message).toContain('"private-registry:port" = "[secret]"');
    expect(message).not.toContain("70000");
  });
});

describe("the same address spelled twice is listed twice", () => {
  test.each([
    ["::1", "::1", "0:0:0:0:0:0:0:1"],
    ["0::1", "::1", "0:0:0:0:0:0:0:1"],
    ["::", "::", "0:0:0:0:0:0:0:0"],
    ["1::", "1::", "1:0:0:0:0:0:0:0"],
    ["2001:DB8:0::1", "2001:db8::1", "2001:db8:0:0:0:0:0:1"],
    ["2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1", "2001:db8:0:0:0:0:0:1"],
    ["::ffff:192.0.2.1", "192.0.2.1", "192.0.2.1"],
    ["::FFFF:c000:0201", "192.0.2.1", "192.0.2.1"],
    ["::192.0.2.1", "::c000:201", "0:0:0:0:0:0:c000:201"],
    ["fe80::1%eth0", "fe80::1%eth0", "fe80:0:0:0:0:0:0:1%eth0"],
  ])("canonicalIp(%s) is canonicalIp(%s): %s", (a, b, canonical) => {
    expect(canonicalIp(a)).toBe(canonical);
    expect(canonicalIp(b)).toBe(canonical);
  });

  test("canonicalIp of anything else is undefined", () => {
    expect(canonicalIp("registry.example.com")).toBeUndefined();
    expect(canonicalIp("1::2::3")).toBeUndefined();
  });

  test.each([
    ["ipAddresses", "::1", "0::1", "address"],
    ["ipAddresses", "2001:db8::1", "2001:DB8:0::1", "address"],
    ["ipAddresses", "2001:db8::1", "2001:0db8::0001", "address"],
    ["ipAddresses", "192.0.2.1", "::ffff:192.0.2.1", "address"],
    ["dnsNames", "registry.example.com", "Registry.Example.COM", "host name"],
    ["dnsNames", "registry.example.com", "registry.example.com.", "host name"],
    ["users", "admin", "Admin", "name"],
  ])("%s: %s and %s", (key, first, second, noun) => {
    expect(messageFor({ [key]: JSON.stringify([first, second]) })).toBe(
      `Invalid config "private-registry:${key}" = ${JSON.stringify(second)}: is listed twice (${JSON.stringify(first)} is the same ${noun}).`,
    );
  });

  test.each([
    ["2001:db8::1", "2001:db8::10"],
    ["1::", "::1"],
    ["::192.0.2.1", "192.0.2.1"],
    ["fe80::1%eth0", "fe80::1%eth1"],
  ])("different addresses are not: %s and %s", (a, b) => {
    expect(parse({ ipAddresses: JSON.stringify([a, b]) }).ipAddresses).toEqual([a, b]);
  });

  test("a client host spelled twice with the same port", () => {
    const message = messageFor({
      clients: JSON.stringify([
        { host: "2001:db8::21", privateKey: KEY },
        { host: "2001:DB8:0::21", privateKey: KEY },
      ]),
    });
    expect(message).toBe('Invalid config "private-registry:clients[1].host" = "2001:DB8:0::21": the same host and port is listed twice.');
    expect(
      parse({
        clients: JSON.stringify([
          { host: "2001:db8::21", privateKey: KEY },
          { host: "2001:DB8:0::21", port: 2222, privateKey: KEY },
        ]),
      }).clients,
    ).toHaveLength(2);
  });
});

describe("cross-checks", () => {
  test("a value that is already bad is not compared with others", () => {
    expect(messageFor({ caValidityDays: "100", serverCertValidityDays: "abc" })).toBe(
      'Invalid config "private-registry:serverCertValidityDays" = "abc": must be a whole number from 1 to 3650.',
    );
  });
});

describe("the stack files", () => {
  test.each(["Pulumi.dev.yaml", "Pulumi.lab.yaml"])("%s names only settings the program knows", (file) => {
    const text = fs.readFileSync(path.join(__dirname, "..", file), "utf8");
    const keys = [...text.matchAll(/^ {2}private-registry:([A-Za-z]+):/gm)].map((m) => m[1]);
    expect(keys.length).toBeGreaterThan(3);
    for (const key of keys) expect(() => parse({ [key]: "" })).not.toThrow(/unknown setting/);
  });
});

describe("pullOnlyUsers", () => {
  test("names users that exist; none by default", () => {
    expect(parse({}).pullOnlyUsers).toEqual([]);
    expect(parse({ users: '["ci","server"]', pullOnlyUsers: '["server"]' }).pullOnlyUsers).toEqual(["server"]);
  });

  test("a user who is not in users is refused with one message", () => {
    // Compared ignoring case, as users are with each other, and spelled as in users (the htpasswd's name).
    expect(parse({ users: '["CI","server"]', pullOnlyUsers: '["CI"]' }).pullOnlyUsers).toEqual(["CI"]);
    expect(parse({ users: '["CI","server"]', pullOnlyUsers: '["ci"]' }).pullOnlyUsers).toEqual(["CI"]);
    expect(parse({ users: '["ci","server"]', pullOnlyUsers: '["Server"]' }).pullOnlyUsers).toEqual(["server"]);
    expect(messageFor({ users: '["ci","server"]', pullOnlyUsers: '["server","Server"]' })).toBe(
      'Invalid config "private-registry:pullOnlyUsers" = "Server": is listed twice ("server" is the same name).',
    );
    expect(messageFor({ users: '["ci","server"]', pullOnlyUsers: '["Ghost"]' })).toBe(
      'Invalid config "private-registry:pullOnlyUsers" = "Ghost": is not one of users ("ci", "server").',
    );
    expect(messageFor({ pullOnlyUsers: '["ghost"]' })).toBe(
      'Invalid config "private-registry:pullOnlyUsers" = "ghost": is not one of users ("admin").',
    );
    expect(messageFor({ users: '["ci","server"]', pullOnlyUsers: '["server","server"]' })).toBe(
      'Invalid config "private-registry:pullOnlyUsers" = "server": is listed twice.',
    );
  });
});

describe("rights", () => {
  const users = '["admin","CI-A","reader"]';
  const rights = (value: unknown) => ({ users, pullOnlyUsers: '["reader"]', rights: JSON.stringify(value) });

  test("none by default; users listed get exactly their projects' rights, spelled as in users", () => {
    expect(parse({}).rights).toEqual({});
    expect(parse(rights({ "ci-a": { "team-a": "push", "*": "pull" }, reader: { base: "pull" } })).rights).toEqual({
      "CI-A": { "team-a": "push", "*": "pull" },
      reader: { base: "pull" },
    });
    // Project names as distribution allows a repository name's first component.
    expect(parse(rights({ admin: { "a.b": "pull", a__b: "pull", "a--b": "push", a_b: "pull", "0": "pull" } })).rights.admin).toHaveProperty(
      "a--b",
      "push",
    );
  });

  test.each([
    [
      "an unknown user",
      { ghost: { "team-a": "pull" } },
      'Invalid config "private-registry:rights.ghost" = "ghost": is not one of users ("admin", "CI-A", "reader").',
    ],
    [
      "a user listed twice in two spellings",
      { "ci-a": { "team-a": "pull" }, "CI-A": { "team-b": "pull" } },
      'Invalid config "private-registry:rights.CI-A" = "CI-A": is listed twice ("CI-A" is the same name).',
    ],
    [
      "a user with no project",
      { admin: {} },
      'Invalid config "private-registry:rights.admin" = {}: must map at least one project (or "*" for every project) to "pull" or "push".',
    ],
    [
      "a list instead of projects",
      { admin: ["team-a"] },
      'Invalid config "private-registry:rights.admin" = ["team-a"]: must map at least one project (or "*" for every project) to "pull" or "push".',
    ],
    ...["Team-A", "team-a/app", "-x", "_all", "a..b", "", "..", "team a"].map((project): [string, unknown, string] => [
      `the project name ${JSON.stringify(project)}`,
      { admin: { [project]: "pull" } },
      `Invalid config "private-registry:rights.admin.${project}" = ${JSON.stringify(project)}: is not a project name: "*" (every project), or the first component ` +
        "of a repository name as distribution allows it (lower-case letters and digits, separated by '.', '_', '__' or dashes).",
    ]),
    ...["read", "Push", "write", true, 1, null].map((right): [string, unknown, string] => [
      `the right ${JSON.stringify(right)}`,
      { admin: { "team-a": right } },
      `Invalid config "private-registry:rights.admin.team-a" = ${JSON.stringify(right)}: must be "pull" or "push" (push implies pull).`,
    ]),
    [
      "push for a pull-only user",
      { reader: { "team-a": "push" } },
      'Invalid config "private-registry:rights.reader.team-a" = "push": "reader" is in pullOnlyUsers: give it "pull", or take it out of pullOnlyUsers.',
    ],
    [
      "a list instead of a map",
      [{ admin: { "team-a": "pull" } }],
      'Invalid config "private-registry:rights" = [{"admin":{"team-a":"pull"}}]: must map user names to their projects\' rights: { "ci": { "team-a": "push" } }.',
    ],
  ])("%s is refused with one message naming the key and the value", (_what, value, message) => {
    expect(messageFor(rights(value))).toBe(message);
  });

  test('with tlsTermination "registry" they are refused: distribution cannot enforce them', () => {
    expect(messageFor({ ...rights({ "ci-a": { "team-a": "push" } }), pullOnlyUsers: "[]", tlsTermination: "registry" })).toBe(
      'Invalid config "private-registry:rights" = ["CI-A"]: cannot be enforced with tlsTermination "registry": the registry\'s own ' +
        'htpasswd auth lets every user read and write every repository; set tlsTermination to "proxy" (nginx checks the rights on every request) or remove rights.',
    );
    expect(parse({ tlsTermination: "registry", rights: "{}" }).rights).toEqual({});
  });
});

describe("tlsTermination", () => {
  test("proxy by default; registry when asked", () => {
    expect(parse({}).tlsTermination).toBe("proxy");
    expect(parse({ tlsTermination: "proxy" }).tlsTermination).toBe("proxy");
    expect(parse({ tlsTermination: "registry" }).tlsTermination).toBe("registry");
  });

  test("anything else is refused with one message naming the key, the value and the choices", () => {
    expect(messageFor({ tlsTermination: "nginx" })).toBe(
      'Invalid config "private-registry:tlsTermination" = "nginx": must be "proxy" or "registry".',
    );
    expect(messageFor({ tlsTermination: "Registry" })).toBe(
      'Invalid config "private-registry:tlsTermination" = "Registry": must be "proxy" or "registry".',
    );
  });

  test("pull-only users need the proxy: with the registry terminating TLS they are refused, naming the key and its value", () => {
    expect(messageFor({ tlsTermination: "registry", users: '["ci","server"]', pullOnlyUsers: '["server"]' })).toBe(
      'Invalid config "private-registry:pullOnlyUsers" = ["server"]: cannot be enforced with tlsTermination "registry": ' +
        'the registry\'s own htpasswd auth lets every user push and delete; set tlsTermination to "proxy" (nginx refuses their writes) ' +
        "or empty pullOnlyUsers.",
    );
    // The same users behind the proxy, and no pull-only users without it, are fine.
    expect(parse({ users: '["ci","server"]', pullOnlyUsers: '["server"]' }).pullOnlyUsers).toEqual(["server"]);
    expect(parse({ tlsTermination: "registry", users: '["ci","server"]', pullOnlyUsers: "[]" }).pullOnlyUsers).toEqual([]);
  });

  test("the registry browser is on and metrics off by default; metrics need nginx, ui without it has nothing to serve it", () => {
    expect(parse({})).toMatchObject({ ui: true, metrics: false });
    expect(parse({ ui: "false", metrics: "true" })).toMatchObject({ ui: false, metrics: true });
    expect(messageFor({ tlsTermination: "registry", metrics: "true" })).toBe(
      'Invalid config "private-registry:metrics" = true: needs nginx, which tlsTermination "registry" does not have ' +
        '(the registry\'s debug server would have to be published without authentication); set tlsTermination to "proxy" or metrics to false.',
    );
    // ui: true is the declared default, which Pulumi hands over as if set: accepted, and the registry layout has no /ui/.
    expect(parse({ tlsTermination: "registry", ui: "true", metrics: "false" })).toMatchObject({ tlsTermination: "registry", ui: true });
    expect(messageFor({ ui: "yes" })).toBe('Invalid config "private-registry:ui" = "yes": must be true or false.');
  });
});

describe("dockerHost: the engine that runs the registry", () => {
  const CA = "-----BEGIN CERTIFICATE-----\nMIIBca\n-----END CERTIFICATE-----\n";
  const CERT = "-----BEGIN CERTIFICATE-----\nMIIBcert\n-----END CERTIFICATE-----\n";
  const TLS_KEY_BODY = "MHcCAQEEIEXAMPLEdockerClientKeyBodyThatMustNeverShow0123456789";
  const TLS_KEY = `-----BEGIN EC PRIVATE KEY-----\n${TLS_KEY_BODY}\n-----END EC PRIVATE KEY-----\n`;
  const tls = { dockerTlsCaCert: CA, dockerTlsCert: CERT, dockerTlsKey: TLS_KEY };
  const allSecret = ["dockerTlsCaCert", "dockerTlsCert", "dockerTlsKey"];

  test("not set: no engine in the settings (the local one, no explicit provider, as before)", () => {
    expect(parse({}).dockerEngine).toBeUndefined();
    expect(parse({ dockerHost: "" }).dockerEngine).toBeUndefined();
  });

  test("tcp:// with the three TLS values as secrets; ssh:// and unix:// alone", async () => {
    const tcp = parse({ dockerHost: "tcp://198.51.100.7:2376", ...tls }, allSecret).dockerEngine!;
    expect(tcp.host).toBe("tcp://198.51.100.7:2376");
    for (const value of Object.values(tcp.tls!)) expect(await pulumi.isSecret(pulumi.output(value))).toBe(true);
    expect(parse({ dockerHost: "ssh://deploy@registry.example.com" }).dockerEngine).toEqual({ host: "ssh://deploy@registry.example.com" });
    expect(parse({ dockerHost: "ssh://deploy@[2001:db8::7]:2222" }).dockerEngine).toEqual({ host: "ssh://deploy@[2001:db8::7]:2222" });
    expect(parse({ dockerHost: "unix:///run/user/1000/docker.sock" }).dockerEngine).toEqual({ host: "unix:///run/user/1000/docker.sock" });
  });

  test.each([
    [
      "plain tcp:// without TLS",
      { dockerHost: "tcp://198.51.100.7:2375" },
      'Invalid config "private-registry:dockerHost" = "tcp://198.51.100.7:2375": a tcp:// Docker engine needs client TLS: set dockerTlsCaCert, dockerTlsCert, dockerTlsKey (as secrets: `npm run pulumi -- config set --secret dockerTlsKey < key.pem`); plain tcp:// is refused because anyone who reaches that port is root on the Docker host.',
    ],
    [
      "tcp:// missing the key",
      { dockerHost: "tcp://198.51.100.7:2376", dockerTlsCaCert: CA, dockerTlsCert: CERT },
      'Invalid config "private-registry:dockerHost" = "tcp://198.51.100.7:2376": a tcp:// Docker engine needs client TLS: set dockerTlsKey (as secrets',
    ],
    [
      "tcp:// without a port",
      { dockerHost: "tcp://198.51.100.7", ...tls },
      'Invalid config "private-registry:dockerHost" = "tcp://198.51.100.7": must be unix:///path/to/docker.sock, tcp://HOST:PORT (with dockerTlsCaCert, dockerTlsCert, dockerTlsKey) or ssh://USER@HOST[:PORT]; a tcp:// address needs its port (2376 is Docker\'s TLS port) and no user.',
    ],
    [
      "http://",
      { dockerHost: "http://198.51.100.7:2376" },
      'Invalid config "private-registry:dockerHost" = "http://198.51.100.7:2376": must be unix:///path/to/docker.sock, tcp://HOST:PORT (with dockerTlsCaCert, dockerTlsCert, dockerTlsKey) or ssh://USER@HOST[:PORT].',
    ],
    [
      "a bare host",
      { dockerHost: "198.51.100.7" },
      'Invalid config "private-registry:dockerHost" = "198.51.100.7": must be unix:///path/to/docker.sock,',
    ],
    [
      "ssh:// with a bad host",
      { dockerHost: "ssh://deploy@bad_host" },
      'Invalid config "private-registry:dockerHost" = "ssh://deploy@bad_host": must be unix:///path',
    ],
    [
      "TLS values with ssh://",
      { dockerHost: "ssh://deploy@registry.example.com", dockerTlsCaCert: CA },
      'Invalid config "private-registry:dockerTlsCaCert" = "[secret]": is used only with a tcp:// dockerHost, not ssh://.',
    ],
    [
      "TLS values without dockerHost",
      { dockerTlsKey: TLS_KEY },
      'Invalid config "private-registry:dockerTlsKey" = "[secret]": is used only with a tcp:// dockerHost, and dockerHost is not set (the local engine).',
    ],
    [
      "a certificate that is not PEM",
      { dockerHost: "tcp://198.51.100.7:2376", ...tls, dockerTlsCert: "not a certificate" },
      'Invalid config "private-registry:dockerTlsCert" = "[secret]": must be a PEM certificate.',
    ],
    [
      "a key that is not PEM",
      { dockerHost: "tcp://198.51.100.7:2376", ...tls, dockerTlsKey: "hunter2" },
      'Invalid config "private-registry:dockerTlsKey" = "[secret]": must be a PEM private key.',
    ],
  ])("%s", (_label, raw, expected) => {
    const message = messageFor(raw as Record<string, string>, allSecret);
    expect(message.startsWith(expected)).toBe(true);
    expect(message.split("\n")).toHaveLength(1);
    expect(message).not.toContain("hunter2");
    expect(message).not.toContain("MIIB");
  });

  test("a client key in plain text is refused, and never shown", () => {
    const message = messageFor({ dockerHost: "tcp://198.51.100.7:2376", ...tls }, ["dockerTlsCaCert", "dockerTlsCert"]);
    expect(message).toBe(
      'Invalid config "private-registry:dockerTlsKey" = "[hidden]": must be a secret: set it with `npm run pulumi -- config set --secret dockerTlsKey < key.pem` ' +
        "(a key in plain text in the stack file gives root on the Docker host to whoever reads it).",
    );
    expectHidden(message, TLS_KEY_BODY);
    expectHidden(messageFor({ dockerHost: "tcp://198.51.100.7", ...tls }), TLS_KEY_BODY);
  });
});

describe("dockerHost in the pre-flight check: the docker CLI asks the same engine", () => {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { preflight } = require("../lib/preflight") as typeof import("../lib/preflight");
  const CA = "-----BEGIN CERTIFICATE-----\nMIIBca\n-----END CERTIFICATE-----\n";
  const KEY_BODY = "MHcCAQEEIPreflightKeyBodyNeverOnACommandLine0123456789";
  const tlsKey = `-----BEGIN EC PRIVATE KEY-----\n${KEY_BODY}\n-----END EC PRIVATE KEY-----\n`;
  const settings = parse(
    { dockerHost: "tcp://198.51.100.7:2376", dockerTlsCaCert: CA, dockerTlsCert: CA, dockerTlsKey: tlsKey, pullImages: "false" },
    ["dockerTlsCaCert", "dockerTlsCert", "dockerTlsKey"],
  );

  test("DOCKER_HOST and 0600 TLS files in a folder removed afterwards; the key never in an argument; no local port probe", () => {
    const calls: { cmd: string; args: string[]; env?: NodeJS.ProcessEnv; files?: Record<string, string> }[] = [];
    const result = preflight("private-registry", "dev", settings, (cmd, args, _t, env) => {
      const dir = env?.DOCKER_CERT_PATH;
      const files = dir
        ? Object.fromEntries(fs.readdirSync(dir).map((f) => [f, (fs.statSync(path.join(dir, f)).mode & 0o777).toString(8)]))
        : undefined;
      if (dir) expect(fs.readFileSync(path.join(dir, "key.pem"), "utf8")).toBe(tlsKey);
      calls.push({ cmd, args, env, files });
      return { status: args[0] === "version" ? 0 : 1, stdout: "", stderr: "" };
    });
    expect(calls.every((c) => c.cmd === "docker")).toBe(true); // no node probe of a port on this machine
    for (const c of calls) {
      expect(c.env).toMatchObject({ DOCKER_HOST: "tcp://198.51.100.7:2376", DOCKER_TLS_VERIFY: "1" });
      expect(c.files).toEqual({ "ca.pem": "600", "cert.pem": "600", "key.pem": "600" });
      expect(c.args.join(" ")).not.toContain(KEY_BODY);
    }
    expect(fs.existsSync(calls[0].env!.DOCKER_CERT_PATH!)).toBe(false);
    expect(result.notes.join("\n")).toContain("the Docker engine at tcp://198.51.100.7:2376 is not this machine's socket");
  });

  test("an engine that does not answer: one message naming dockerHost, nothing of the key", () => {
    const result = preflight("private-registry", "dev", settings, () => ({
      status: 1,
      stdout: "",
      stderr: "error during connect: remote error: tls: bad certificate\n",
    }));
    expect(result.problems).toEqual([
      'Invalid config "private-registry:dockerHost" = "tcp://198.51.100.7:2376": the Docker engine there does not answer (error during connect: remote error: tls: bad certificate); nothing was created.',
    ]);
  });
});
