import * as pulumi from "@pulumi/pulumi";
import * as docker from "@pulumi/docker";
import * as random from "@pulumi/random";
import { containerImage } from "./containerImage";
import { dockerNames } from "../lib/dockerNames";
import {
  REGISTRY_AUTH_REALM,
  REGISTRY_CONFIG_PATHS,
  REGISTRY_TLS_PATHS,
  htpasswdDigestLine,
  registryHealthTest,
  registryHealthcheck,
  registrySocketHealthTest,
  renderRegistryConfig,
} from "../lib/registryConfig";

/**
 * Behind the proxy the registry has no network (network mode none): it listens on a unix
 * socket in a volume that only it and nginx mount. Nothing else (not the host's users,
 * not other containers) can reach it, and neither container needs the other to start.
 */
export const REGISTRY_SOCKET_DIR = "/run/registry";
export const REGISTRY_SOCKET = `${REGISTRY_SOCKET_DIR}/registry.sock`;
/**
 * With metrics: the registry's Prometheus page as of its last health check (every 3 s), in
 * the socket's volume, where nginx (which mounts it read-only) serves it behind basic auth.
 */
export const REGISTRY_METRICS_FILE = `${REGISTRY_SOCKET_DIR}/metrics.prom`;
/** distribution's debug server (/debug/health), on loopback of the registry's own empty namespace. */
export const REGISTRY_DEBUG_ADDRESS = "127.0.0.1:5001";
/** The registry's port in its container when it terminates TLS itself (unprivileged, as the official image expects). */
export const REGISTRY_PORT = 5000;
export const REGISTRY_DATA_DIR = "/var/lib/registry";

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
  /** Behind the proxy: the debug server's Prometheus metrics, copied to REGISTRY_METRICS_FILE by the health check. */
  metrics?: boolean;
  /** The volume may exist already, made by someone else: never delete it. */
  adoptExistingVolume: boolean;
  /** Where clients dial, published with `tls` (without it, the proxy publishes the port). */
  publish: { listenAddress: string; port: number };
  /**
   * Given: the registry serves TLS and basic auth itself on every interface of its
   * container (no proxy). Omitted: plain HTTP on a unix socket in `socketVolume`, for the proxy.
   */
  tls?: RegistryTlsArgs;
  /** Docker labels for every object made here: they tell the pre-flight check what is this stack's. */
  labels: { label: string; value: string }[];
}

/**
 * The distribution registry on a private network with its data in a named volume.
 * Behind the proxy it has no network and listens on a unix socket: the only way in is the TLS proxy.
 * With `tls` it is the way in itself. The volume (and so the images) is the same in
 * both layouts; switching replaces only the container.
 */
export class Registry extends pulumi.ComponentResource {
  readonly networkName: pulumi.Output<string>;
  readonly volumeName: pulumi.Output<string>;
  readonly containerName: pulumi.Output<string>;
  /** Behind the proxy: the volume holding the registry's unix socket (REGISTRY_SOCKET), for nginx to mount. */
  readonly socketVolumeName?: pulumi.Output<string>;

  constructor(name: string, args: RegistryArgs, opts?: pulumi.ComponentResourceOptions) {
    super("private-registry:registry:Registry", name, {}, opts);

    const network = new docker.Network(
      `${name}-network`,
      {
        name: dockerNames(args.namePrefix).network,
        driver: "bridge",
        labels: args.labels,
      },
      { parent: this },
    );

    // Fixed name so a later stack (after a destroy that kept it) finds the images again.
    const volume = new docker.Volume(
      `${name}-data`,
      {
        name: dockerNames(args.namePrefix).volume,
        labels: args.labels,
      },
      {
        parent: this,
        // Never delete what this stack may not have created.
        retainOnDelete: args.keepDataOnDestroy || args.adoptExistingVolume,
        // Docker hands back an existing volume as it is, without our labels: no diff for that.
        ignoreChanges: ["labels"],
      },
    );

    // Shared by every replica of this registry; stable so uploads survive replacement.
    const httpSecret = new random.RandomPassword(`${name}-http-secret`, { length: 48, special: false }, { parent: this });

    const tls = args.tls;
    // Behind the proxy: plain HTTP on the socket. On its own: TLS on every interface of the
    // container (other containers on the private network meet TLS and auth too).
    const socketVolume = tls
      ? undefined
      : new docker.Volume(
          `${name}-socket`,
          {
            name: dockerNames(args.namePrefix).socketVolume,
            labels: args.labels,
          },
          { parent: this },
        );
    const config = pulumi.secret(
      httpSecret.result.apply((secret) =>
        renderRegistryConfig({
          httpSecret: secret,
          listen: tls ? { net: "tcp", addr: `:${REGISTRY_PORT}` } : { net: "unix", addr: REGISTRY_SOCKET },
          debugAddress: tls ? undefined : REGISTRY_DEBUG_ADDRESS,
          prometheus: !tls && args.metrics === true,
          dataDir: REGISTRY_DATA_DIR,
          deleteEnabled: args.deleteEnabled,
          tls: tls && {
            certificatePath: REGISTRY_TLS_PATHS.certificateChain,
            privateKeyPath: REGISTRY_TLS_PATHS.privateKey,
            htpasswdPath: REGISTRY_TLS_PATHS.htpasswd,
            realm: REGISTRY_AUTH_REALM,
          },
        }),
      ),
    );
    // Files, not REGISTRY_HTTP_TLS_* / REGISTRY_AUTH_* variables: nothing of them shows in `docker inspect`.
    // The registry runs as root in both images, so the key and the htpasswd can be 0600.
    const tlsUploads = tls
      ? [
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
        ]
      : [];
    const healthTest = tls
      ? registryHealthTest(REGISTRY_PORT)
      : registrySocketHealthTest(REGISTRY_SOCKET, REGISTRY_DEBUG_ADDRESS, args.metrics ? REGISTRY_METRICS_FILE : undefined);

    const container = new docker.Container(
      `${name}-container`,
      {
        name: dockerNames(args.namePrefix).registryContainer,
        labels: args.labels,
        image: containerImage(`${name}-image`, args.image, args.pullImages, this),
        restart: "always",
        ...(tls
          ? {
              networksAdvanced: [{ name: network.name }],
              ports: [{ internal: REGISTRY_PORT, external: args.publish.port, ip: args.publish.listenAddress }],
            }
          : { networkMode: "none" }),
        volumes: [
          { volumeName: volume.name, containerPath: REGISTRY_DATA_DIR },
          ...(socketVolume ? [{ volumeName: socketVolume.name, containerPath: REGISTRY_SOCKET_DIR }] : []),
        ],
        // The HTTP secret travels in the config file, not in the environment `docker inspect` shows.
        // At registry:2's and registry:3's paths alike (see REGISTRY_CONFIG_PATHS).
        uploads: [...REGISTRY_CONFIG_PATHS.map((file) => ({ file, content: config, permissions: "0600" })), ...tlsUploads],
        // distribution v3 exports traces to localhost:4318 unless told not to.
        envs: ["OTEL_TRACES_EXPORTER=none"],
        healthcheck: registryHealthcheck(healthTest),
        wait: true,
        waitTimeout: 120,
      },
      { parent: this, deleteBeforeReplace: true, replaceOnChanges: ["uploads", "healthcheck", "networkMode"] },
    );

    this.networkName = network.name;
    this.volumeName = volume.name;
    this.containerName = container.name;
    this.socketVolumeName = socketVolume?.name;
    this.registerOutputs({
      networkName: this.networkName,
      volumeName: this.volumeName,
      containerName: this.containerName,
      socketVolumeName: this.socketVolumeName,
    });
  }
}
