import * as pulumi from "@pulumi/pulumi";
import * as docker from "@pulumi/docker";
import { ClientHostSettings, DockerEngineSettings, KeyAlgorithm } from "../lib/settings";
import { registryEndpoints } from "../lib/endpoints";
import { NginxConfInput, NginxMirror, renderNginxConf } from "../lib/nginxConf";
import { ProjectRight, rightsFiles } from "../lib/usersDirectory";
import { uiFiles } from "../lib/uiFiles";
import { caCommonName, caResourceName, clientCertificateResourceName, clientIds, trustedCaGenerations } from "../lib/registryNames";
import { osTrustHosts, osTrustWarning, trustBundle } from "../lib/trustBundle";
import { dockerLoginCommands } from "../lib/loginCommands";
import { CertificateAuthority } from "./certificateAuthority";
import { ServerCertificate } from "./serverCertificate";
import { RegistryCredentials } from "./registryCredentials";
import { Registry, REGISTRY_METRICS_FILE, REGISTRY_SOCKET, REGISTRY_SOCKET_DIR } from "./registry";
import { TlsProxy, PROXY_CONTAINER_PORT, PROXY_PATHS } from "./tlsProxy";
import { ClientTrust, LocalClientArgs } from "./clientTrust";
import { ClientMirrors } from "./clientMirrors";
import { PullThroughMirror } from "./pullThroughMirror";
import { mirrorLayout, mirrorSlug, mirrorSocketName } from "../lib/mirrors";
import { ClientCertificate } from "./clientCertificate";
import { STACK_LABEL, HostFacts } from "../lib/preflight";
import { SwarmRegistry, SwarmStorageArgs } from "./swarmRegistry";
import { SwarmTlsProxy } from "./swarmTlsProxy";
import { SwarmEdge } from "./swarmEdge";
import {
  DOCKER_DNS,
  SWARM_EDGE_PORT,
  SWARM_PROXY_PORT,
  SWARM_PROXY_SECRETS,
  SWARM_REGISTRY_PORT,
  renderEdgeConf,
  swarmNames,
  tasksName,
} from "../lib/swarm";

/**
 * What PrivateRegistry needs, grouped by what it makes. Every field is required
 * unless marked optional: the component has no defaults of its own (the stack
 * settings' defaults live in lib/settingsSchema.ts, and lib/registryArgs.ts maps
 * validated settings to these args). Nothing here is validated again: a program
 * that builds args by hand vouches for them as parseSettings would
 * (docs/own-program.md says what each must be).
 */
export interface PrivateRegistryArgs {
  /** Where clients reach the registry. */
  address: {
    /** Every IP address clients dial: each an IP SAN of the server certificate and an endpoint. */
    ipAddresses: string[];
    /** Every DNS name clients dial: each a DNS SAN and an endpoint. The first is the certificate's common name. */
    dnsNames: string[];
    /** The host port published (by nginx, or by the registry without a proxy). 443 gives endpoints without a port. */
    port: number;
    /** The host address the port is published on ("0.0.0.0": every one). */
    listenAddress: string;
  };
  /** The stack's own root CA, and the generations of a rotation. */
  certificateAuthority: {
    keyAlgorithm: KeyAlgorithm;
    /** RSA key size (ignored for ECDSA). */
    rsaBits: number;
    /** Generation 1's common name; later generations get " (generation N)" appended. */
    commonName: string;
    /** The organization of the CA and of every certificate it signs. */
    organization: string;
    validityDays: number;
    /** The generation that signs the server (and client) certificates; 1 is the stack's first CA. */
    generation: number;
    /** Further generations clients trust too (the first and last steps of a rotation); [] otherwise. */
    alsoTrust: number[];
  };
  /** The registry host's certificate, signed by the signing CA, naming every address. */
  serverCertificate: {
    keyAlgorithm: KeyAlgorithm;
    rsaBits: number;
    validityHours: number;
    /** A `pulumi up` this close to the expiry issues a new certificate. */
    earlyRenewalHours: number;
  };
  /** Basic-auth users: a generated password each, and the bcrypt htpasswd. */
  users: {
    /** User names; the first one's login is `dockerLoginCommand`. At least one. */
    names: string[];
    passwordLength: number;
    /** bcrypt cost of the htpasswd entries (4-14): the server pays it on every request. */
    bcryptCost: number;
  };
  /** The distribution registry and its data volume. */
  registry: {
    /** An image reference (registry:3.1.1, registry:2.8.3, ...). */
    image: string;
    /** Allow deleting manifests by digest (storage.delete.enabled). */
    deleteEnabled: boolean;
    /** Keep the data volume (the images) when the stack is destroyed. */
    keepDataOnDestroy: boolean;
    /** The data volume may exist already, made by someone else: use it, never delete it. */
    adoptExistingVolume: boolean;
  };
  /**
   * nginx in front, terminating TLS and checking passwords, with the registry on a
   * unix socket and no network (the "proxy" layout). Omitted: the registry terminates
   * TLS and checks passwords itself (the "registry" layout, docs/layouts.md). What
   * only nginx can enforce lives here, so that it cannot be asked of the other layout.
   */
  proxy?: {
    /** An nginx image reference. */
    image: string;
    /** Users (from users.names) who may pull but not push or delete; [] otherwise. */
    pullOnlyUsers: string[];
    /**
     * Rights per project (the first component of a repository name, or "*" for every one)
     * of the users listed (from users.names): exactly those. Omitted or {}: the users not
     * listed may pull from and (unless pull-only) push to every project.
     */
    rights?: Record<string, Record<string, ProjectRight>>;
    /**
     * Mutual TLS: each client (below) gets its own certificate from the signing CA,
     * and nginx lets in only those. Omitted: no client certificates.
     */
    clientCertificates?: { validityHours: number; earlyRenewalHours: number };
    /** The registry browser under /ui/ (docs/ui.md), for the same users. Omitted or false: none. */
    ui?: boolean;
    /** Prometheus metrics at /metrics/registry and /metrics/nginx, behind basic auth. Omitted or false: none. */
    metrics?: boolean;
    /**
     * Pull-through mirrors: one registry in proxy mode per upstream, each with a cache
     * volume of its own, behind nginx on a port of its own; [] for none.
     */
    mirrors?: MirrorArgs[];
  };
  /**
   * The swarm layout (docs/swarm.md): the registry and nginx as replicated services of the
   * swarm whose manager `docker` names, the images in an S3-compatible bucket, an edge on
   * every node publishing address.port. Needs `proxy` (without mirrors, metrics or client
   * certificates); registry.keepDataOnDestroy and adoptExistingVolume have no effect (the
   * bucket is never emptied). Omitted: containers on one engine.
   */
  swarm?: {
    /** Registry replicas. */
    replicas: number;
    /** TLS proxy (nginx) replicas. */
    proxyReplicas: number;
    storage: SwarmStorageArgs;
  };
  /** The Docker clients that get the CA installed (and removed on destroy). */
  clients: {
    /** Hosts reached over SSH. */
    hosts: ClientHostSettings[];
    /** The machine running `pulumi up`, when it is a Docker client too. */
    local?: LocalClientArgs;
    /** Each client checks, in the same `up`, that the registry answers it over verified TLS. */
    verify: boolean;
  };
  /** The Docker engine that runs the registry, and the names of what it makes there. */
  docker: {
    /** Prefix of every Docker object's name (network, volumes, containers) and of the OS trust-store file. */
    namePrefix: string;
    /** Pull the images (RemoteImage); false: they must exist on the engine already (air-gapped). */
    pullImages: boolean;
    /** Another engine than the local one (an explicit provider); omitted: the default provider. */
    engine?: DockerEngineSettings;
    /** What the pre-flight check learned of the engine (lib/preflight.ts); {} or omitted without one. */
    facts?: HostFacts;
  };
}

/** One pull-through mirror (docs/mirror.md). */
export interface MirrorArgs {
  /** What clients call the upstream in image names: `docker.io`, `host[:port]`. */
  name: string;
  /** `https://host[:port]` the mirror fetches from. */
  upstream: string;
  /** The host port nginx publishes for it, on address.listenAddress. */
  port: number;
  /** Credentials for the upstream; the password a secret. */
  credentials?: { username: string; password: pulumi.Input<string> };
  /** PEM CA(s) for the upstream's certificate, besides the public roots. */
  upstreamCaPem?: string;
  /** Pulls need no login (Docker daemons never send a password to a mirror). */
  anonymousPull: boolean;
}

/**
 * The whole product: CA, server certificate, users, registry, TLS proxy and client trust.
 * `new PrivateRegistry(name, args, opts)`: see PrivateRegistryArgs and docs/own-program.md.
 * Without `args.proxy` (tlsTermination "registry") the registry gets the certificate
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
  /** What clients trust: the signing CA's certificate (PEM), then those of `alsoTrust`. */
  readonly caCertPem: pulumi.Output<string>;
  /** RFC 3339 time after which the server certificate is no longer valid. */
  readonly serverCertExpiresAt: pulumi.Output<string>;
  /** user -> password; secret. */
  readonly credentials: pulumi.Output<Record<string, string>>;
  /** The login for the first user. */
  readonly dockerLoginCommand: pulumi.Output<string>;
  /** user -> a `docker login` line for that user. */
  readonly dockerLoginCommands: pulumi.Output<Record<string, string>>;
  /** `user@host:port` of every client host set up, and `local`; known once every install succeeded. */
  readonly clientHosts: pulumi.Output<string[]>;
  /** The registry's and the proxy's container names (for `npm run gc`); proxy is "" when the registry terminates TLS. */
  readonly containers: pulumi.Output<{ registry: string; proxy: string }>;
  /** Each mirror's endpoints, by the upstream's name; {} without mirrors. Known once nginx serves them. */
  readonly mirrors: pulumi.Output<Record<string, string[]>>;

  constructor(name: string, args: PrivateRegistryArgs, opts?: pulumi.ComponentResourceOptions) {
    super("private-registry:index:PrivateRegistry", name, {}, opts);
    const parent = { parent: this };
    const { address, certificateAuthority: caArgs, proxy: proxyArgs, clients } = args;
    const clientCertificates = proxyArgs?.clientCertificates;
    const labels = [{ label: STACK_LABEL, value: `${pulumi.getProject()}/${pulumi.getStack()}` }];

    // One CA per generation in use (lib/registryNames.ts names them).
    const trusted = trustedCaGenerations(caArgs.generation, caArgs.alsoTrust);
    const cas = new Map(
      trusted.map((generation) => [
        generation,
        new CertificateAuthority(
          caResourceName(name, generation),
          {
            keyAlgorithm: caArgs.keyAlgorithm,
            rsaBits: caArgs.rsaBits,
            commonName: caCommonName(caArgs.commonName, generation),
            organization: caArgs.organization,
            validityDays: caArgs.validityDays,
          },
          parent,
        ),
      ]),
    );
    const ca = cas.get(caArgs.generation) as CertificateAuthority;
    // What clients trust: every CA in use, the signing one first.
    const trustedCaPem = pulumi.all(trusted.map((g) => (cas.get(g) as CertificateAuthority).certPem)).apply(trustBundle);

    const serverCert = new ServerCertificate(
      `${name}-server`,
      {
        keyAlgorithm: args.serverCertificate.keyAlgorithm,
        rsaBits: args.serverCertificate.rsaBits,
        caCertPem: ca.certPem,
        caPrivateKeyPem: ca.privateKeyPem,
        ipAddresses: address.ipAddresses,
        dnsNames: address.dnsNames,
        organization: caArgs.organization,
        validityHours: args.serverCertificate.validityHours,
        earlyRenewalHours: args.serverCertificate.earlyRenewalHours,
      },
      parent,
    );

    const users = new RegistryCredentials(
      `${name}-users`,
      {
        users: args.users.names,
        passwordLength: args.users.passwordLength,
        bcryptCost: args.users.bcryptCost,
      },
      parent,
    );

    // Another engine than the local one: an explicit provider for every Docker resource
    // (children inherit it from the component's options). None otherwise, so that a
    // stack without dockerHost keeps the default provider and its resources their URNs.
    const engine = args.docker.engine;
    const dockerProvider =
      engine &&
      new docker.Provider(
        `${name}-docker`,
        {
          host: engine.host,
          ...(engine.tls ? { caMaterial: engine.tls.caCert, certMaterial: engine.tls.cert, keyMaterial: engine.tls.key } : {}),
          // ssh://: never wait at a password or host-key prompt.
          ...(engine.host.startsWith("ssh://") ? { sshOpts: ["-o", "BatchMode=yes", "-o", "ConnectTimeout=10"] } : {}),
        },
        { parent: this },
      );
    const onEngine = dockerProvider ? { providers: [dockerProvider] } : {};

    const publish = { listenAddress: address.listenAddress, port: address.port };
    const swarm = args.swarm;
    const registry = swarm
      ? undefined
      : new Registry(
          `${name}-registry`,
          {
            namePrefix: args.docker.namePrefix,
            image: args.registry.image,
            pullImages: args.docker.pullImages,
            keepDataOnDestroy: args.registry.keepDataOnDestroy,
            adoptExistingVolume: args.registry.adoptExistingVolume,
            deleteEnabled: args.registry.deleteEnabled,
            metrics: proxyArgs?.metrics === true,
            publish,
            tls: proxyArgs
              ? undefined
              : { certificateChainPem: serverCert.chainPem, privateKeyPem: serverCert.privateKeyPem, htpasswd: users.htpasswd },
            labels,
          },
          { ...parent, ...onEngine },
        );

    // Mutual TLS: one certificate per client host, from the signing CA.
    const clientCerts = new Map(
      !clientCertificates
        ? []
        : clientIds(clients.hosts, clients.local !== undefined).map((clientId) => [
            clientId,
            new ClientCertificate(
              clientCertificateResourceName(name, clientId),
              {
                clientId,
                organization: caArgs.organization,
                caCertPem: ca.certPem,
                caPrivateKeyPem: ca.privateKeyPem,
                validityHours: clientCertificates.validityHours,
                earlyRenewalHours: clientCertificates.earlyRenewalHours,
              },
              parent,
            ),
          ]),
    );

    // Pull-through mirrors: a registry in proxy mode each, its socket beside the registry's.
    const mirrorArgs = swarm ? [] : (proxyArgs?.mirrors ?? []);
    const layout = mirrorLayout(mirrorArgs, clientCertificates !== undefined, address.ipAddresses, address.dnsNames);
    const mirrors = mirrorArgs.map(
      (m) =>
        new PullThroughMirror(
          `${name}-mirror-${mirrorSlug(m.name)}`,
          {
            namePrefix: args.docker.namePrefix,
            name: m.name,
            upstream: m.upstream,
            ...(m.credentials ? { credentials: m.credentials } : {}),
            ...(m.upstreamCaPem ? { upstreamCaPem: m.upstreamCaPem } : {}),
            image: args.registry.image,
            pullImages: args.docker.pullImages,
            networkName: (registry as Registry).networkName,
            socketVolume: {
              name: (registry as Registry).socketVolumeName as pulumi.Output<string>,
              directory: REGISTRY_SOCKET_DIR,
              socketName: mirrorSocketName(m.name),
            },
            labels,
          },
          { ...parent, ...onEngine },
        ),
    );
    const nginxMirrors = layout.mirrors.map((m) => ({
      name: m.name,
      listenPort: m.containerPort,
      upstream: `unix:${REGISTRY_SOCKET_DIR}/${mirrorSocketName(m.name)}`,
      access: m.access,
    }));

    const proxy =
      registry &&
      proxyArgs &&
      new TlsProxy(
        `${name}-proxy`,
        {
          namePrefix: args.docker.namePrefix,
          image: proxyArgs.image,
          pullImages: args.docker.pullImages,
          networkName: registry.networkName,
          publish,
          registrySocket: { volumeName: registry.socketVolumeName as pulumi.Output<string>, directory: REGISTRY_SOCKET_DIR },
          mirrorPorts: layout.mirrors.map((m) => ({ internal: m.containerPort, external: m.port })),
          nginxConf: nginxConf(address, clientCertificates ? [...clientCerts.values()] : undefined, nginxMirrors, {
            ui: proxyArgs.ui
              ? {
                  directory: PROXY_PATHS.ui,
                  deleteEnabled: args.registry.deleteEnabled,
                  endpoints: registryEndpoints(address.ipAddresses, address.dnsNames, address.port),
                }
              : undefined,
            metrics: proxyArgs.metrics ? { registryFile: REGISTRY_METRICS_FILE } : undefined,
          }),
          certificateChainPem: serverCert.chainPem,
          privateKeyPem: serverCert.privateKeyPem,
          htpasswd: users.htpasswd,
          pushUsers: args.users.names.filter((user) => !proxyArgs.pullOnlyUsers.includes(user)),
          rightsFiles: rightsFiles(args.users.names, proxyArgs.pullOnlyUsers, proxyArgs.rights ?? {}),
          rerunOf: args.docker.facts?.usersWriterRerunOf,
          // Client certificates from the CAs clients trust (a rotation keeps both valid).
          clientCaPem: clientCertificates ? trustedCaPem : undefined,
          uiFiles: proxyArgs.ui ? uiFiles() : undefined,
          labels,
        },
        { parent: this, dependsOn: [registry, ...mirrors], ...onEngine },
      );

    // The swarm layout: registry replicas, TLS proxy replicas, an edge on every node.
    const swarmServices = swarm && proxyArgs && this.swarmServices(name, args, swarm, proxyArgs, serverCert, users, labels, onEngine);

    const endpoints = registryEndpoints(address.ipAddresses, address.dnsNames, address.port);
    // What clients dial, once it answers (healthy): the proxy, or the registry itself, or
    // (swarm) the edge once every service converged.
    const servingContainer = proxy
      ? proxy.containerName
      : registry
        ? registry.containerName
        : (swarmServices as SwarmServices).edge.serviceName;
    this.endpoints = servingContainer.apply(() => endpoints);
    const warning = osTrustWarning(osTrustHosts(clients.hosts, clients.local));
    if (warning) pulumi.log.warn(warning, this);
    const trust = new ClientTrust(
      `${name}-trust`,
      {
        caCertPem: trustedCaPem,
        endpoints: [...endpoints, ...layout.passwordEndpoints],
        openEndpoints: layout.openEndpoints,
        clients: clients.hosts,
        local: clients.local,
        anchorName: args.docker.namePrefix,
        verify: clients.verify,
        clientCertificates: clientCertificates ? clientCerts : undefined,
        serving: proxy || registry || (swarmServices as SwarmServices).edge,
      },
      parent,
    );

    // Every client host's runtimes pointed at the mirrors, once its CA is in place and nginx serves them.
    if (layout.mirrors.length > 0) {
      if (layout.dockerNote) pulumi.log.warn(`Docker daemons are ${layout.dockerNote}`, this);
      new ClientMirrors(
        `${name}-client-mirrors`,
        {
          mirrors: layout.mirrors.map((m) => ({ name: m.name, endpoints: m.endpoints })),
          dockerMirrorEndpoints: layout.dockerMirrorEndpoints,
          ...(layout.dockerNote ? { dockerNote: layout.dockerNote } : {}),
          clients: clients.hosts,
          local: clients.local,
          anchorName: args.docker.namePrefix,
          withClientCertificate: new Set(clientCerts.keys()),
          after: trust,
          serving: proxy ? [proxy] : [],
        },
        parent,
      );
    }

    this.caCertPem = trustedCaPem;
    this.serverCertExpiresAt = serverCert.expiresAt;
    this.credentials = users.passwords;
    const stack = pulumi.getStack();
    const userNames = args.users.names;
    this.dockerLoginCommands = this.endpoints.apply((e) => dockerLoginCommands(stack, e[0], userNames));
    this.dockerLoginCommand = this.dockerLoginCommands.apply((lines) => lines[userNames[0]]);
    this.clientHosts = trust.hosts;
    // The swarm layout's services stand where the containers are.
    this.containers = swarmServices
      ? pulumi.all([swarmServices.registry.serviceName, swarmServices.proxy.serviceName]).apply(([r, p]) => ({ registry: r, proxy: p }))
      : pulumi.all([(registry as Registry).containerName, proxy ? proxy.containerName : ""]).apply(([r, p]) => ({ registry: r, proxy: p }));
    this.mirrors = servingContainer.apply(() => Object.fromEntries(layout.mirrors.map((m) => [m.name, m.endpoints])));
    this.registerOutputs({
      mirrors: this.mirrors,
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

  /** The swarm layout's three services (docs/swarm.md), the edge last: it serves once the others run. */
  private swarmServices(
    name: string,
    args: PrivateRegistryArgs,
    swarm: NonNullable<PrivateRegistryArgs["swarm"]>,
    proxyArgs: NonNullable<PrivateRegistryArgs["proxy"]>,
    serverCert: ServerCertificate,
    users: RegistryCredentials,
    labels: { label: string; value: string }[],
    onEngine: pulumi.ComponentResourceOptions,
  ): SwarmServices {
    const { address } = args;
    const names = swarmNames(args.docker.namePrefix);
    const registry = new SwarmRegistry(
      `${name}-swarm-registry`,
      {
        namePrefix: args.docker.namePrefix,
        image: args.registry.image,
        replicas: swarm.replicas,
        deleteEnabled: args.registry.deleteEnabled,
        storage: swarm.storage,
        labels,
      },
      { parent: this, ...onEngine },
    );
    const input: NginxConfInput = {
      serverNames: [...address.dnsNames, ...address.ipAddresses],
      upstream: `${tasksName(names.registryService)}:${SWARM_REGISTRY_PORT}`,
      listenPort: SWARM_PROXY_PORT,
      certificatePath: PROXY_PATHS.certificateChain,
      privateKeyPath: `/run/secrets/${SWARM_PROXY_SECRETS.privateKey}`,
      usersDirectory: PROXY_PATHS.usersDirectory,
      ...(proxyArgs.ui
        ? {
            ui: {
              directory: PROXY_PATHS.ui,
              deleteEnabled: args.registry.deleteEnabled,
              endpoints: registryEndpoints(address.ipAddresses, address.dnsNames, address.port),
            },
          }
        : {}),
    };
    const nginxConf = registry.subnets.apply((subnets) =>
      renderNginxConf({
        ...input,
        // Only the edge connects from the stack's overlay network (not attachable); unknown: any.
        swarm: { resolver: DOCKER_DNS, proxyProtocolFrom: subnets.length > 0 ? subnets : ["0.0.0.0/0"] },
      }),
    );
    const proxy = new SwarmTlsProxy(
      `${name}-swarm-proxy`,
      {
        namePrefix: args.docker.namePrefix,
        image: proxyArgs.image,
        replicas: swarm.proxyReplicas,
        networkName: registry.networkName,
        nginxConf,
        certificateChainPem: serverCert.chainPem,
        privateKeyPem: serverCert.privateKeyPem,
        htpasswd: users.htpasswd,
        pushUsers: args.users.names.filter((user) => !proxyArgs.pullOnlyUsers.includes(user)),
        rightsFiles: rightsFiles(args.users.names, proxyArgs.pullOnlyUsers, proxyArgs.rights ?? {}),
        uiFiles: proxyArgs.ui ? uiFiles() : undefined,
        labels,
      },
      { parent: this, dependsOn: [registry], ...onEngine },
    );
    const edge = new SwarmEdge(
      `${name}-swarm-edge`,
      {
        namePrefix: args.docker.namePrefix,
        image: proxyArgs.image,
        networkName: registry.networkName,
        edgeConf: renderEdgeConf({
          listenPort: SWARM_EDGE_PORT,
          upstream: `${tasksName(names.proxyService)}:${SWARM_PROXY_PORT}`,
          resolver: DOCKER_DNS,
        }),
        port: address.port,
        nodes: args.docker.facts?.swarmNodes ?? 1,
        labels,
      },
      { parent: this, dependsOn: [proxy], ...onEngine },
    );
    return { registry, proxy, edge };
  }
}

interface SwarmServices {
  registry: SwarmRegistry;
  proxy: SwarmTlsProxy;
  edge: SwarmEdge;
}

/**
 * nginx's config: every address as a server name, the registry's socket upstream and,
 * with client certificates, the CA and the certificates' fingerprints it lets in.
 */
function nginxConf(
  address: PrivateRegistryArgs["address"],
  clientCertificates: ClientCertificate[] | undefined,
  mirrors: NginxMirror[],
  pages: Pick<NginxConfInput, "ui" | "metrics">,
): pulumi.Input<string> {
  const input: NginxConfInput = {
    ...(mirrors.length > 0 ? { mirrors } : {}),
    ...pages,
    serverNames: [...address.dnsNames, ...address.ipAddresses],
    upstream: `unix:${REGISTRY_SOCKET}`,
    listenPort: PROXY_CONTAINER_PORT,
    certificatePath: PROXY_PATHS.certificateChain,
    privateKeyPath: PROXY_PATHS.privateKey,
    usersDirectory: PROXY_PATHS.usersDirectory,
  };
  return !clientCertificates
    ? renderNginxConf(input)
    : pulumi
        .all(clientCertificates.map((c) => c.fingerprint))
        .apply((allowedFingerprints) =>
          renderNginxConf({ ...input, clientCertificates: { caPath: PROXY_PATHS.clientCa, allowedFingerprints } }),
        );
}
