import * as fs from "fs";
import * as path from "path";
import { ConfigError, parseSettings } from "../lib/settings";

const KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n";
const parse = (raw: Record<string, string>) => parseSettings(raw, "private-registry", "dev");

/** The one message that bad input produces. */
function messageFor(raw: Record<string, string>): string {
  try {
    parse(raw);
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
      ipAddresses: ["127.0.0.1"], dnsNames: ["localhost"], port: 443, listenAddress: "0.0.0.0", users: ["admin"],
      passwordLength: 32, keyAlgorithm: "RSA", rsaBits: 4096, registryImage: "registry:2.8.3", nginxImage: "nginx:1.27.5",
      pullImages: true, namePrefix: "registry-dev", keepDataOnDestroy: true, clients: [], localClient: false,
    });
  });

  test("client hosts get port 22, user root, no sudo, no OS trust unless set", () => {
    const s = parse({ clients: JSON.stringify([{ host: "client.example.com", privateKey: KEY }]) });
    expect(s.clients).toEqual([expect.objectContaining({ host: "client.example.com", port: 22, user: "root", sudo: false, trustOs: false })]);
  });

  test("every key declared in Pulumi.yaml is one the program reads, and no other", () => {
    const yaml = fs.readFileSync(path.join(__dirname, "..", "Pulumi.yaml"), "utf8");
    const configSection = yaml.slice(yaml.indexOf("\nconfig:\n"));
    const declared = [...configSection.matchAll(/^ {2}([A-Za-z]+):$/gm)].map((m) => m[1]);
    for (const key of declared) expect(() => parse({ [key]: "" })).not.toThrow(/unknown setting/);
    expect(messageFor({ notDeclared: "x" })).toMatch(/unknown setting/);
    expect(declared).toHaveLength(22);
  });
});

describe("parseSettings rejects bad input with one message naming the key and the value", () => {
  test.each([
    ["an address that is not an IP", { ipAddresses: '["192.0.2.300"]' }, 'Invalid config "private-registry:ipAddresses" = "192.0.2.300": is not an IPv4 or IPv6 address.'],
    ["a port above 65535", { port: "70000" }, 'Invalid config "private-registry:port" = "70000": must be a whole number from 1 to 65535.'],
    ["port 0", { port: "0" }, 'Invalid config "private-registry:port" = "0": must be a whole number from 1 to 65535.'],
    ["a port that is not a number", { port: "https" }, 'Invalid config "private-registry:port" = "https": must be a whole number from 1 to 65535.'],
    ["no IP and no name", { ipAddresses: "[]", dnsNames: "[]" }, 'Invalid config "private-registry:ipAddresses" = []: ipAddresses and dnsNames are both empty; clients need at least one address to dial.'],
    ["a duplicate user", { users: '["admin","ci","admin"]' }, 'Invalid config "private-registry:users" = "admin": is listed twice.'],
    ["a user name with a colon", { users: '["bad:user"]' }, `Invalid config "private-registry:users" = "bad:user": is not a valid user name (letters, digits, '.', '_', '-'; no ':').`],
    ["no users", { users: "[]" }, 'Invalid config "private-registry:users" = []: must name at least one user.'],
    ["an invalid DNS name", { dnsNames: '["bad_name.example.com"]' }, 'Invalid config "private-registry:dnsNames" = "bad_name.example.com": is not a valid DNS name.'],
    ["an IP among the DNS names", { dnsNames: '["192.0.2.1"]' }, 'Invalid config "private-registry:dnsNames" = "192.0.2.1": is an IP address; put it in ipAddresses.'],
    ["a duplicate IP", { ipAddresses: '["192.0.2.1","192.0.2.1"]' }, 'Invalid config "private-registry:ipAddresses" = "192.0.2.1": is listed twice.'],
    ["an unknown option", { prot: "443" }, 'Invalid config "private-registry:prot" = "443": unknown setting'],
    ["a bad listen address", { listenAddress: "localhost" }, 'Invalid config "private-registry:listenAddress" = "localhost": is not an IPv4 or IPv6 address.'],
    ["an unknown key algorithm", { keyAlgorithm: "DSA" }, 'Invalid config "private-registry:keyAlgorithm" = "DSA": must be "RSA" or "ECDSA".'],
    ["an odd RSA size", { rsaBits: "3000" }, 'Invalid config "private-registry:rsaBits" = 3000: must be a multiple of 1024.'],
    ["a boolean that is not one", { pullImages: "yes" }, 'Invalid config "private-registry:pullImages" = "yes": must be true or false.'],
    ["early renewal longer than validity", { serverCertValidityDays: "30", serverCertEarlyRenewalDays: "30" }, 'Invalid config "private-registry:serverCertEarlyRenewalDays" = 30: must be less than serverCertValidityDays (30).'],
    ["a server certificate outliving its CA", { caValidityDays: "100", serverCertValidityDays: "365" }, 'Invalid config "private-registry:serverCertValidityDays" = 365: must not exceed caValidityDays (100).'],
    ["a bad image reference", { nginxImage: "Nginx Latest" }, 'Invalid config "private-registry:nginxImage" = "Nginx Latest": is not a Docker image reference.'],
    ["a bad name prefix", { namePrefix: "-reg" }, `Invalid config "private-registry:namePrefix" = "-reg": must be a Docker name (letters, digits, '_', '.', '-', at most 63).`],
    ["a list that is not one", { users: "admin" }, 'Invalid config "private-registry:users" = "admin": must be a list of strings.'],
    ["a client without a key", { clients: '[{"host":"198.51.100.21"}]' }, 'Invalid config "private-registry:clients[0].privateKey" = "(missing)": must be a PEM private key'],
    ["a client with a bad host", { clients: JSON.stringify([{ host: "198.51.100.999", privateKey: KEY }]) }, 'Invalid config "private-registry:clients[0].host" = "198.51.100.999": must be an IP address or DNS name.'],
    ["a client with a bad port", { clients: JSON.stringify([{ host: "198.51.100.21", port: 0, privateKey: KEY }]) }, 'Invalid config "private-registry:clients[0].port" = 0: must be a whole number from 1 to 65535.'],
    ["a client with an unknown option", { clients: JSON.stringify([{ host: "198.51.100.21", sudoo: true, privateKey: KEY }]) }, 'Invalid config "private-registry:clients[0].sudoo" = true: unknown setting'],
    ["a client listed twice", { clients: JSON.stringify([{ host: "198.51.100.21", privateKey: KEY }, { host: "198.51.100.21", privateKey: KEY }]) }, 'Invalid config "private-registry:clients[1].host" = "198.51.100.21": the same host and port is listed twice.'],
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
    expect(message.split("\n").slice(1).map((l) => l.trim().split(" = ")[0])).toEqual([
      'Invalid config "private-registry:port"', 'Invalid config "private-registry:users"',
    ]);
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
