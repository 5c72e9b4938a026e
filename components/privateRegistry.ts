import * as pulumi from "@pulumi/pulumi";
import { Settings } from "../lib/settings";
import { registryEndpoints } from "../lib/endpoints";
import { renderNginxConf } from "../lib/nginxConf";
import { CertificateAuthority } from "./certificateAuthority";
import { ServerCertificate } from "./serverCertificate";
import { RegistryCredentials } from "./registryCredentials";
import { Registry, REGISTRY_HOST, REGISTRY_PORT } from "./registry";
import { TlsProxy, PROXY_CONTAINER_PORT, PROXY_PATHS } from "./tlsProxy";
import { ClientTrust } from "./clientTrust";
import { STACK_LABEL } from "../lib/preflight";

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

  constructor(name: string, settings: Settings, opts?: pulumi.ComponentResourceOptions) {
    super("private-registry:index:PrivateRegistry", name, {}, opts);
    const parent = { parent: this };
    const keySpec = { keyAlgorithm: settings.keyAlgorithm, rsaBits: settings.rsaBits };
    const labels = [{ label: STACK_LABEL, value: `${pulumi.getProject()}/${pulumi.getStack()}` }];

    const ca = new CertificateAuthority(`${name}-ca`, {
      ...keySpec,
      commonName: settings.caCommonName,
      organization: settings.organization,
      validityDays: settings.caValidityDays,
    }, parent);

    const serverCert = new ServerCertificate(`${name}-server`, {
      ...keySpec,
      caCertPem: ca.certPem,
      caPrivateKeyPem: ca.privateKeyPem,
      ipAddresses: settings.ipAddresses,
      dnsNames: settings.dnsNames,
      organization: settings.organization,
      validityDays: settings.serverCertValidityDays,
      earlyRenewalDays: settings.serverCertEarlyRenewalDays,
    }, parent);

    const users = new RegistryCredentials(`${name}-users`, {
      users: settings.users,
      passwordLength: settings.passwordLength,
      bcryptCost: settings.bcryptCost,
    }, parent);

    const direct = settings.tlsTermination === "registry";
    const registry = new Registry(`${name}-registry`, {
      namePrefix: settings.namePrefix,
      image: settings.registryImage,
      pullImages: settings.pullImages,
      keepDataOnDestroy: settings.keepDataOnDestroy,
      adoptExistingVolume: settings.adoptExistingVolume,
      deleteEnabled: settings.deleteEnabled,
      publish: { listenAddress: settings.listenAddress, port: settings.port, containerPort: direct ? REGISTRY_PORT : PROXY_CONTAINER_PORT },
      tls: direct ? { certificateChainPem: serverCert.chainPem, privateKeyPem: serverCert.privateKeyPem, htpasswd: users.htpasswd } : undefined,
      labels,
    }, parent);

    const proxy = direct ? undefined : new TlsProxy(`${name}-proxy`, {
      namePrefix: settings.namePrefix,
      image: settings.nginxImage,
      pullImages: settings.pullImages,
      registryContainerId: registry.containerId,
      registryPort: REGISTRY_PORT,
      nginxConf: renderNginxConf({
        serverNames: [...settings.dnsNames, ...settings.ipAddresses],
        upstreamHost: REGISTRY_HOST,
        upstreamPort: REGISTRY_PORT,
        listenPort: PROXY_CONTAINER_PORT,
        certificatePath: PROXY_PATHS.certificateChain,
        privateKeyPath: PROXY_PATHS.privateKey,
        htpasswdPath: PROXY_PATHS.htpasswd,
        pullOnlyUsers: settings.pullOnlyUsers,
      }),
      certificateChainPem: serverCert.chainPem,
      privateKeyPem: serverCert.privateKeyPem,
      htpasswd: users.htpasswd,
      labels,
    }, { parent: this, dependsOn: [registry] });

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
      caCertPem: ca.certPem,
      endpoints,
      clients: settings.clients,
      local: settings.localClient ? { sudo: settings.localClientSudo, trustOs: settings.localClientTrustOs } : undefined,
      anchorName: settings.namePrefix,
    }, parent);

    this.caCertPem = ca.certPem;
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
