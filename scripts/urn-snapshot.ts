// What PrivateRegistry hands the Pulumi engine, under Pulumi's mocks, for a range of
// settings: every RegisterResource request (type, name, parent URN, custom, provider,
// inputs, dependencies and resource options), sorted by URN, as JSON on stdout.
// Run it on two commits and diff the output: the same text means existing stacks
// see the same resources (URNs) with the same inputs.
//   npx tsx scripts/urn-snapshot.ts > after.json
// It builds the component through lib/registryArgs.ts when that exists (the
// PrivateRegistry(name, args, opts) contract), else as PrivateRegistry(name, settings, opts, facts).
import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { parseSettings, Settings } from "../lib/settings";

const ROOT = path.resolve(__dirname, "..");
const TEST_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n";
const CA = "-----BEGIN CERTIFICATE-----\nMIIBca\n-----END CERTIFICATE-----\n";
const CERT = "-----BEGIN CERTIFICATE-----\nMIIBcert\n-----END CERTIFICATE-----\n";
const KEY = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----\n";

const LAB: Record<string, string> = {
  ipAddresses: JSON.stringify(["192.0.2.10", "198.51.100.10"]),
  dnsNames: JSON.stringify(["registry.example.com", "localhost"]),
  port: "5443",
  users: JSON.stringify(["admin", "ci"]),
  clients: JSON.stringify([
    { host: "198.51.100.21", user: "deploy", sudo: true, trustOs: false, privateKey: TEST_KEY },
    { host: "203.0.113.22", port: 2222, sudo: false, trustOs: true, privateKey: TEST_KEY },
  ]),
  localClient: "true",
  localClientSudo: "true",
  localClientTrustOs: "false",
  namePrefix: "reg-t",
};

/** name -> [raw settings, secret keys, host facts] */
const VARIANTS: Record<string, [Record<string, string>, string[], { usersWriterRerunOf?: string }]> = {
  defaults: [{}, [], {}],
  lab: [LAB, [], {}],
  rsa: [{ ...LAB, serverKeyAlgorithm: "RSA", rsaBits: "3072" }, [], {}],
  alt: [
    { ...LAB, keyAlgorithm: "ECDSA", pullImages: "false", clients: "[]", localClient: "false", keepDataOnDestroy: "false", port: "443" },
    [],
    {},
  ],
  direct: [{ ...LAB, tlsTermination: "registry", deleteEnabled: "true" }, [], {}],
  mtls: [{ ...LAB, clientCertificates: "true" }, [], {}],
  rotate: [{ ...LAB, clientCertificates: "true", caGeneration: "2", caAlsoTrust: "[1]" }, [], {}],
  rotated: [{ ...LAB, caGeneration: "3", caAlsoTrust: "[2]", localClientTrustOs: "true" }, [], {}],
  pullonly: [
    {
      ...LAB,
      users: '["admin","ci","reader"]',
      pullOnlyUsers: '["reader"]',
      verifyFromClients: "false",
      adoptExistingVolume: "true",
      serverCertValidityHours: "48",
      serverCertEarlyRenewalHours: "12",
      caCommonName: "Lab CA",
      organization: "Lab",
      caValidityDays: "400",
      passwordLength: "40",
      bcryptCost: "6",
      registryImage: "registry:2.8.3",
      nginxImage: "nginx:1.27",
      listenAddress: "192.0.2.10",
    },
    [],
    {},
  ],
  rerun: [LAB, [], { usersWriterRerunOf: "0123456789ab" }],
  far: [
    {
      ipAddresses: '["198.51.100.7"]',
      dnsNames: '["registry.example.com"]',
      port: "5443",
      namePrefix: "reg-far",
      dockerHost: "tcp://198.51.100.7:2376",
      dockerTlsCaCert: CA,
      dockerTlsCert: CERT,
      dockerTlsKey: KEY,
    },
    ["dockerTlsCaCert", "dockerTlsCert", "dockerTlsKey"],
    {},
  ],
  viassh: [{ dockerHost: "ssh://deploy@registry.example.com", namePrefix: "reg-ssh", localClient: "true" }, [], {}],
};

type Request = { toObject(): Record<string, any>; getUrn?(): string };
const registrations: Record<string, any>[] = [];
const outputs: Record<string, any>[] = [];

function computed(type: string, name: string, inputs: Record<string, any>): Record<string, unknown> {
  switch (type) {
    case "tls:index/privateKey:PrivateKey":
      return { privateKeyPem: `PRIVATE-KEY(${name})` };
    case "tls:index/selfSignedCert:SelfSignedCert":
      return { certPem: `CERT(${name})` };
    case "tls:index/certRequest:CertRequest":
      return { certRequestPem: `CSR(${name})` };
    case "tls:index/locallySignedCert:LocallySignedCert":
      // A real certificate is needed for the client certificates' fingerprints.
      return { certPem: REAL_CERT, validityEndTime: "2027-11-28T00:00:00Z" };
    case "random:index/randomPassword:RandomPassword":
      return { result: `password-of-${name}` };
    case "random:index/randomString:RandomString":
      return { result: `${name.replace(/[^A-Za-z0-9]/g, "")}${"./".repeat(11)}`.slice(0, 22) };
    case "docker:index/container:Container":
      return inputs.attach ? { exitCode: 0, containerLogs: "" } : {};
    case "docker:index/remoteImage:RemoteImage":
      return { imageId: `sha256:id-of-${inputs.name}` };
    default:
      return {};
  }
}
// A self-signed certificate (any will do: only its SHA-1 is taken).
const REAL_CERT = `-----BEGIN CERTIFICATE-----
MIIBezCCASGgAwIBAgIUOr2JxXwsYRfQq43xWAaHg0fy49YwCgYIKoZIzj0EAwIw
EzERMA8GA1UEAwwIc25hcHNob3QwHhcNMjYxMjAyMTA0MjI3WhcNMzYxMTI5MTA0
MjI3WjATMREwDwYDVQQDDAhzbmFwc2hvdDBZMBMGByqGSM49AgEGCCqGSM49AwEH
A0IABGZw70NM6M6OzhumyQIzi/ETriKqZbcu2ZhsIwcJoiK+/kgxie+7kprH78tx
obABeh6pDUXXIfhA/09C4M/M6sujUzBRMB0GA1UdDgQWBBRc187mNdpwGd7YQcZK
5StEa+uIvjAfBgNVHSMEGDAWgBRc187mNdpwGd7YQcZK5StEa+uIvjAPBgNVHRMB
Af8EBTADAQH/MAoGCCqGSM49BAMCA0gAMEUCIQD+WLCs1YiV/wxHRXMP/IC0vVda
f0u82/kuwo2RtL9VcwIgA2c+AxSBGitkfw6QdAb7fJNGyTwRMCDXSe0xj5kg0Xs=
-----END CERTIFICATE-----
`;

pulumi.runtime.setMocks(
  {
    newResource: (args) => ({ id: `${args.name}-id`, state: { ...args.inputs, ...computed(args.type, args.name, args.inputs) } }),
    call: (args) => args.inputs,
  },
  "private-registry",
  "test",
  false,
);
const monitor = pulumi.runtime.getMonitor() as unknown as Record<string, (req: Request, cb: unknown) => unknown>;
const registerResource = monitor.registerResource.bind(monitor);
monitor.registerResource = (req, cb) => {
  registrations.push(req.toObject());
  return registerResource(req, cb);
};
const registerResourceOutputs = monitor.registerResourceOutputs.bind(monitor);
monitor.registerResourceOutputs = (req, cb) => {
  outputs.push(req.toObject());
  return registerResourceOutputs(req, cb);
};

/**
 * Without where in the source the resource was made (not part of a resource, and
 * different between commits), and with sorted copies of the lists whose order the
 * SDK does not promise.
 */
function normalized(r: Record<string, any>): Record<string, any> {
  const { sourceposition: _where, stacktrace: _stack, ...out } = r;
  for (const k of Object.keys(out))
    if (Array.isArray(out[k]) && out[k].every((v: unknown) => typeof v === "string")) out[k] = [...out[k]].sort();
  if (Array.isArray(out.propertydependenciesMap)) {
    out.propertydependenciesMap = out.propertydependenciesMap
      .map(([key, deps]: [string, { urnsList: string[] }]): [string, { urnsList: string[] }] => [
        key,
        { urnsList: [...deps.urnsList].sort() },
      ])
      .sort((a: [string, unknown], b: [string, unknown]) => a[0].localeCompare(b[0]));
  }
  return out;
}

async function main() {
  // The component, imported after the mocks are set.
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { PrivateRegistry } = require("../components/privateRegistry");
  const newContract = fs.existsSync(path.join(ROOT, "lib/registryArgs.ts"));
  const done: Promise<unknown>[] = [];
  for (const [name, [raw, secretKeys, facts]] of Object.entries(VARIANTS)) {
    const settings: Settings = parseSettings(raw, "private-registry", "test", secretKeys);
    const registry = newContract
      ? // eslint-disable-next-line @typescript-eslint/no-var-requires
        new PrivateRegistry(name, require("../lib/registryArgs").argsFromSettings(settings, facts))
      : new PrivateRegistry(name, settings, {}, facts);
    for (const key of [
      "endpoints",
      "credentials",
      "dockerLoginCommands",
      "clientHosts",
      "containers",
      "caCertPem",
      "serverCertExpiresAt",
    ]) {
      done.push(new Promise((resolve) => (registry[key] as pulumi.Output<unknown>).apply(resolve)));
    }
  }
  await Promise.all(done);
  // Until no registration has come for a while.
  for (let seen = -1; seen !== registrations.length + outputs.length;) {
    seen = registrations.length + outputs.length;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  const urnOf = (r: Record<string, any>) => `${r.parent || "(root)"} ${r.type}::${r.name}`;
  const resources = registrations.map(normalized).sort((a, b) => urnOf(a).localeCompare(urnOf(b)));
  const componentOutputs = outputs.map(normalized).sort((a, b) => String(a.urn).localeCompare(String(b.urn)));
  process.stdout.write(JSON.stringify({ contract: newContract ? "args" : "settings", resources, componentOutputs }, null, 1) + "\n");
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
