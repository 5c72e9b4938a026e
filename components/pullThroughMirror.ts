import * as pulumi from "@pulumi/pulumi";
import * as docker from "@pulumi/docker";
import * as random from "@pulumi/random";
import { containerImage } from "./containerImage";
import { mirrorDockerNames } from "../lib/mirrors";
import { REGISTRY_CONFIG_PATHS, registryHealthcheck, registrySocketHealthTest, renderRegistryConfig } from "../lib/registryConfig";
import { REGISTRY_DATA_DIR, REGISTRY_DEBUG_ADDRESS } from "./registry";

/** Where the upstream's CA goes in the mirror's container. (Its cache and its debug server are where the registry's are, in its own container.) */
const UPSTREAM_CA_DIR = "/etc/distribution/upstream-ca";

export interface PullThroughMirrorArgs {
  namePrefix: string;
  /** What clients call the upstream (`docker.io`): names the container and the volume. */
  name: string;
  /** `https://host[:port]` of the upstream registry. */
  upstream: string;
  /** Credentials for the upstream; the password a secret. */
  credentials?: { username: string; password: pulumi.Input<string> };
  /** PEM CA(s) for the upstream's certificate, trusted besides the image's public roots. */
  upstreamCaPem?: string;
  /** The registry image (the stack's registryImage: distribution 2.x and 3.x both have proxy mode). */
  image: string;
  pullImages: boolean;
  /** The network it fetches from the upstream through (the stack's network: nothing listens there). */
  networkName: pulumi.Input<string>;
  /** The volume nginx mounts for the registry's socket, where this one's socket goes too. */
  socketVolume: { name: pulumi.Input<string>; directory: string; socketName: string };
  labels: { label: string; value: string }[];
}

/**
 * A pull-through mirror of one upstream registry: distribution in proxy mode with a
 * cache volume of its own, listening on a unix socket beside the registry's, for nginx.
 * It has a network (to reach the upstream) but listens on none.
 */
export class PullThroughMirror extends pulumi.ComponentResource {
  readonly containerName: pulumi.Output<string>;
  readonly volumeName: pulumi.Output<string>;

  constructor(name: string, args: PullThroughMirrorArgs, opts?: pulumi.ComponentResourceOptions) {
    super("private-registry:mirror:PullThroughMirror", name, {}, opts);
    const names = mirrorDockerNames(args.namePrefix, args.name);

    // A cache: it can always be fetched again, so it goes with the stack.
    const volume = new docker.Volume(`${name}-data`, { name: names.volume, labels: args.labels }, { parent: this });
    const httpSecret = new random.RandomPassword(`${name}-http-secret`, { length: 48, special: false }, { parent: this });
    const socket = `${args.socketVolume.directory}/${args.socketVolume.socketName}`;
    const credentials = args.credentials;
    const config = pulumi.secret(
      pulumi.all([httpSecret.result, credentials?.password ?? ""]).apply(([secret, password]) =>
        renderRegistryConfig({
          httpSecret: secret,
          listen: { net: "unix", addr: socket },
          debugAddress: REGISTRY_DEBUG_ADDRESS,
          dataDir: REGISTRY_DATA_DIR,
          deleteEnabled: false,
          proxy: { remoteurl: args.upstream, ...(credentials ? { username: credentials.username, password } : {}) },
        }),
      ),
    );
    const caUploads = args.upstreamCaPem
      ? [{ file: `${UPSTREAM_CA_DIR}/upstream-ca.pem`, content: args.upstreamCaPem, permissions: "0644" }]
      : [];

    const container = new docker.Container(
      `${name}-container`,
      {
        name: names.container,
        labels: args.labels,
        image: containerImage(`${name}-image`, args.image, args.pullImages, this),
        restart: "always",
        networksAdvanced: [{ name: args.networkName }],
        volumes: [
          { volumeName: volume.name, containerPath: REGISTRY_DATA_DIR },
          { volumeName: args.socketVolume.name, containerPath: args.socketVolume.directory },
        ],
        uploads: [...REGISTRY_CONFIG_PATHS.map((file) => ({ file, content: config, permissions: "0600" })), ...caUploads],
        envs: [
          "OTEL_TRACES_EXPORTER=none",
          // Go reads SSL_CERT_DIR's folders besides the system bundle: the upstream's CA is added, not substituted.
          ...(args.upstreamCaPem ? [`SSL_CERT_DIR=/etc/ssl/certs:${UPSTREAM_CA_DIR}`] : []),
        ],
        healthcheck: registryHealthcheck(registrySocketHealthTest(socket, REGISTRY_DEBUG_ADDRESS)),
        wait: true,
        waitTimeout: 120,
      },
      { parent: this, deleteBeforeReplace: true, replaceOnChanges: ["uploads", "healthcheck", "envs"] },
    );

    this.containerName = container.name;
    this.volumeName = volume.name;
    this.registerOutputs({ containerName: this.containerName, volumeName: this.volumeName });
  }
}
