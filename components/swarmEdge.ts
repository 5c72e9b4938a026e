import * as pulumi from "@pulumi/pulumi";
import * as docker from "@pulumi/docker";
import { PROXY_PATHS } from "./tlsProxy";
import { SWARM_EDGE_PORT, SWARM_RESTART_POLICY, swarmHealthcheck, swarmNames, tcpHealthTest } from "../lib/swarm";

export interface SwarmEdgeArgs {
  namePrefix: string;
  /** An nginx image with the stream module (lib/swarm.ts renderEdgeConf loads it). */
  image: string;
  networkName: pulumi.Input<string>;
  /** The rendered edge nginx.conf (lib/swarm.ts). */
  edgeConf: string;
  /** The port clients dial, published on every node (host mode). */
  port: number;
  /** How many nodes are ready (lib/preflight.ts): one edge task on each. */
  nodes: number;
  labels: { label: string; value: string }[];
}

/**
 * The edge: one nginx per node publishing the stack's port in host
 * mode, passing each TCP connection to a TLS proxy replica with the PROXY protocol. It
 * holds no certificate and no users, so renewals and user changes leave it running.
 * Host mode, not the routing mesh: the mesh needs IPVS in the kernel (absent on many
 * small hosts and on this project's test machines), and host mode keeps the client's
 * address for the proxy's failed-login limit.
 */
export class SwarmEdge extends pulumi.ComponentResource {
  readonly serviceName: pulumi.Output<string>;
  readonly service: docker.Service;

  constructor(name: string, args: SwarmEdgeArgs, opts?: pulumi.ComponentResourceOptions) {
    super("private-registry:swarm:SwarmEdge", name, {}, opts);
    const names = swarmNames(args.namePrefix);
    const conf = new docker.ServiceConfig(
      `${name}-conf`,
      {
        data: Buffer.from(args.edgeConf).toString("base64"),
      },
      { parent: this },
    );
    this.service = new docker.Service(
      `${name}-service`,
      {
        name: names.edgeService,
        labels: args.labels,
        // One task per node (only one can hold a node's host port), as many as there are
        // nodes: a replicated service rather than a global one, so that `up` waits until
        // each serves (the provider waits for replicated services only). A node that joins
        // later gets its task at the next `up`.
        mode: { replicated: { replicas: args.nodes } },
        endpointSpec: {
          mode: "dnsrr",
          ports: [{ targetPort: SWARM_EDGE_PORT, publishedPort: args.port, publishMode: "host", protocol: "tcp" }],
        },
        taskSpec: {
          containerSpec: {
            image: args.image,
            labels: args.labels,
            commands: ["nginx", "-g", "daemon off;"],
            configs: [{ configId: conf.id, configName: conf.name, fileName: PROXY_PATHS.config, fileMode: 0o444 }],
            healthcheck: swarmHealthcheck(tcpHealthTest(SWARM_EDGE_PORT), "2s"),
            stopSignal: "SIGQUIT",
            stopGracePeriod: "30s",
          },
          networksAdvanceds: [{ name: args.networkName }],
          restartPolicy: SWARM_RESTART_POLICY,
          placement: { maxReplicas: 1 },
        },
        // The task holding a node's port must stop before its successor can start there.
        updateConfig: { order: "stop-first", parallelism: 1, delay: "2s", monitor: "5s", failureAction: "rollback" },
        convergeConfig: { delay: "2s", timeout: "3m" },
      },
      { parent: this },
    );
    this.serviceName = this.service.name;
    this.registerOutputs({ serviceName: this.serviceName });
  }
}
