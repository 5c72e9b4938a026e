// Stack settings -> PrivateRegistry's args (lib/registryArgs.ts), directly.
import { parseSettings } from "../lib/settings";
import { argsFromSettings } from "../lib/registryArgs";

const TEST_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n";
const CA = "-----BEGIN CERTIFICATE-----\nMIIBca\n-----END CERTIFICATE-----\n";
const CERT = "-----BEGIN CERTIFICATE-----\nMIIBcert\n-----END CERTIFICATE-----\n";
const KEY = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----\n";
const parse = (raw: Record<string, string>, secretKeys: string[] = []) => parseSettings(raw, "private-registry", "dev", secretKeys);

describe("argsFromSettings", () => {
  test("the defaults: every group filled from the settings' defaults, the proxy layout, no clients", () => {
    expect(argsFromSettings(parse({}))).toEqual({
      address: { ipAddresses: ["127.0.0.1"], dnsNames: ["localhost"], port: 443, listenAddress: "0.0.0.0" },
      certificateAuthority: {
        keyAlgorithm: "RSA",
        rsaBits: 4096,
        commonName: "Private Registry CA",
        organization: "Private Registry",
        validityDays: 3650,
        generation: 1,
        alsoTrust: [],
      },
      serverCertificate: { keyAlgorithm: "ECDSA", rsaBits: 4096, validityHours: 365 * 24, earlyRenewalHours: 30 * 24 },
      users: { names: ["admin"], passwordLength: 32, bcryptCost: 4 },
      registry: { image: "registry:3.1.1", deleteEnabled: false, keepDataOnDestroy: true, adoptExistingVolume: false },
      proxy: { image: "nginx:1.30.4", pullOnlyUsers: [], ui: true, metrics: false, mirrors: [] },
      clients: { hosts: [], verify: true },
      docker: { namePrefix: "registry-dev", pullImages: true, facts: {} },
    });
  });

  test("each setting lands in its group", () => {
    const settings = parse({
      ipAddresses: '["192.0.2.10"]',
      dnsNames: '["registry.example.com"]',
      port: "5443",
      listenAddress: "192.0.2.10",
      users: '["admin","ci","reader"]',
      pullOnlyUsers: '["reader"]',
      rights: JSON.stringify({ CI: { "team-a": "push", "*": "pull" } }),
      passwordLength: "40",
      bcryptCost: "6",
      keyAlgorithm: "ECDSA",
      serverKeyAlgorithm: "RSA",
      rsaBits: "3072",
      caCommonName: "Lab CA",
      organization: "Lab",
      caValidityDays: "400",
      caGeneration: "2",
      caAlsoTrust: "[1]",
      serverCertValidityHours: "48",
      serverCertEarlyRenewalHours: "12",
      registryImage: "registry:2.8.3",
      nginxImage: "nginx:1.27",
      pullImages: "false",
      namePrefix: "lab",
      keepDataOnDestroy: "false",
      deleteEnabled: "true",
      adoptExistingVolume: "true",
      verifyFromClients: "false",
      clientCertificates: "true",
      ui: "false",
      metrics: "true",
      localClient: "true",
      localClientSudo: "true",
      localClientTrustOs: "false",
      clients: JSON.stringify([{ host: "198.51.100.21", user: "deploy", sudo: true, privateKey: TEST_KEY }]),
    });
    const args = argsFromSettings(settings, { usersWriterRerunOf: "0123456789ab" });
    expect(args.address).toEqual({
      ipAddresses: ["192.0.2.10"],
      dnsNames: ["registry.example.com"],
      port: 5443,
      listenAddress: "192.0.2.10",
    });
    expect(args.certificateAuthority).toEqual({
      keyAlgorithm: "ECDSA",
      rsaBits: 3072,
      commonName: "Lab CA",
      organization: "Lab",
      validityDays: 400,
      generation: 2,
      alsoTrust: [1],
    });
    expect(args.serverCertificate).toEqual({ keyAlgorithm: "RSA", rsaBits: 3072, validityHours: 48, earlyRenewalHours: 12 });
    expect(args.users).toEqual({ names: ["admin", "ci", "reader"], passwordLength: 40, bcryptCost: 6 });
    expect(args.registry).toEqual({ image: "registry:2.8.3", deleteEnabled: true, keepDataOnDestroy: false, adoptExistingVolume: true });
    // Client certificates live and renew like the server certificate.
    expect(args.proxy).toEqual({
      image: "nginx:1.27",
      pullOnlyUsers: ["reader"],
      // Spelled as in users.
      rights: { ci: { "team-a": "push", "*": "pull" } },
      ui: false,
      metrics: true,
      clientCertificates: { validityHours: 48, earlyRenewalHours: 12 },
      mirrors: [],
    });
    expect(args.clients.local).toEqual({ sudo: true, trustOs: false });
    expect(args.clients.verify).toBe(false);
    // The client hosts as parsed: the same objects (their SSH keys stay secrets).
    expect(args.clients.hosts).toBe(settings.clients);
    expect(args.docker).toEqual({ namePrefix: "lab", pullImages: false, facts: { usersWriterRerunOf: "0123456789ab" } });
  });

  test('tlsTermination "registry": no proxy group at all', () => {
    const args = argsFromSettings(parse({ tlsTermination: "registry" }));
    expect(args.proxy).toBeUndefined();
    expect("proxy" in args).toBe(false);
  });

  test("no client certificates unless asked; no local client unless asked; no rights per project unless asked", () => {
    const args = argsFromSettings(parse({ localClient: "false" }));
    expect(args.proxy?.clientCertificates).toBeUndefined();
    expect(args.proxy).not.toHaveProperty("rights");
    expect("local" in args.clients).toBe(false);
  });

  test("dockerHost: the engine as parsed (host and the TLS material, secrets), on the docker group", () => {
    const settings = parse(
      {
        dockerHost: "tcp://198.51.100.7:2376",
        dockerTlsCaCert: CA,
        dockerTlsCert: CERT,
        dockerTlsKey: KEY,
      },
      ["dockerTlsCaCert", "dockerTlsCert", "dockerTlsKey"],
    );
    expect(argsFromSettings(settings).docker.engine).toBe(settings.dockerEngine);
    expect(argsFromSettings(parse({})).docker).not.toHaveProperty("engine");
  });
});
