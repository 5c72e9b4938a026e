import * as pulumi from "@pulumi/pulumi";
import * as docker from "@pulumi/docker";
import { containerImage } from "./containerImage";
import { dockerNames } from "../lib/dockerNames";

/** Where the uploaded files land inside the nginx container. */
export const PROXY_PATHS = {
  config: "/etc/nginx/nginx.conf",
  certificateChain: "/etc/nginx/registry/chain.pem",
  privateKey: "/etc/nginx/registry/key.pem",
  htpasswd: "/etc/nginx/registry/htpasswd",
  clientCa: "/etc/nginx/registry/client-ca.pem",
} as const;
/** Port nginx listens on inside its container. */
export const PROXY_CONTAINER_PORT = 443;

export interface TlsProxyArgs {
  namePrefix: string;
  image: string;
  pullImages: boolean;
  /** The registry container, whose network namespace nginx joins (and whose published port it serves). */
  registryContainerId: pulumi.Input<string>;
  /** The registry's port on loopback of that namespace. */
  registryPort: number;
  nginxConf: pulumi.Input<string>;
  certificateChainPem: pulumi.Input<string>;
  privateKeyPem: pulumi.Input<string>;
  htpasswd: pulumi.Input<string>;
  /** Mutual TLS: the CAs whose client certificates nginx accepts (PROXY_PATHS.clientCa). */
  clientCaPem?: pulumi.Input<string>;
  labels: { label: string; value: string }[];
}

/** nginx terminating TLS and checking basic auth in front of the registry. */
export class TlsProxy extends pulumi.ComponentResource {
  readonly containerName: pulumi.Output<string>;

  constructor(name: string, args: TlsProxyArgs, opts?: pulumi.ComponentResourceOptions) {
    super("private-registry:proxy:TlsProxy", name, {}, opts);

    const container = new docker.Container(`${name}-container`, {
      name: dockerNames(args.namePrefix).proxyContainer,
      labels: args.labels,
      image: containerImage(`${name}-image`, args.image, args.pullImages, this),
      restart: "always",
      networkMode: pulumi.interpolate`container:${args.registryContainerId}`,
      // Files travel with the container: no host directories to prepare.
      uploads: [
        { file: PROXY_PATHS.config, content: args.nginxConf, permissions: "0644" },
        { file: PROXY_PATHS.certificateChain, content: args.certificateChainPem, permissions: "0644" },
        { file: PROXY_PATHS.privateKey, content: pulumi.secret(args.privateKeyPem), permissions: "0600" },
        // Workers (not root) read it on every request.
        { file: PROXY_PATHS.htpasswd, content: pulumi.secret(args.htpasswd), permissions: "0644" },
        ...(args.clientCaPem ? [{ file: PROXY_PATHS.clientCa, content: args.clientCaPem, permissions: "0644" }] : []),
      ],
      // `up` fails unless nginx listens: a wrong image or a config nginx refuses is not a success.
      // bash's /dev/tcp, since Debian-based nginx images carry neither curl nor wget.
      healthcheck: {
        // nginx listens, and the registry answers in the namespace nginx is in. When the
        // registry container restarts (a crash, restart: always) it gets a new network
        // namespace and nginx is left in the dead one: then the check stops nginx, and
        // restart: always brings it back inside the registry's new namespace.
        tests: ["CMD", "bash", "-c", `exec 3<>/dev/tcp/127.0.0.1/${PROXY_CONTAINER_PORT} || exit 1; ` +
          `exec 4<>/dev/tcp/127.0.0.1/${args.registryPort} || { kill 1; exit 1; }`],
        interval: "3s",
        timeout: "3s",
        retries: 3,
      },
      wait: true,
      waitTimeout: 30,
    }, {
      parent: this,
      // Any file change means a new container; the old one must free its name first. A new
      // registry container is a new network namespace: nginx must join that one. The docker
      // provider "updates" a changed health check in place, which Docker cannot do: replace.
      replaceOnChanges: ["uploads", "networkMode", "healthcheck"],
      deleteBeforeReplace: true,
    });

    this.containerName = container.name;
    this.registerOutputs({ containerName: this.containerName });
  }
}
