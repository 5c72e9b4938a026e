import * as pulumi from "@pulumi/pulumi";
import * as docker from "@pulumi/docker";
import * as random from "@pulumi/random";
import { RegistryS3Config, renderRegistryConfig } from "../lib/registryConfig";
import {
  SWARM_REGISTRY_CONFIG_SECRET,
  SWARM_REGISTRY_PORT,
  SWARM_RESTART_POLICY,
  SWARM_ROLLING_UPDATE,
  swarmHealthcheck,
  swarmNames,
} from "../lib/swarm";

export interface SwarmRegistryArgs {
  namePrefix: string;
  image: string;
  /** How many replicas serve (and share the bucket). */
  replicas: number;
  /** Allow deleting manifests by digest (storage.delete.enabled). */
  deleteEnabled: boolean;
  /** The bucket every replica stores in. */
  storage: SwarmStorageArgs;
  labels: { label: string; value: string }[];
}

/** S3-compatible storage (docs/swarm.md): the registry's S3 config, the keys as Pulumi inputs (secrets). */
export type SwarmStorageArgs = Omit<RegistryS3Config, "accessKey" | "secretKey"> & {
  accessKey: pulumi.Input<string>;
  secretKey: pulumi.Input<string>;
};

/**
 * distribution as a replicated swarm service on S3-compatible storage: stateless replicas
 * that share one http.secret (an upload begun on one finishes on another), found by the
 * TLS proxy through Docker's DNS (endpoint mode dnsrr: no VIP, no IPVS), no port published.
 * A new config is a new secret and rolls through the replicas, each new one healthy before
 * an old one stops.
 */
export class SwarmRegistry extends pulumi.ComponentResource {
  readonly serviceName: pulumi.Output<string>;
  /** The overlay network of the stack's services (the proxy and the edge join it too). */
  readonly networkName: pulumi.Output<string>;
  /** Its subnet(s), where connections to the proxy come from (the edge's PROXY protocol). */
  readonly subnets: pulumi.Output<string[]>;
  /** The service, once it converged (every replica running and healthy). */
  readonly service: docker.Service;

  constructor(name: string, args: SwarmRegistryArgs, opts?: pulumi.ComponentResourceOptions) {
    super("private-registry:swarm:SwarmRegistry", name, {}, opts);
    const names = swarmNames(args.namePrefix);

    // The stack's own overlay network: the services find one another by name on it, and
    // nothing else is on it (not attachable: no plain container can join).
    const network = new docker.Network(
      `${name}-network`,
      { name: names.network, driver: "overlay", attachable: false, labels: args.labels },
      { parent: this },
    );
    this.networkName = network.name;
    this.subnets = network.ipamConfigs.apply((c) => (c ?? []).map((i) => i.subnet ?? "").filter((x) => x !== ""));

    // One secret for every replica: an upload begun on one finishes on another. Stable, so
    // uploads survive a rollout.
    const httpSecret = new random.RandomPassword(`${name}-http-secret`, { length: 48, special: false }, { parent: this });
    const storage = args.storage;
    const configYaml = pulumi.secret(
      pulumi.all([httpSecret.result, storage.accessKey, storage.secretKey]).apply(([secret, accessKey, secretKey]) =>
        renderRegistryConfig({
          httpSecret: secret,
          listen: { net: "tcp", addr: `:${SWARM_REGISTRY_PORT}` },
          dataDir: "/var/lib/registry",
          deleteEnabled: args.deleteEnabled,
          s3: { ...storage, accessKey, secretKey },
          drainTimeout: "10s",
        }),
      ),
    );
    const config = new docker.Secret(
      `${name}-config`,
      {
        data: pulumi.secret(configYaml.apply((c) => Buffer.from(c).toString("base64"))),
        labels: args.labels,
      },
      { parent: this },
    );

    this.service = new docker.Service(
      `${name}-service`,
      {
        name: names.registryService,
        labels: args.labels,
        mode: { replicated: { replicas: args.replicas } },
        endpointSpec: { mode: "dnsrr" },
        taskSpec: {
          containerSpec: {
            image: args.image,
            labels: args.labels,
            // The official images (and the local ones) run `registry serve` for a config path.
            args: [`/run/secrets/${SWARM_REGISTRY_CONFIG_SECRET}`],
            secrets: [{ secretId: config.id, secretName: config.name, fileName: SWARM_REGISTRY_CONFIG_SECRET, fileMode: 0o400 }],
            // distribution's health handler answers 503 while the storage check fails.
            healthcheck: swarmHealthcheck(
              ["CMD-SHELL", `wget -q -O /dev/null http://127.0.0.1:${SWARM_REGISTRY_PORT}/v2/ || exit 1`],
              "5s",
            ),
            // draintimeout (10 s) lets requests in flight finish; then SIGKILL.
            stopGracePeriod: "15s",
          },
          networksAdvanceds: [{ name: network.name }],
          restartPolicy: SWARM_RESTART_POLICY,
          placement: { prefs: ["spread=node.id"] },
        },
        ...SWARM_ROLLING_UPDATE,
      },
      { parent: this },
    );
    this.serviceName = this.service.name;
    this.registerOutputs({ serviceName: this.serviceName });
  }
}
