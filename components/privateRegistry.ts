import * as pulumi from "@pulumi/pulumi";
import * as docker from "@pulumi/docker";
import { Settings } from "../lib/settings";
import { registryEndpoints } from "../lib/endpoints";
import { withNewline } from "../lib/pem";
import { renderNginxConf } from "../lib/nginxConf";
import { CertificateAuthority } from "./certificateAuthority";
import { ServerCertificate } from "./serverCertificate";
import { RegistryCredentials } from "./registryCredentials";
import { Registry, REGISTRY_SOCKET, REGISTRY_SOCKET_DIR } from "./registry";
import { TlsProxy, PROXY_CONTAINER_PORT, PROXY_PATHS } from "./tlsProxy";
import { ClientTrust } from "./clientTrust";
import { ClientCertificate } from "./clientCertificate";
import { STACK_LABEL, HostFacts } from "../lib/preflight";

/**
 * The whole product: CA, server certificate, users, registry, TLS proxy and client trust.
 * With tlsTermination "registry" there is no proxy: the registry gets the certificate
 * chain, key and htpasswd itself and publishes its own port. Everything else (the
 * volume, the network, the names, the outputs) is the same in both layouts, so that
 * switching is one `pulumi up` that replaces only containers and keeps the images.
 */
export class PrivateRegistry extends pulumi.ComponentResource {
  /**
   * host[:port] for every address clients dial. Like the login lines, known only once
   * the proxy (or, without one, the registry) is up and healthy: a failed run never
   * claims a registry that does not answer.
   */
  readonly endpoints: pulumi.Output<string[]>;
  readonly caCertPem: pulumi.Output<string>;
  readonly serverCertExpiresAt: pulumi.Output<string>;
  /** user -> password; secret. */
  readonly credentials: pulumi.Output<Record<string, string>>;
  /** The login for the first user. */
  readonly dockerLoginCommand: pulumi.Output<string>;
  /** user -> a `docker login` line for that user. */
  readonly dockerLoginCommands: pulumi.Output<Record<string, string>>;
  readonly clientHosts: pulumi.Output<string[]>;
  /** The registry's and the proxy's container names (for `npm run gc`); proxy is "" when the registry terminates TLS. */
  readonly containers: pulumi.Output<{ registry: string; proxy: string }>;

  /** `facts`: what the pre-flight check learned of the Docker host (lib/preflight.ts). */
  constructor(name: string, settings: Settings, opts?: pulumi.ComponentResourceOptions, facts: HostFacts = {}) {
    super("private-registry:index:PrivateRegistry", name, {}, opts);
    const parent = { parent: this };
    const keySpec = { keyAlgorithm: settings.keyAlgorithm, rsaBits: settings.rsaBits };
    const labels = [{ label: STACK_LABEL, value: `${pulumi.getProject()}/${pulumi.getStack()}` }];

    // One CA per generation in use. Generation 1 keeps the name the stack's first CA always
    // had, so existing stacks see no change; later ones are named for their generation.
    const trusted = [settings.caGeneration, ...settings.caAlsoTrust];
    const cas = new Map(trusted.map((generation) => [generation, new CertificateAuthority(
      generation === 1 ? `${name}-ca` : `${name}-ca-g${generation}`, {
        ...keySpec,
        commonName: generation === 1 ? settings.caCommonName : `${settings.caCommonName} (generation ${generation})`,
        organization: settings.organization,
        validityDays: settings.caValidityDays,
      }, parent)]));
    const ca = cas.get(settings.caGeneration) as CertificateAuthority;
    // What clients trust: every CA in use, the signing one first (Docker reads them all from ca.crt).
    const trustedCaPem = pulumi.all(trusted.map((g) => (cas.get(g) as CertificateAuthority).certPem))
      .apply((pems) => (pems.length === 1 ? pems[0] : pems.map(withNewline).join("")));

    const serverCert = new ServerCertificate(`${name}-server`, {
      keyAlgorithm: settings.serverKeyAlgorithm,
      rsaBits: settings.rsaBits,
      caCertPem: ca.certPem,
      caPrivateKeyPem: ca.privateKeyPem,
      ipAddresses: settings.ipAddresses,
      dnsNames: settings.dnsNames,
      organization: settings.organization,
      validityHours: settings.serverCertValidityHours,
      earlyRenewalHours: settings.serverCertEarlyRenewalHours,
    }, parent);

    const users = new RegistryCredentials(`${name}-users`, {
      users: settings.users,
      passwordLength: settings.passwordLength,
      bcryptCost: settings.bcryptCost,
    }, parent);

    // Another engine than the local one: an explicit provider for every Docker resource
    // (children inherit it from the component's options). None otherwise, so that a
    // stack without dockerHost keeps the default provider and its resources their URNs.
    const engine = settings.dockerEngine;
    const dockerProvider = engine && new docker.Provider(`${name}-docker`, {
      host: engine.host,
      ...(engine.tls ? { caMaterial: engine.tls.caCert, certMaterial: engine.tls.cert, keyMaterial: engine.tls.key } : {}),
      // ssh://: never wait at a password or host-key prompt.
      ...(engine.host.startsWith("ssh://") ? { sshOpts: ["-o", "BatchMode=yes", "-o", "ConnectTimeout=10"] } : {}),
    }, { parent: this });
    const onEngine = dockerProvider ? { providers: [dockerProvider] } : {};

    const direct = settings.tlsTermination === "registry";
    const registry = new Registry(`${name}-registry`, {
      namePrefix: settings.namePrefix,
      image: settings.registryImage,
      pullImages: settings.pullImages,
      keepDataOnDestroy: settings.keepDataOnDestroy,
      adoptExistingVolume: settings.adoptExistingVolume,
      deleteEnabled: settings.deleteEnabled,
      publish: { listenAddress: settings.listenAddress, port: settings.port },
      tls: direct ? { certificateChainPem: serverCert.chainPem, privateKeyPem: serverCert.privateKeyPem, htpasswd: users.htpasswd } : undefined,
      labels,
    }, { ...parent, ...onEngine });

    // Mutual TLS: one certificate per client host, from the signing CA.
    const clientIds = [
      ...settings.clients.map((c) => `${c.user}@${c.host}:${c.port}`),
      ...(settings.localClient ? ["local"] : []),
    ];
    const clientCerts = new Map(!settings.clientCertificates ? [] : clientIds.map((clientId) => [clientId, new ClientCertificate(
      clientId === "local" ? `${name}-client-local` : `${name}-client-${clientId.replace(/^.*@/, "").replace(/:(\d+)$/, "-$1")}`, {
        clientId,
        organization: settings.organization,
        caCertPem: ca.certPem,
        caPrivateKeyPem: ca.privateKeyPem,
        validityHours: settings.serverCertValidityHours,
        earlyRenewalHours: settings.serverCertEarlyRenewalHours,
      }, parent)]));
    const nginxConfInput = {
      serverNames: [...settings.dnsNames, ...settings.ipAddresses],
      upstream: `unix:${REGISTRY_SOCKET}`,
      listenPort: PROXY_CONTAINER_PORT,
      certificatePath: PROXY_PATHS.certificateChain,
      privateKeyPath: PROXY_PATHS.privateKey,
      usersDirectory: PROXY_PATHS.usersDirectory,
    };
    const nginxConf: pulumi.Input<string> = !settings.clientCertificates
      ? renderNginxConf(nginxConfInput)
      : pulumi.all([...clientCerts.values()].map((c) => c.fingerprint)).apply((allowedFingerprints) =>
        renderNginxConf({ ...nginxConfInput, clientCertificates: { caPath: PROXY_PATHS.clientCa, allowedFingerprints } }));

    const proxy = direct ? undefined : new TlsProxy(`${name}-proxy`, {
      namePrefix: settings.namePrefix,
      image: settings.nginxImage,
      pullImages: settings.pullImages,
      networkName: registry.networkName,
      publish: { listenAddress: settings.listenAddress, port: settings.port },
      registrySocket: { volumeName: registry.socketVolumeName as pulumi.Output<string>, directory: REGISTRY_SOCKET_DIR },
      nginxConf,
      certificateChainPem: serverCert.chainPem,
      privateKeyPem: serverCert.privateKeyPem,
      htpasswd: users.htpasswd,
      pushUsers: settings.users.filter((user) => !settings.pullOnlyUsers.includes(user)),
      rerunOf: facts.usersWriterRerunOf,
      // Client certificates from the CAs clients trust (a rotation keeps both valid).
      clientCaPem: settings.clientCertificates ? trustedCaPem : undefined,
      labels,
    }, { parent: this, dependsOn: [registry], ...onEngine });

    const endpoints = registryEndpoints(settings.ipAddresses, settings.dnsNames, settings.port);
    // What clients dial, once it answers (healthy): the proxy, or the registry itself.
    const servingContainer = proxy ? proxy.containerName : registry.containerName;
    this.endpoints = servingContainer.apply(() => endpoints);
    const osTrustHosts = [
      ...settings.clients.filter((c) => c.trustOs).map((c) => c.host),
      ...(settings.localClient && settings.localClientTrustOs ? ["this machine"] : []),
    ];
    if (osTrustHosts.length > 0) {
      // The tls provider cannot give the CA name constraints or a path length, so say what trustOs means.
      pulumi.log.warn(`trustOs: every program on ${osTrustHosts.join(", ")} will trust any certificate this stack's CA signs, ` +
        "for any name (the CA carries no name constraints: Pulumi's tls provider cannot add them). " +
        "Guard the stack's state and passphrase like that trust store, or set trustOs to false (Docker needs only certs.d).", this);
    }
    const trust = new ClientTrust(`${name}-trust`, {
      caCertPem: trustedCaPem,
      endpoints,
      clients: settings.clients,
      local: settings.localClient ? { sudo: settings.localClientSudo, trustOs: settings.localClientTrustOs } : undefined,
      anchorName: settings.namePrefix,
      verify: settings.verifyFromClients,
      clientCertificates: settings.clientCertificates ? clientCerts : undefined,
      serving: proxy ?? registry,
    }, parent);

    this.caCertPem = trustedCaPem;
    this.serverCertExpiresAt = serverCert.expiresAt;
    this.credentials = users.passwords;
    const stack = pulumi.getStack();
    this.dockerLoginCommands = this.endpoints.apply((e) =>
      Object.fromEntries(settings.users.map((user) => [user, dockerLoginCommand(stack, e[0], user)])));
    this.dockerLoginCommand = this.dockerLoginCommands.apply((lines) => lines[settings.users[0]]);
    this.clientHosts = trust.hosts;
    this.containers = pulumi.all([registry.containerName, proxy ? proxy.containerName : ""]).apply(([r, p]) => ({ registry: r, proxy: p }));
    this.registerOutputs({
      endpoints: this.endpoints,
      caCertPem: this.caCertPem,
      serverCertExpiresAt: this.serverCertExpiresAt,
      credentials: this.credentials,
      dockerLoginCommand: this.dockerLoginCommand,
      dockerLoginCommands: this.dockerLoginCommands,
      clientHosts: this.clientHosts,
      containers: this.containers,
    });
  }
}

/**
 * A login, run in the project folder, that keeps the password off the command line
 * and out of shell history: `npm run pulumi` reaches the stack's backend with its passphrase.
 */
export function dockerLoginCommand(stack: string, endpoint: string, user: string): string {
  return `npm run --silent pulumi -- stack output --stack ${stack} --show-secrets --json credentials | node -e 'process.stdout.write(JSON.parse(require("fs").readFileSync(0, "utf8"))[process.argv[1]])' ${user} | docker login ${endpoint} --username ${user} --password-stdin`;
}
