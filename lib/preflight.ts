// Checks, before any resource exists, what only the Docker host and the client
// hosts can tell: names already taken by something this stack did not make, the
// port and the address, images that must not be pulled, each client's SSH login.
// Each problem is one sentence naming the setting, the value and the host; the
// program fails with all of them before the engine creates anything.
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { Settings, plainPrivateKey, plainDockerTls, isLocalEngine } from "./settings";
import { dockerNames } from "./dockerNames";
import { mirrorDockerNames } from "./mirrors";
import { withNewline } from "./pem";

/** Docker label that marks what a stack made: `<project>/<stack>`. */
export const STACK_LABEL = "private-registry.stack";
/**
 * Docker label on the users writer: the ID of an earlier writer of this stack that
 * failed. A new value makes the writer run again (its inputs changed); kept as it is
 * once the re-run succeeded, so that nothing changes after that.
 */
export const RERUN_OF_LABEL = "private-registry.rerun-of";

export interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
  /** Set when the program could not be started (ENOENT) or was killed on timeout (ETIMEDOUT). */
  errorCode?: string;
}
/** `env`, when given, is the whole environment of the command. */
export type Run = (cmd: string, args: string[], timeoutMs?: number, env?: NodeJS.ProcessEnv) => RunResult;

export const systemRun: Run = (cmd, args, timeoutMs = 30_000, env) => {
  const r = spawnSync(cmd, args, { encoding: "utf8", timeout: timeoutMs, stdio: ["ignore", "pipe", "pipe"], ...(env ? { env } : {}) });
  return {
    status: r.status,
    stdout: r.stdout ?? "",
    stderr: r.stderr ?? "",
    errorCode: (r.error as NodeJS.ErrnoException | undefined)?.code,
  };
};

export interface PreflightResult {
  problems: string[];
  /** Things `up` should say it did (adopting a volume). */
  notes: string[];
  /** What the program needs to know of the Docker host's state (see HostFacts). */
  facts: HostFacts;
}

/** What the Docker host tells the program beyond its config. */
export interface HostFacts {
  /**
   * The users writer's RERUN_OF_LABEL value: the ID of this stack's writer that exited
   * non-zero (so it runs again), or the label the current writer carries, or undefined.
   */
  usersWriterRerunOf?: string;
  /** The swarm layout: how many nodes are ready and active (an edge task each). */
  swarmNodes?: number;
}

const SSH_TIMEOUT_MS = 30_000;

/**
 * Why an image present on the Docker host is plainly not what `key` asks for, judged by
 * its default command (Entrypoint and Cmd, which the containers run as they are): a
 * registry's names the registry or distribution, nginx's names nginx. Undefined when it
 * may be right (an image of another name is given the benefit of the doubt).
 */
export function wrongImageKind(key: "registryImage" | "nginxImage", command: string): string | undefined {
  const nginx = /nginx/i.test(command);
  const registry = /registry|distribution/i.test(command);
  if (key === "nginxImage" && registry && !nginx) {
    return `is a registry image, not nginx (its command is ${command}); set nginxImage to an nginx image`;
  }
  if (key === "registryImage" && nginx && !registry) {
    return `is an nginx image, not a registry (its command is ${command}); set registryImage to a distribution registry image`;
  }
  return undefined;
}

function lastLine(text: string): string {
  return text.trim().split("\n").filter(Boolean).pop() ?? "";
}

/**
 * `update`: the run is an `up`, not a preview. Then one thing is done as well as checked:
 * switching a stack from the proxy layout to the registry layout moves the published port
 * from nginx to the registry container, and Docker would refuse to publish it while this
 * stack's nginx still holds it (Pulumi deletes what left the program only at the end of
 * the run), so that nginx container, which this `up` deletes anyway, is stopped first.
 */
export function preflight(project: string, stack: string, settings: Settings, run: Run = systemRun, update = false): PreflightResult {
  const problems: string[] = [];
  const notes: string[] = [];
  const facts: HostFacts = {};
  const owner = `${project}/${stack}`;
  const bad = (key: string, value: unknown, why: string) =>
    problems.push(`Invalid config "${project}:${key}" = ${JSON.stringify(value)}: ${why}.`);
  // The engine the program's Docker resources use: dockerHost (through an explicit
  // provider), else whatever the docker CLI and the provider pick by default.
  const engine = settings.dockerEngine;
  const dockerHost = engine?.host ?? (process.env.DOCKER_HOST || "unix:///var/run/docker.sock");
  const localEngine = engine ? isLocalEngine(engine) : dockerHost.startsWith("unix://");
  // The docker CLI talks to that engine: DOCKER_HOST, and for tcp:// the client TLS files
  // in a private temporary folder (0600, removed below), never on a command line.
  let env: NodeJS.ProcessEnv | undefined;
  let tlsDir: string | undefined;
  if (engine) {
    env = { ...process.env, DOCKER_HOST: engine.host };
    delete env.DOCKER_CONTEXT;
    delete env.DOCKER_TLS_VERIFY;
    delete env.DOCKER_CERT_PATH;
    const tls = plainDockerTls(engine);
    if (tls) {
      tlsDir = fs.mkdtempSync(path.join(os.tmpdir(), "private-registry-docker-tls-"));
      for (const [file, pem] of [
        ["ca.pem", tls.caCert],
        ["cert.pem", tls.cert],
        ["key.pem", tls.key],
      ]) {
        fs.writeFileSync(path.join(tlsDir, file), withNewline(pem), { mode: 0o600 });
      }
      env.DOCKER_TLS_VERIFY = "1";
      env.DOCKER_CERT_PATH = tlsDir;
    }
  }
  try {
    checkEngine();
  } finally {
    if (tlsDir) fs.rmSync(tlsDir, { recursive: true, force: true });
  }

  function checkEngine(): void {
    const docker = (...args: string[]) => run("docker", args, 20_000, env);
    const version = docker("version", "--format", "{{.Server.Version}}");
    if (version.errorCode === "ENOENT") {
      notes.push("no docker CLI on this machine: the checks of the Docker host were skipped");
    } else if (version.status !== 0) {
      const why = lastLine(version.stderr) || (version.errorCode === "ETIMEDOUT" ? "no answer within 20 s" : "no answer");
      if (engine) bad("dockerHost", engine.host, `the Docker engine there does not answer (${why}); nothing was created`);
      else problems.push(`The Docker engine at ${dockerHost} does not answer (${why}); nothing was created.`);
    } else {
      /** The stack label of a Docker object, or undefined when there is no such object. */
      const ownerOf = (kind: "container" | "network" | "volume", name: string): string | undefined => {
        const format = kind === "container" ? `{{index .Config.Labels "${STACK_LABEL}"}}` : `{{index .Labels "${STACK_LABEL}"}}`;
        const r = docker(kind, "inspect", "--format", format, name);
        return r.status === 0 ? r.stdout.trim().replace(/^<no value>$/, "") : undefined;
      };
      const whose = (label: string) => (label ? `stack ${label}` : "no stack of this program");
      // The swarm layout makes services: the engine must be a manager of a swarm (docs/swarm.md).
      if (settings.swarm) {
        const info = docker("info", "--format", "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}");
        const [state, manager] = info.stdout.trim().split(" ");
        if (info.status !== 0 || state !== "active" || manager !== "true") {
          const what = state === "active" ? "a swarm worker, not a manager" : `not in a swarm (${state || "no answer"})`;
          problems.push(
            `Invalid config "${project}:swarm": the layout needs a swarm manager, and the Docker engine at ${dockerHost} is ${what}; ` +
              "run `docker swarm init` there (and `docker swarm join` on the other machines), or point dockerHost at a manager (docs/swarm.md); nothing was created.",
          );
        } else {
          const nodes = docker("node", "ls", "--format", "{{.Status}} {{.Availability}}");
          const ready = nodes.stdout.split("\n").filter((line) => line.trim() === "Ready Active").length;
          if (nodes.status === 0 && ready > 0) facts.swarmNodes = ready;
        }
      }
      const prefix = settings.namePrefix;
      const names = dockerNames(prefix);
      // What this stack will make: the proxy layout's users volume and writer only with the proxy.
      const proxyOnly =
        settings.tlsTermination === "registry"
          ? ([] as const)
          : ([
              ["container", names.proxyContainer],
              ["container", names.usersWriterContainer],
              ["volume", names.usersVolume],
            ] as const);
      // Each mirror's container and cache volume (the program makes them; none may be someone else's).
      const mirrorObjects = settings.mirrors.flatMap((m) => {
        const n = mirrorDockerNames(prefix, m.name);
        return [
          ["container", n.container],
          ["volume", n.volume],
        ] as const;
      });
      for (const [kind, name] of [
        ["container", names.registryContainer],
        ...proxyOnly,
        ...mirrorObjects,
        ["network", names.network],
      ] as const) {
        const label = ownerOf(kind, name);
        if (label !== undefined && label !== owner) {
          bad(
            "namePrefix",
            prefix,
            `a Docker ${kind} named ${name} already exists on the Docker host and belongs to ${whose(label)}; choose another namePrefix, or remove the ${kind} if it is not needed`,
          );
        }
      }
      if (settings.tlsTermination === "registry" && ownerOf("container", names.proxyContainer) === owner) {
        if (!update) {
          notes.push(
            `switching to the registry layout: this stack's nginx container ${names.proxyContainer} holds port ${settings.port}; the up stops it before the registry publishes the port`,
          );
        } else {
          // Stopped, not removed: a stopped container holds no port, and Pulumi deletes it at the end.
          const stopped = docker("stop", names.proxyContainer);
          if (stopped.status !== 0) {
            bad(
              "tlsTermination",
              settings.tlsTermination,
              `this stack's nginx container ${names.proxyContainer} holds port ${settings.port} and could not be stopped (${lastLine(stopped.stderr)}); nothing was created`,
            );
          } else {
            notes.push(
              `switching to the registry layout: stopped this stack's nginx container ${names.proxyContainer}, so that the registry can publish port ${settings.port}; the up deletes it`,
            );
          }
        }
      }

      const volume = names.volume;
      const volumeLabel = ownerOf("volume", volume);
      if (volumeLabel !== undefined && volumeLabel !== owner) {
        if (settings.adoptExistingVolume) {
          notes.push(
            `using the existing volume ${volume} (it belongs to ${whose(volumeLabel)}) as the registry's data, as adoptExistingVolume asks; destroy will keep it`,
          );
        } else {
          bad(
            "namePrefix",
            prefix,
            `a Docker volume named ${volume} already exists on the Docker host and belongs to ${whose(volumeLabel)}; to use its data as this registry's, set adoptExistingVolume to true (destroy then never deletes it), else choose another namePrefix`,
          );
        }
      }

      // This stack's users writer: one that failed (a run that failed with it) runs again now.
      if (settings.tlsTermination !== "registry") {
        const writer = docker(
          "container",
          "inspect",
          "--format",
          `{{.State.Status}}|{{.State.ExitCode}}|{{.Id}}|{{index .Config.Labels "${STACK_LABEL}"}}|{{index .Config.Labels "${RERUN_OF_LABEL}"}}`,
          names.usersWriterContainer,
        );
        const [status, exitCode, containerId, label, rerunOf] = writer.stdout
          .trim()
          .split("|")
          .map((v) => v.replace(/^<no value>$/, ""));
        if (writer.status === 0 && label === owner) {
          if (status === "exited" && exitCode !== "0") {
            facts.usersWriterRerunOf = containerId.slice(0, 12);
            notes.push(`the users writer ${names.usersWriterContainer} failed in an earlier run (exit ${exitCode}): it runs again`);
          } else if (rerunOf) {
            facts.usersWriterRerunOf = rerunOf;
          }
        }
      }

      // Without the proxy nginxImage is not used, so it need not be there.
      const imageKeys = settings.tlsTermination === "registry" ? (["registryImage"] as const) : (["registryImage", "nginxImage"] as const);
      for (const key of imageKeys) {
        const image = docker("image", "inspect", "--format", "{{json .Config.Entrypoint}} {{json .Config.Cmd}}", settings[key]);
        if (image.status !== 0) {
          if (!settings.pullImages) {
            bad(
              key,
              settings[key],
              "is not on the Docker host, and pullImages is false, so it is not pulled; load it there (docker load) or build the local images (npm run deploy -- --local-images)",
            );
          }
          continue;
        }
        const wrong = wrongImageKind(key, image.stdout.trim());
        if (wrong) bad(key, settings[key], wrong);
      }

      // Containers publishing the port (and each mirror's) are asked of the engine, wherever it
      // is; a program holding a port, and the address, can be tried only on this machine.
      const ports = [
        { key: "port", port: settings.port },
        ...settings.mirrors.map((m, i) => ({ key: `mirrors[${i}].port`, port: m.port })),
      ];
      for (const { key, port } of ports) {
        // name and stack label of each container publishing the port; this stack's own may hold it.
        const publishers = docker("ps", "--filter", `publish=${port}`, "--format", `{{.Names}} {{.Label "${STACK_LABEL}"}}`)
          .stdout.split("\n")
          .filter(Boolean)
          .map((line) => line.split(" "));
        const others = publishers.filter(([, label]) => label !== owner).map(([n]) => n);
        if (others.length > 0) {
          bad(key, port, `is already published on the Docker host by container ${others.join(", ")}`);
        } else if (!localEngine) {
          if (key === "port") {
            notes.push(
              `the Docker engine at ${dockerHost} is not this machine's socket: whether another program holds port ` +
                `${settings.port}${ports.length > 1 ? " (or a mirror's)" : ""} there, and whether listenAddress ${settings.listenAddress} is an address of that host, cannot be ` +
                "checked from here (a conflict fails the container's start instead)",
            );
          }
        } else if (publishers.length === 0) {
          const probe = run(
            process.execPath,
            [
              "-e",
              `
            const s = require("net").createServer();
            s.on("error", (e) => { process.stdout.write(e.code); process.exit(1); });
            s.listen(${port}, ${JSON.stringify(settings.listenAddress)}, () => s.close());`,
            ],
            10_000,
          );
          const code = probe.stdout.trim();
          if (code === "EADDRINUSE") bad(key, port, `is already in use on ${settings.listenAddress} on the Docker host`);
          if (code === "EADDRNOTAVAIL" && key === "port")
            bad("listenAddress", settings.listenAddress, "is not an address of the Docker host");
        }
      }
    }
  }

  settings.clients.forEach((client, i) => {
    const key = plainPrivateKey(client);
    if (key === undefined) return; // settings not made by parseSettings
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "private-registry-ssh-"));
    try {
      const keyFile = path.join(dir, "key");
      fs.writeFileSync(keyFile, withNewline(key), { mode: 0o600 });
      const r = run(
        "ssh",
        [
          "-F",
          "/dev/null",
          "-i",
          keyFile,
          "-p",
          String(client.port),
          "-o",
          "BatchMode=yes",
          "-o",
          "IdentitiesOnly=yes",
          "-o",
          "ConnectTimeout=10",
          "-o",
          "ServerAliveInterval=5",
          "-o",
          "ServerAliveCountMax=2",
          "-o",
          "StrictHostKeyChecking=no",
          "-o",
          "UserKnownHostsFile=/dev/null",
          "-o",
          "LogLevel=ERROR",
          `${client.user}@${client.host}`,
          client.sudo ? "sudo -n true" : "true",
        ],
        SSH_TIMEOUT_MS,
      );
      if (r.errorCode === "ENOENT") {
        notes.push("no ssh client on this machine: the client hosts' logins were not checked");
      } else if (r.status !== 0) {
        const why =
          r.errorCode === "ETIMEDOUT" ? `no answer within ${SSH_TIMEOUT_MS / 1000} s` : lastLine(r.stderr) || `exit status ${r.status}`;
        const what =
          client.sudo && /sudo/.test(why) ? "passwordless sudo (sudo -n) does not work" : "cannot log in over SSH with the configured key";
        bad(`clients[${i}].host`, client.host, `${what} as ${client.user} on port ${client.port} (${why})`);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
  return { problems, notes: [...new Set(notes)], facts };
}
