// Stack settings -> PrivateRegistry's args: the one place where the config file's flat
// shape meets the component's contract. Pure (no Pulumi calls), tested directly
// (tests/registryArgs.test.ts).
import type { PrivateRegistryArgs } from "../components/privateRegistry";
import type { HostFacts } from "./preflight";
import { Settings } from "./settings";

/** The args for validated settings (parseSettings) and what the pre-flight check learned of the Docker host. */
export function argsFromSettings(settings: Settings, facts: HostFacts = {}): PrivateRegistryArgs {
  return {
    address: {
      ipAddresses: settings.ipAddresses,
      dnsNames: settings.dnsNames,
      port: settings.port,
      listenAddress: settings.listenAddress,
    },
    certificateAuthority: {
      keyAlgorithm: settings.keyAlgorithm,
      rsaBits: settings.rsaBits,
      commonName: settings.caCommonName,
      organization: settings.organization,
      validityDays: settings.caValidityDays,
      generation: settings.caGeneration,
      alsoTrust: settings.caAlsoTrust,
    },
    serverCertificate: {
      keyAlgorithm: settings.serverKeyAlgorithm,
      rsaBits: settings.rsaBits,
      validityHours: settings.serverCertValidityHours,
      earlyRenewalHours: settings.serverCertEarlyRenewalHours,
    },
    users: {
      names: settings.users,
      passwordLength: settings.passwordLength,
      bcryptCost: settings.bcryptCost,
    },
    registry: {
      image: settings.registryImage,
      deleteEnabled: settings.deleteEnabled,
      keepDataOnDestroy: settings.keepDataOnDestroy,
      adoptExistingVolume: settings.adoptExistingVolume,
    },
    // parseSettings refuses pullOnlyUsers, rights and clientCertificates with tlsTermination "registry".
    ...(settings.tlsTermination === "proxy"
      ? {
          proxy: {
            image: settings.nginxImage,
            pullOnlyUsers: settings.pullOnlyUsers,
            ...(Object.keys(settings.rights).length > 0 ? { rights: settings.rights } : {}),
            ui: settings.ui,
            metrics: settings.metrics,
            mirrors: settings.mirrors.map((m) => ({
              name: m.name,
              upstream: m.upstream,
              port: m.port,
              ...(m.password !== undefined ? { credentials: { username: m.username, password: m.password } } : {}),
              ...(m.ca !== "" ? { upstreamCaPem: m.ca } : {}),
              anonymousPull: m.anonymousPull,
            })),
            // Client certificates live as long as the server certificate, and renew as early.
            ...(settings.clientCertificates
              ? {
                  clientCertificates: {
                    validityHours: settings.serverCertValidityHours,
                    earlyRenewalHours: settings.serverCertEarlyRenewalHours,
                  },
                }
              : {}),
          },
        }
      : {}),
    ...(settings.swarm
      ? {
          swarm: {
            replicas: settings.swarm.replicas,
            proxyReplicas: settings.swarm.proxyReplicas,
            storage: settings.swarm.s3,
          },
        }
      : {}),
    clients: {
      hosts: settings.clients,
      ...(settings.localClient ? { local: { sudo: settings.localClientSudo, trustOs: settings.localClientTrustOs } } : {}),
      verify: settings.verifyFromClients,
    },
    docker: {
      namePrefix: settings.namePrefix,
      pullImages: settings.pullImages,
      ...(settings.dockerEngine ? { engine: settings.dockerEngine } : {}),
      facts,
    },
  };
}
