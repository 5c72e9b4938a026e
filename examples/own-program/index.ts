// A program of one's own that deploys the private registry (docs/own-program.md).
// PrivateRegistry comes from this repository's source by a relative path: no package
// to publish or build, and the TypeScript Pulumi runs is the one the tests run.
// Documentation addresses only (192.0.2.0/24, example.com): put your own.
import { PrivateRegistry } from "../../components/privateRegistry";

const registry = new PrivateRegistry("registry", {
  address: { ipAddresses: ["192.0.2.10"], dnsNames: ["registry.example.com"], port: 5443, listenAddress: "0.0.0.0" },
  certificateAuthority: {
    keyAlgorithm: "ECDSA",
    rsaBits: 4096,
    commonName: "Example Registry CA",
    organization: "Example",
    validityDays: 3650,
    generation: 1,
    alsoTrust: [],
  },
  serverCertificate: { keyAlgorithm: "ECDSA", rsaBits: 4096, validityHours: 365 * 24, earlyRenewalHours: 30 * 24 },
  users: { names: ["admin", "ci"], passwordLength: 32, bcryptCost: 4 },
  registry: { image: "registry:3.1.1", deleteEnabled: false, keepDataOnDestroy: true, adoptExistingVolume: false },
  // nginx in front; "ci" may pull but not push. Leave `proxy` out to have the registry terminate TLS itself.
  proxy: { image: "nginx:1.30.4", pullOnlyUsers: ["ci"] },
  // No client host here: add { host, port, user, privateKey, sudo, trustOs } entries to install the CA over SSH.
  clients: { hosts: [], verify: true },
  docker: { namePrefix: "example-registry", pullImages: true },
});

export const endpoints = registry.endpoints;
export const caCertPem = registry.caCertPem;
export const serverCertExpiresAt = registry.serverCertExpiresAt;
export const credentials = registry.credentials;
export const containers = registry.containers;
