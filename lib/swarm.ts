// The swarm layout (docs/swarm.md), its pure parts: the names of the services, the
// edge's nginx.conf, and the TLS proxy replicas' start script. components/swarm*.ts only wire these into Docker resources.
//
//   clients ──TLS──▶ edge (every node, host-mode port; TCP only, PROXY protocol)
//                     └─▶ TLS proxy replicas (nginx: certificate, users, rights, /ui/)
//                           └─▶ registry replicas (distribution, S3 storage, one http.secret)
//
// Why an edge: this kernel (and many) has no IPVS, so no routing mesh and no VIPs; a
// host-mode port can be held by one task per node only, so the tier that publishes the
// port cannot start its new task before the old one stops. The edge holds no certificate
// and no users, so renewals and user changes never touch it: they roll through the proxy
// replicas (start-first), which the edge finds by DNS on every connection.

import { USERS_DIRECTORY, renderUsersWriterScript } from "./usersDirectory";

/** Docker's embedded DNS server, in every container on a user-defined (overlay) network. */
export const DOCKER_DNS = "127.0.0.11";
/** Where the registry replicas listen, on the overlay network only (plain HTTP: nothing else is on it). */
export const SWARM_REGISTRY_PORT = 5000;
/** Where the TLS proxy replicas listen on the overlay network. */
export const SWARM_PROXY_PORT = 443;
/** Where the edge listens in its container; published on every node at the stack's port. */
export const SWARM_EDGE_PORT = 443;
/** The registry's config inside its replicas (a swarm secret: /run/secrets/<this>). */
export const SWARM_REGISTRY_CONFIG_SECRET = "registry-config.yml";
/** The TLS key and the htpasswd inside the proxy replicas (/run/secrets/<these>). */
export const SWARM_PROXY_SECRETS = { privateKey: "registry-tls-key.pem", htpasswd: "registry-htpasswd" } as const;
/** Where the proxy replicas get the users' lists (swarm configs), before the start script stages them. */
export const SWARM_PROXY_LISTS_DIR = "/etc/nginx/registry/users-lists";

export interface SwarmNames {
  network: string;
  registryService: string;
  proxyService: string;
  edgeService: string;
}

export function swarmNames(prefix: string): SwarmNames {
  return {
    network: `${prefix}-swarm`,
    registryService: `${prefix}-registry`,
    proxyService: `${prefix}-proxy`,
    edgeService: `${prefix}-edge`,
  };
}

/**
 * Every task of the stack's services: started again whatever ended it, 2 s apart. The
 * window is spelled out: Docker hands back "0s", which left out reads as a change at every preview.
 */
export const SWARM_RESTART_POLICY = { condition: "any", delay: "2s", window: "0s" };

/**
 * The rollout of the registry and the TLS proxy: one task at a time, the new one healthy
 * before an old one is told to stop, rolled back if it fails; `up` waits until every
 * replica runs and is healthy.
 */
export const SWARM_ROLLING_UPDATE = {
  updateConfig: { order: "start-first", parallelism: 1, delay: "1s", monitor: "5s", failureAction: "rollback" },
  rollbackConfig: { order: "start-first", parallelism: 1, delay: "1s", monitor: "5s" },
  convergeConfig: { delay: "2s", timeout: "5m" },
};

/** A task's health check around `tests`, every 2 s (swarm counts a task running once it is healthy). */
export function swarmHealthcheck(tests: string[], startPeriod: string) {
  return { tests, interval: "2s", timeout: "3s", startPeriod, retries: 3 };
}

/** A health check that connects to `port` (bash's /dev/tcp: Debian-based nginx images have no curl), then writes `send`. */
export function tcpHealthTest(port: number, send = ""): string[] {
  return ["CMD", "bash", "-c", `exec 3<>/dev/tcp/127.0.0.1/${port}${send ? ` && printf '${send}' >&3` : ""}`];
}

/** DNS name of a service's running tasks: one address each (endpoint mode dnsrr). */
export function tasksName(service: string): string {
  return `tasks.${service}`;
}

export interface EdgeConfInput {
  /** Port the edge listens on inside its container. */
  listenPort: number;
  /** host:port of the TLS proxy replicas (tasks.<service>:443). */
  upstream: string;
  resolver: string;
  pidPath?: string;
}

/**
 * The edge's nginx.conf: TCP only (no certificate, no users). Each connection goes to one
 * of the TLS proxy replicas, found through Docker's DNS (asked again every second), with
 * the client's address in a PROXY protocol header; a replica that refuses or does not
 * answer within a second is skipped for the next one. nginx's stream module is a dynamic
 * module in Debian's and the official images alike (/usr/lib/nginx/modules).
 */
export function renderEdgeConf(input: EdgeConfInput): string {
  return `# Rendered by the private-registry Pulumi program; changes here are overwritten.
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
worker_processes auto;
pid ${input.pidPath ?? "/run/nginx.pid"};
error_log stderr warn;

events {
  worker_connections 4096;
}

stream {
  resolver ${input.resolver} valid=1s ipv6=off;
  resolver_timeout 2s;
  # A variable in proxy_pass: the name is resolved while connections come in, so TLS proxy
  # replicas that start or stop are seen within a second.
  map $server_port $tls_proxy_replicas {
    default "${input.upstream}";
  }
  server {
    listen ${input.listenPort};
    proxy_pass $tls_proxy_replicas;
    proxy_protocol on;
    proxy_connect_timeout 1s;
    proxy_next_upstream on;
    proxy_next_upstream_tries 3;
    # Long pushes and pulls: the connection may idle while the registry works.
    proxy_timeout 900s;
  }
}
`;
}

/**
 * The TLS proxy replica's command (POSIX sh): the users' files from the swarm secret and
 * configs are staged and put into place by the same writer as the single-host layout's
 * (lib/usersDirectory.ts), in the container's own filesystem, then nginx runs in the
 * foreground. A change of users or rights is a new replica, rolled in before the old one stops.
 */
export function swarmProxyStartScript(usersDirectory: string): string {
  const { staging, htpasswd, mayPushList, rightsList } = USERS_DIRECTORY;
  const stage = `${usersDirectory}/${staging}`;
  return [
    "set -eu",
    `mkdir -p '${stage}'`,
    `cp '/run/secrets/${SWARM_PROXY_SECRETS.htpasswd}' '${stage}/${htpasswd}'`,
    `cp '${SWARM_PROXY_LISTS_DIR}/${mayPushList}' '${stage}/${mayPushList}'`,
    `cp '${SWARM_PROXY_LISTS_DIR}/${rightsList}' '${stage}/${rightsList}'`,
    "(",
    renderUsersWriterScript(usersDirectory).trim(),
    ")",
    "exec nginx -g 'daemon off;'",
  ].join("\n");
}
