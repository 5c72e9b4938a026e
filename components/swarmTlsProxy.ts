import * as pulumi from "@pulumi/pulumi";
import * as docker from "@pulumi/docker";
import { PROXY_PATHS, TlsProxyArgs } from "./tlsProxy";
import { USERS_DIRECTORY, renderMayPushList, renderRightsList } from "../lib/usersDirectory";
import {
  SWARM_PROXY_LISTS_DIR,
  SWARM_PROXY_PORT,
  SWARM_PROXY_SECRETS,
  SWARM_RESTART_POLICY,
  SWARM_ROLLING_UPDATE,
  swarmHealthcheck,
  swarmNames,
  swarmProxyStartScript,
  tcpHealthTest,
} from "../lib/swarm";

/** The single-host proxy's files and users (components/tlsProxy.ts), as swarm configs and secrets. */
export type SwarmTlsProxyArgs = Pick<
  TlsProxyArgs,
  | "namePrefix"
  | "image"
  | "nginxConf"
  | "certificateChainPem"
  | "privateKeyPem"
  | "htpasswd"
  | "pushUsers"
  | "rightsFiles"
  | "uiFiles"
  | "labels"
> & {
  replicas: number;
  /** The stack's overlay network (SwarmRegistry's). */
  networkName: pulumi.Input<string>;
};

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
            // It listens with the PROXY protocol: the check says so first, so that nginx logs no broken header.
            healthcheck: swarmHealthcheck(
              tcpHealthTest(SWARM_PROXY_PORT, `PROXY TCP4 127.0.0.1 127.0.0.1 1 ${SWARM_PROXY_PORT}\r\n`),
              "2s",
            ),
            // nginx's graceful stop: no new connections, the requests it has run to the end.
            stopSignal: "SIGQUIT",
            stopGracePeriod: "30s",
          },
          networksAdvanceds: [{ name: args.networkName }],
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
