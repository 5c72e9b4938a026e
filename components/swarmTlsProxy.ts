import * as pulumi from "@pulumi/pulumi";
import * as docker from "@pulumi/docker";
import { PROXY_PATHS } from "./tlsProxy";
import { USERS_DIRECTORY, renderMayPushList, renderRightsList } from "../lib/usersDirectory";
import { UiFile } from "../lib/uiFiles";
import { SWARM_PROXY_LISTS_DIR, SWARM_PROXY_PORT, SWARM_PROXY_SECRETS, swarmNames, swarmProxyStartScript } from "../lib/swarm";

export interface SwarmTlsProxyArgs {
  namePrefix: string;
  image: string;
  replicas: number;
  networkName: pulumi.Input<string>;
  /** The rendered nginx.conf (lib/nginxConf.ts with `swarm`). */
  nginxConf: pulumi.Input<string>;
  certificateChainPem: pulumi.Input<string>;
  privateKeyPem: pulumi.Input<string>;
  htpasswd: pulumi.Input<string>;
  /** The users who may push and delete; the others in the htpasswd may only pull. */
  pushUsers: string[];
  /** Every file of the users directory's rights/ (lib/usersDirectory.ts rightsFiles). */
  rightsFiles: string[];
  uiFiles?: UiFile[];
  labels: { label: string; value: string }[];
}

/** A file for the service: a swarm config (or secret) named for its content, mounted at `target`. */
interface Mounted {
  id: pulumi.Output<string>;
  name: pulumi.Output<string>;
  target: string;
}

/**
 * nginx terminating TLS and checking the users, as `replicas` tasks of a swarm service on
 * the stack's overlay network (nothing published: the edge passes connections on). Its
 * files are swarm configs, the key and the htpasswd swarm secrets, each named for its
 * content: a renewal or a users change is a new service spec that rolls through the
 * replicas, each new one listening before an old one is told to stop (SIGQUIT: nginx
 * finishes the requests it has).
 */
export class SwarmTlsProxy extends pulumi.ComponentResource {
  readonly serviceName: pulumi.Output<string>;
  readonly service: docker.Service;

  constructor(name: string, args: SwarmTlsProxyArgs, opts?: pulumi.ComponentResourceOptions) {
    super("private-registry:swarm:SwarmTlsProxy", name, {}, opts);
    const names = swarmNames(args.namePrefix);
    const prefix = args.namePrefix;
    const config = (key: string, content: pulumi.Input<string>, target: string): Mounted => {
      const text = pulumi.output(content);
      const c = new docker.ServiceConfig(
        `${name}-${key}`,
        {
          data: text.apply((t) => Buffer.from(t).toString("base64")),
        },
        { parent: this },
      );
      return { id: c.id, name: c.name, target };
    };
    const secret = (key: string, content: pulumi.Input<string>, target: string): Mounted => {
      const text = pulumi.secret(content);
      const s = new docker.Secret(
        `${name}-${key}`,
        {
          data: pulumi.secret(text.apply((t) => Buffer.from(t).toString("base64"))),
          labels: args.labels,
        },
        { parent: this },
      );
      return { id: s.id, name: s.name, target };
    };

    const configs = [
      config("nginx-conf", args.nginxConf, PROXY_PATHS.config),
      config("chain", args.certificateChainPem, PROXY_PATHS.certificateChain),
      config("may-push", renderMayPushList(args.pushUsers), `${SWARM_PROXY_LISTS_DIR}/${USERS_DIRECTORY.mayPushList}`),
      config("rights", renderRightsList(args.rightsFiles), `${SWARM_PROXY_LISTS_DIR}/${USERS_DIRECTORY.rightsList}`),
      ...(args.uiFiles ?? []).map((f) => config(`ui-${f.name.replace(/[^A-Za-z0-9-]/g, "-")}`, f.content, `${PROXY_PATHS.ui}/${f.name}`)),
    ];
    const secrets = [
      secret("tls-key", args.privateKeyPem, SWARM_PROXY_SECRETS.privateKey),
      secret("htpasswd", args.htpasswd, SWARM_PROXY_SECRETS.htpasswd),
    ];

    this.service = new docker.Service(
      `${name}-service`,
      {
        name: names.proxyService,
        labels: args.labels,
        mode: { replicated: { replicas: args.replicas } },
        endpointSpec: { mode: "dnsrr" },
        taskSpec: {
          containerSpec: {
            image: args.image,
            labels: args.labels,
            commands: ["sh", "-c", swarmProxyStartScript(PROXY_PATHS.usersDirectory)],
            configs: configs.map((c) => ({ configId: c.id, configName: c.name, fileName: c.target, fileMode: 0o444 })),
            secrets: secrets.map((s) => ({ secretId: s.id, secretName: s.name, fileName: s.target, fileMode: 0o400 })),
            healthcheck: {
              // It listens with the PROXY protocol: the check says so first, so that nginx logs no broken header.
              tests: [
                "CMD",
                "bash",
                "-c",
                `exec 3<>/dev/tcp/127.0.0.1/${SWARM_PROXY_PORT} && printf 'PROXY TCP4 127.0.0.1 127.0.0.1 1 ${SWARM_PROXY_PORT}\r\n' >&3`,
              ],
              interval: "2s",
              timeout: "3s",
              startPeriod: "2s",
              retries: 3,
            },
            // nginx's graceful stop: no new connections, the requests it has run to the end.
            stopSignal: "SIGQUIT",
            stopGracePeriod: "30s",
          },
          networksAdvanceds: [{ name: args.networkName }],
          restartPolicy: { condition: "any", delay: "2s", window: "0s" },
          placement: { prefs: ["spread=node.id"] },
        },
        updateConfig: { order: "start-first", parallelism: 1, delay: "1s", monitor: "5s", failureAction: "rollback" },
        rollbackConfig: { order: "start-first", parallelism: 1, delay: "1s", monitor: "5s" },
        convergeConfig: { delay: "2s", timeout: "5m" },
      },
      { parent: this },
    );
    this.serviceName = this.service.name;
    this.registerOutputs({ serviceName: this.serviceName });
  }
}
