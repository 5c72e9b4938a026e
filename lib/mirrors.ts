// Pull-through mirrors: the names, ports and client-side files that follow from the
// `mirrors` settings. Pure; tested directly (tests/mirrors.test.ts) and by the real
// deployment of tests/mirror.test.ts, which reads what these functions render.
import { registryEndpoints } from "./endpoints";

/** What the program needs to know of one mirror (lib/settings.ts's MirrorSettings, minus the secrets). */
export interface MirrorPlan {
  /** What clients call the upstream in image names (`docker.io`, `host[:port]`). */
  name: string;
  /** The host port nginx publishes for it. */
  port: number;
  /** Who may pull: basic-auth users, the client certificate alone (mutual TLS), or anyone who reaches the port. */
  access: MirrorAccess;
}
export type MirrorAccess = "users" | "certificate" | "anyone";

/**
 * Who may pull from a mirror. Docker daemons never send a password to a mirror
 * (moby#30880), but they do present the host's client certificate from certs.d:
 * with mutual TLS the certificate is the login, and with anonymousPull no login is asked.
 */
export function mirrorAccess(anonymousPull: boolean, clientCertificates: boolean): MirrorAccess {
  if (anonymousPull) return "anyone";
  return clientCertificates ? "certificate" : "users";
}

/** The port nginx listens on inside its container for mirror N (the registry's is 443). */
export function mirrorContainerPort(index: number): number {
  return 5001 + index;
}

/** A Docker-name-safe form of a mirror's name, for its container and volume: `docker.io`, `host-5000`. */
export function mirrorSlug(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9_.-]+/g, "-");
}

/** The Docker objects of one mirror, from the stack's namePrefix. */
export function mirrorDockerNames(namePrefix: string, name: string) {
  const slug = mirrorSlug(name);
  return {
    container: `${namePrefix}-mirror-${slug}`,
    volume: `${namePrefix}-mirror-${slug}-data`,
  };
}

/** The unix socket a mirror's registry listens on, in the socket volume nginx mounts. */
export function mirrorSocketName(name: string): string {
  return `mirror-${mirrorSlug(name)}.sock`;
}

/** Every host:port clients dial for a mirror: the registry's addresses with the mirror's port. */
export function mirrorEndpoints(ipAddresses: readonly string[], dnsNames: readonly string[], mirror: Pick<MirrorPlan, "port">): string[] {
  return registryEndpoints(ipAddresses, dnsNames, mirror.port);
}

/** The server clients would otherwise pull from, as containerd's hosts.toml names it. */
export function upstreamServer(name: string): string {
  return name === "docker.io" ? "https://registry-1.docker.io" : `https://${name}`;
}

/** A string as TOML writes it (a basic string). */
function tomlString(value: string): string {
  return JSON.stringify(value);
}

export interface ClientMirror {
  name: string;
  /** host:port, in the order clients try them. */
  endpoints: string[];
}

/**
 * containerd's /etc/containerd/certs.d/<name>/hosts.toml: pull and resolve through the
 * mirror's endpoints, verified with the CA that the client trust step put in Docker's
 * certs.d (and, with mutual TLS, the host's certificate there); the upstream itself last.
 */
export function renderHostsToml(mirror: ClientMirror, dockerCertsDir: string, clientCertificate: boolean, anchorName: string): string {
  const hosts = mirror.endpoints.map((endpoint) => {
    const dir = `${dockerCertsDir}/${endpoint}`;
    const client = clientCertificate ? `\n  client = [[${tomlString(`${dir}/client.cert`)}, ${tomlString(`${dir}/client.key`)}]]` : "";
    return `[host.${tomlString(`https://${endpoint}`)}]
  capabilities = ["pull", "resolve"]
  ca = ${tomlString(`${dir}/ca.crt`)}${client}
`;
  });
  return `# Written by the private-registry stack "${anchorName}"; its destroy puts back what was here.
server = ${tomlString(upstreamServer(mirror.name))}

${hosts.join("\n")}`;
}

/**
 * A /etc/containers/registries.conf.d drop-in (podman, skopeo, buildah, CRI-O): each
 * upstream by its own name, tried through the mirror's endpoints first. TLS: those
 * tools read the CA from /etc/docker/certs.d/<host:port>/ as well.
 */
export function renderRegistriesConf(mirrors: ClientMirror[], anchorName: string): string {
  const blocks = mirrors.map(
    (m) => `[[registry]]
prefix = ${tomlString(m.name)}
location = ${tomlString(m.name)}
${m.endpoints.map((e) => `\n[[registry.mirror]]\nlocation = ${tomlString(e)}\n`).join("")}`,
  );
  return `# Written by the private-registry stack "${anchorName}"; removed by its destroy.
${blocks.join("\n")}`;
}

/** The drop-in's file name: late in the order, one per stack. */
export function registriesConfDropIn(anchorName: string): string {
  return `50-${anchorName}-mirrors.conf`;
}

/** Docker daemons' registry-mirrors entries: URLs of the Docker Hub mirror's endpoints. */
export function dockerMirrorUrls(endpoints: readonly string[]): string[] {
  return endpoints.map((e) => `https://${e}`);
}

/**
 * The jq program that merges our registry-mirrors into a daemon.json, keeping every
 * other key and every other mirror (ours first: Docker tries them in order).
 * Needs `--argjson ours '[...]'`.
 */
export const DAEMON_JSON_MERGE = '.["registry-mirrors"] = ($ours + ((.["registry-mirrors"] // []) - $ours))';
/** The jq program that takes ours out again; the key goes when nothing else is left in it. */
export const DAEMON_JSON_UNMERGE =
  '(.["registry-mirrors"] // []) as $all | ($all - $ours) as $rest | if ($rest | length) == 0 then del(.["registry-mirrors"]) else .["registry-mirrors"] = $rest end';

/** What the mirrors mean for nginx, the client hosts' CA and check, and their runtimes. */
export interface MirrorLayout {
  /** Per mirror, in order: its port in nginx's container, who may pull, and its endpoints. */
  mirrors: (MirrorPlan & { containerPort: number; endpoints: string[] })[];
  /** Mirror endpoints that ask for a password (the check wants 401 there). */
  passwordEndpoints: string[];
  /** Mirror endpoints that ask for none (the check wants 200 there). */
  openEndpoints: string[];
  /** The docker.io mirror's endpoints when Docker daemons can use it; [] otherwise. */
  dockerMirrorEndpoints: string[];
  /** Why Docker daemons are not pointed at the docker.io mirror, when there is one they cannot use. */
  dockerNote?: string;
}

export function mirrorLayout(
  mirrors: readonly { name: string; port: number; anonymousPull: boolean }[],
  clientCertificates: boolean,
  ipAddresses: readonly string[],
  dnsNames: readonly string[],
): MirrorLayout {
  const planned = mirrors.map((m, i) => ({
    name: m.name,
    port: m.port,
    access: mirrorAccess(m.anonymousPull, clientCertificates),
    containerPort: mirrorContainerPort(i),
    endpoints: mirrorEndpoints(ipAddresses, dnsNames, m),
  }));
  const hub = planned.find((m) => m.name === "docker.io");
  return {
    mirrors: planned,
    passwordEndpoints: planned.filter((m) => m.access === "users").flatMap((m) => m.endpoints),
    openEndpoints: planned.filter((m) => m.access !== "users").flatMap((m) => m.endpoints),
    dockerMirrorEndpoints: hub && hub.access !== "users" ? hub.endpoints : [],
    ...(hub && hub.access === "users"
      ? {
          dockerNote:
            "not pointed at the docker.io mirror: it asks for a password, and Docker daemons never send one to a mirror " +
            "(moby#30880); set its anonymousPull, or clientCertificates (the host's certificate is then the login)",
        }
      : {}),
  };
}
