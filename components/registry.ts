import * as pulumi from "@pulumi/pulumi";
import * as docker from "@pulumi/docker";
import * as random from "@pulumi/random";
import { containerImage } from "./containerImage";
import { dockerNames } from "../lib/dockerNames";
import { REGISTRY_CONFIG_PATH, renderRegistryConfig } from "../lib/registryConfig";

/**
 * Where the registry listens: loopback of its own network namespace, which the TLS
 * proxy shares. Nothing else (not the host, not other containers) can reach it.
 */
export const REGISTRY_HOST = "127.0.0.1";
export const REGISTRY_PORT = 5000;
const REGISTRY_DATA_DIR = "/var/lib/registry";

export interface RegistryArgs {
  namePrefix: string;
  image: string;
  pullImages: boolean;
  /** Keep the data volume (the images) when the stack is destroyed. */
  keepDataOnDestroy: boolean;
  /** Allow deleting manifests by digest. */
  deleteEnabled: boolean;
  /** The volume may exist already, made by someone else: never delete it. */
  adoptExistingVolume: boolean;
  /**
   * The proxy's published port. The registry container owns the network namespace
   * the proxy joins, so the port is published here; the proxy listens on it.
   */
  publish: { listenAddress: string; port: number; containerPort: number };
  /** Docker labels for every object made here: they tell the pre-flight check what is this stack's. */
  labels: { label: string; value: string }[];
}

/**
 * The distribution registry on a private network with its data in a named
 * volume. It publishes no host port: the only way in is the TLS proxy.
 */
export class Registry extends pulumi.ComponentResource {
  readonly networkName: pulumi.Output<string>;
  readonly volumeName: pulumi.Output<string>;
  readonly containerName: pulumi.Output<string>;
  readonly containerId: pulumi.Output<string>;

  constructor(name: string, args: RegistryArgs, opts?: pulumi.ComponentResourceOptions) {
    super("private-registry:registry:Registry", name, {}, opts);

    const network = new docker.Network(`${name}-network`, {
      name: dockerNames(args.namePrefix).network,
      driver: "bridge",
      labels: args.labels,
    }, { parent: this });

    // Fixed name so a later stack (after a destroy that kept it) finds the images again.
    const volume = new docker.Volume(`${name}-data`, {
      name: dockerNames(args.namePrefix).volume,
      labels: args.labels,
    }, {
      parent: this,
      // Never delete what this stack may not have created.
      retainOnDelete: args.keepDataOnDestroy || args.adoptExistingVolume,
      // Docker hands back an existing volume as it is, without our labels: no diff for that.
      ignoreChanges: ["labels"],
    });

    // Shared by every replica of this registry; stable so uploads survive replacement.
    const httpSecret = new random.RandomPassword(`${name}-http-secret`, { length: 48, special: false }, { parent: this });

    const container = new docker.Container(`${name}-container`, {
      name: dockerNames(args.namePrefix).registryContainer,
      labels: args.labels,
      image: containerImage(`${name}-image`, args.image, args.pullImages, this),
      restart: "always",
      networksAdvanced: [{ name: network.name }],
      ports: [{ internal: args.publish.containerPort, external: args.publish.port, ip: args.publish.listenAddress }],
      volumes: [{ volumeName: volume.name, containerPath: REGISTRY_DATA_DIR }],
      // The HTTP secret travels in the config file, not in the environment `docker inspect` shows.
      uploads: [{
        file: REGISTRY_CONFIG_PATH,
        content: pulumi.secret(httpSecret.result.apply((secret) =>
          renderRegistryConfig({ httpSecret: secret, listenAddress: `${REGISTRY_HOST}:${REGISTRY_PORT}`, dataDir: REGISTRY_DATA_DIR, deleteEnabled: args.deleteEnabled }))),
        permissions: "0600",
      }],
      // distribution v3 exports traces to localhost:4318 unless told not to.
      envs: ["OTEL_TRACES_EXPORTER=none"],
      healthcheck: {
        // busybox wget in the official image; wget from Debian in locally built ones.
        tests: ["CMD-SHELL", `wget -q -O /dev/null http://127.0.0.1:${REGISTRY_PORT}/v2/ || exit 1`],
        interval: "10s",
        timeout: "5s",
        startPeriod: "5s",
        retries: 3,
      },
      wait: true,
      waitTimeout: 120,
    }, { parent: this, deleteBeforeReplace: true, replaceOnChanges: ["uploads", "healthcheck"] });

    this.networkName = network.name;
    this.volumeName = volume.name;
    this.containerName = container.name;
    this.containerId = container.id;
    this.registerOutputs({ networkName: this.networkName, volumeName: this.volumeName, containerName: this.containerName });
  }
}
