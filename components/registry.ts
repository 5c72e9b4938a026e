import * as pulumi from "@pulumi/pulumi";
import * as docker from "@pulumi/docker";
import * as random from "@pulumi/random";
import { containerImage } from "./containerImage";
import { dockerNames } from "../lib/dockerNames";
import {
  REGISTRY_AUTH_REALM, REGISTRY_CONFIG_PATHS, REGISTRY_TLS_PATHS, htpasswdDigestLine, registryHealthTest, renderRegistryConfig,
} from "../lib/registryConfig";

/**
 * Where the registry listens behind the proxy: loopback of its own network namespace,
 * which the TLS proxy shares. Nothing else (not the host, not other containers) can reach it.
 */
export const REGISTRY_HOST = "127.0.0.1";
/** The registry's port in its container, in both layouts (unprivileged, as the official image expects). */
export const REGISTRY_PORT = 5000;
const REGISTRY_DATA_DIR = "/var/lib/registry";

/** The files that let the registry terminate TLS and check passwords itself (the "registry" layout). */
export interface RegistryTlsArgs {
  /** Server certificate then CA. */
  certificateChainPem: pulumi.Input<string>;
  privateKeyPem: pulumi.Input<string>;
  htpasswd: pulumi.Input<string>;
}

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
   * The port clients dial. Behind the proxy it is the proxy's: the registry container
   * owns the network namespace the proxy joins, so the port is published here and the
   * proxy listens on it. With `tls` it is the registry's own (REGISTRY_PORT).
   */
  publish: { listenAddress: string; port: number; containerPort: number };
  /**
   * Given: the registry serves TLS and basic auth itself on every interface of its
   * container (no proxy). Omitted: plain HTTP on loopback, for the proxy in its namespace.
   */
  tls?: RegistryTlsArgs;
  /** Docker labels for every object made here: they tell the pre-flight check what is this stack's. */
  labels: { label: string; value: string }[];
}

/**
 * The distribution registry on a private network with its data in a named volume.
 * Behind the proxy it listens on loopback only: the only way in is the TLS proxy.
 * With `tls` it is the way in itself. The volume (and so the images) is the same in
 * both layouts; switching replaces only the container.
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

    const tls = args.tls;
    // Behind the proxy: plain HTTP on loopback. On its own: TLS on every interface of the
    // container (other containers on the private network meet TLS and auth too).
    const listenAddress = tls ? `:${REGISTRY_PORT}` : `${REGISTRY_HOST}:${REGISTRY_PORT}`;
    const config = pulumi.secret(httpSecret.result.apply((secret) => renderRegistryConfig({
      httpSecret: secret, listenAddress, dataDir: REGISTRY_DATA_DIR, deleteEnabled: args.deleteEnabled,
      tls: tls && {
        certificatePath: REGISTRY_TLS_PATHS.certificateChain,
        privateKeyPath: REGISTRY_TLS_PATHS.privateKey,
        htpasswdPath: REGISTRY_TLS_PATHS.htpasswd,
        realm: REGISTRY_AUTH_REALM,
      },
    })));
    // Files, not REGISTRY_HTTP_TLS_* / REGISTRY_AUTH_* variables: nothing of them shows in `docker inspect`.
    // The registry runs as root in both images, so the key and the htpasswd can be 0600.
    const tlsUploads = tls ? [
      { file: REGISTRY_TLS_PATHS.certificateChain, content: tls.certificateChainPem, permissions: "0644" },
      { file: REGISTRY_TLS_PATHS.privateKey, content: pulumi.secret(tls.privateKeyPem), permissions: "0600" },
      { file: REGISTRY_TLS_PATHS.htpasswd, content: pulumi.secret(tls.htpasswd), permissions: "0600" },
      // What the health check compares the htpasswd with: v3 would otherwise serve with a
      // generated user should that file be missing at start (see registryHealthTest).
      {
        file: REGISTRY_TLS_PATHS.htpasswdDigest,
        content: pulumi.secret(pulumi.output(tls.htpasswd).apply((h) => htpasswdDigestLine(h))),
        permissions: "0600",
      },
    ] : [];
    const healthTest = registryHealthTest(REGISTRY_PORT, tls !== undefined);

    const container = new docker.Container(`${name}-container`, {
      name: dockerNames(args.namePrefix).registryContainer,
      labels: args.labels,
      image: containerImage(`${name}-image`, args.image, args.pullImages, this),
      restart: "always",
      networksAdvanced: [{ name: network.name }],
      ports: [{ internal: args.publish.containerPort, external: args.publish.port, ip: args.publish.listenAddress }],
      volumes: [{ volumeName: volume.name, containerPath: REGISTRY_DATA_DIR }],
      // The HTTP secret travels in the config file, not in the environment `docker inspect` shows.
      // At registry:2's and registry:3's paths alike (see REGISTRY_CONFIG_PATHS).
      uploads: [...REGISTRY_CONFIG_PATHS.map((file) => ({ file, content: config, permissions: "0600" })), ...tlsUploads],
      // distribution v3 exports traces to localhost:4318 unless told not to.
      envs: ["OTEL_TRACES_EXPORTER=none"],
      // Every 3 s: Docker runs the first check one interval after the start, and `up`
      // (wait: true), gc and a replacement wait for it; 10 s made 10 of the about 25 s
      // of an `up` from nothing (docs/benchmarks.md). A check costs about 45 ms of
      // the engine's CPU. (startInterval would do better, but needs Docker 25.)
      healthcheck: {
        tests: ["CMD-SHELL", healthTest],
        interval: "3s",
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
