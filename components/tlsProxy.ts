import * as pulumi from "@pulumi/pulumi";
import * as docker from "@pulumi/docker";
import { containerImage } from "./containerImage";
import { dockerNames } from "../lib/dockerNames";
import { RERUN_OF_LABEL } from "../lib/preflight";
import { USERS_DIRECTORY, renderMayPushList, renderRightsList, renderUsersWriterScript } from "../lib/usersDirectory";
import { UiFile } from "../lib/uiFiles";

/** Where the uploaded files land inside the nginx container. */
export const PROXY_PATHS = {
  config: "/etc/nginx/nginx.conf",
  certificateChain: "/etc/nginx/registry/chain.pem",
  privateKey: "/etc/nginx/registry/key.pem",
  /** The users volume (lib/usersDirectory.ts), read-only for nginx. */
  usersDirectory: "/etc/nginx/registry/users",
  clientCa: "/etc/nginx/registry/client-ca.pem",
  /** The registry browser's static files (lib/uiFiles.ts), served under /ui/. */
  ui: "/etc/nginx/registry/ui",
} as const;
/** Port nginx listens on inside its container. */
export const PROXY_CONTAINER_PORT = 443;

export interface TlsProxyArgs {
  namePrefix: string;
  image: string;
  pullImages: boolean;
  /** The network nginx joins; the port clients dial is published there. */
  networkName: pulumi.Input<string>;
  publish: { listenAddress: string; port: number };
  /** More ports published on the same address: each mirror's (lib/mirrors.ts). */
  mirrorPorts?: { internal: number; external: number }[];
  /** The volume with the registry's unix socket, and where nginx mounts it (the upstream in nginxConf). */
  registrySocket: { volumeName: pulumi.Input<string>; directory: string };
  nginxConf: pulumi.Input<string>;
  certificateChainPem: pulumi.Input<string>;
  privateKeyPem: pulumi.Input<string>;
  htpasswd: pulumi.Input<string>;
  /** The users who may push and delete; the others in the htpasswd may only pull. */
  pushUsers: string[];
  /** Every file of the users directory's rights/ (lib/usersDirectory.ts rightsFiles). */
  rightsFiles: string[];
  /** The ID of an earlier users writer that failed: the writer runs again (lib/preflight.ts). */
  rerunOf?: string;
  /** Mutual TLS: the CAs whose client certificates nginx accepts (PROXY_PATHS.clientCa). */
  clientCaPem?: pulumi.Input<string>;
  /** The registry browser's files, uploaded to PROXY_PATHS.ui (nginxConf serves them); omitted: none. */
  uiFiles?: UiFile[];
  labels: { label: string; value: string }[];
}

/** nginx terminating TLS and checking basic auth in front of the registry. */
export class TlsProxy extends pulumi.ComponentResource {
  readonly containerName: pulumi.Output<string>;

  constructor(name: string, args: TlsProxyArgs, opts?: pulumi.ComponentResourceOptions) {
    super("private-registry:proxy:TlsProxy", name, {}, opts);

    const names = dockerNames(args.namePrefix);
    const image = containerImage(`${name}-image`, args.image, args.pullImages, this);

    // The users: files nginx reads on every request, in a volume of their own. A change
    // re-runs only the one-shot writer (nginx's image, no network), which moves the new
    // files into place; nginx and the registry keep running, and their connections too.
    const usersVolume = new docker.Volume(`${name}-users`, { name: names.usersVolume, labels: args.labels }, { parent: this });
    const staging = `${PROXY_PATHS.usersDirectory}/${USERS_DIRECTORY.staging}`;
    const usersWriter = new docker.Container(
      `${name}-users-writer`,
      {
        name: names.usersWriterContainer,
        labels: [...args.labels, ...(args.rerunOf ? [{ label: RERUN_OF_LABEL, value: args.rerunOf }] : [])],
        image,
        command: ["sh", "-c", renderUsersWriterScript(PROXY_PATHS.usersDirectory)],
        networkMode: "none",
        restart: "no",
        volumes: [{ volumeName: usersVolume.name, containerPath: PROXY_PATHS.usersDirectory }],
        // Uploaded into the volume before the container starts; the script moves them into place.
        uploads: [
          { file: `${staging}/${USERS_DIRECTORY.htpasswd}`, content: pulumi.secret(args.htpasswd), permissions: "0600" },
          { file: `${staging}/${USERS_DIRECTORY.mayPushList}`, content: renderMayPushList(args.pushUsers), permissions: "0644" },
          { file: `${staging}/${USERS_DIRECTORY.rightsList}`, content: renderRightsList(args.rightsFiles), permissions: "0644" },
        ],
        // Run to the end within the `up` (so nginx never starts without the files), then stay
        // as an exited container whose exit code and output tell how it went.
        mustRun: false,
        attach: true,
        logs: true,
      },
      { parent: this, replaceOnChanges: ["uploads", "command", "labels"], deleteBeforeReplace: true },
    );
    // A writer that failed left the old users in place, a removed one included: fail the `up`.
    const usersWritten = pulumi.all([usersWriter.exitCode, usersWriter.containerLogs]).apply(([code, logs]) => {
      if (code !== 0) {
        throw new pulumi.RunError(
          `the users writer (container ${names.usersWriterContainer}) exited with ${code}: ` +
            `${(logs ?? "").trim() || "no output"}; the users nginx checks were not changed. Fix the cause, then deploy ` +
            "again: the writer runs again",
        );
      }
      return code;
    });

    const container = new docker.Container(
      `${name}-container`,
      {
        name: names.proxyContainer,
        labels: args.labels,
        image,
        restart: "always",
        // Its own network namespace: it starts whether or not the registry is up (502 until
        // it is), so after a crash or a reboot the engine brings each back by itself.
        networksAdvanced: [{ name: args.networkName }],
        ports: [
          { internal: PROXY_CONTAINER_PORT, external: args.publish.port, ip: args.publish.listenAddress },
          ...(args.mirrorPorts ?? []).map((p) => ({ internal: p.internal, external: p.external, ip: args.publish.listenAddress })),
        ],
        volumes: [
          // Workers (not root) read the users on every request; a change there needs no new nginx.
          { volumeName: usersVolume.name, containerPath: PROXY_PATHS.usersDirectory, readOnly: true },
          { volumeName: args.registrySocket.volumeName, containerPath: args.registrySocket.directory, readOnly: true },
        ],
        // Files travel with the container: no host directories to prepare.
        uploads: [
          { file: PROXY_PATHS.config, content: args.nginxConf, permissions: "0644" },
          { file: PROXY_PATHS.certificateChain, content: args.certificateChainPem, permissions: "0644" },
          { file: PROXY_PATHS.privateKey, content: pulumi.secret(args.privateKeyPem), permissions: "0600" },
          ...(args.clientCaPem ? [{ file: PROXY_PATHS.clientCa, content: args.clientCaPem, permissions: "0644" }] : []),
          ...(args.uiFiles ?? []).map((f) => ({ file: `${PROXY_PATHS.ui}/${f.name}`, content: f.content, permissions: "0644" })),
        ],
        // `up` fails unless nginx listens: a wrong image or a config nginx refuses is not a success.
        // bash's /dev/tcp, since Debian-based nginx images carry neither curl nor wget.
        healthcheck: {
          // nginx listens. (Whether the registry answers is the registry's own check.)
          tests: ["CMD", "bash", "-c", `exec 3<>/dev/tcp/127.0.0.1/${PROXY_CONTAINER_PORT}`],
          interval: "3s",
          timeout: "3s",
          retries: 3,
        },
        wait: true,
        waitTimeout: 30,
      },
      {
        parent: this,
        // After the writer, and only once it succeeded: nginx never serves without its users.
        dependsOn: usersWritten.apply(() => [usersWriter]),
        // Any file change means a new container; the old one must free its name first. The
        // docker provider "updates" a changed health check in place, which Docker cannot do: replace.
        replaceOnChanges: ["uploads", "networkMode", "healthcheck", "ports", "networksAdvanced", "volumes"],
        deleteBeforeReplace: true,
      },
    );

    this.containerName = container.name;
    this.registerOutputs({ containerName: this.containerName });
  }
}
