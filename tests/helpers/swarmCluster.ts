// A Docker swarm for tests on one machine: this machine's engine as the manager, worker
// engines in swarm-node containers (scripts/local-images.txt) on a Docker network the
// caller made, and a SeaweedFS container as the S3 server the workers' services store in.
// Everything is named `${id}-swarm-...` and labelled private-registry-swarm=ID, so that a
// later run with the same id removes what a killed one left. Traffic goes only to this
// engine, to loopback and to these containers.
// This machine's engine has no ip_vs: no ingress routing mesh and no VIPs, so services on
// this swarm need --endpoint-mode dnsrr and host-mode published ports.
import { spawnSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { localImages } from "../../lib/localImages";
import { docker, dockerQuiet } from "./e2e";

export interface SwarmNode {
  /** The node's container, or "" for this machine's engine. */
  name: string;
  /** The address the node advertises to the swarm. */
  address: string;
  nodeId: string;
}

export interface S3Server {
  container: string;
  /** http://IP:8333 */
  endpoint: string;
  region: string;
  bucket: string;
  accessKey: string;
  secretKey: string;
}

export interface ExecResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export interface ServiceContainer {
  /** The node's container name, "" for this machine's engine. */
  node: string;
  id: string;
  /** docker ps's State: running, exited, created... */
  state: string;
}

export interface SwarmCluster {
  /** This machine's engine, advertising the gateway address of the network. */
  manager: SwarmNode;
  /** swarm-node containers on the network, joined as workers. */
  workers: SwarmNode[];
  /** A SeaweedFS container on the network, its bucket created. */
  s3: S3Server;
  /** docker CLI against a worker's engine (docker exec NAME docker ...). */
  onWorker(i: number, args: string[], input?: string): ExecResult;
  /** Containers of the swarm service `service` on every node (this engine first, then the workers). */
  serviceContainers(service: string): ServiceContainer[];
  /** docker kill of the worker's container: a power cut. */
  killWorker(i: number): void;
  /** Starts the worker's container again and waits until its node is Ready in `docker node ls`. */
  startWorker(i: number): Promise<void>;
  /** Lists the keys under a prefix of the bucket (to prove data lives in S3). */
  s3List(prefix: string): string[];
  /** Workers leave, their containers and volumes go, this engine leaves the swarm, S3 goes. */
  teardown(): Promise<void>;
}

export interface SwarmClusterOptions {
  /** Name prefix of everything made: `${id}-swarm-...`. */
  id: string;
  /** An existing Docker network for the workers and the S3 server. */
  network: string;
  /** Its gateway address: this machine's address there, which the manager advertises. */
  gateway: string;
  /** Worker engines (default 1). */
  workers?: number;
  /** Local images to load into each worker (docker save | docker load). */
  images: string[];
}

const LABEL = "private-registry-swarm";
const S3_PORT = 8333;
const S3_REGION = "us-east-1";
const S3_BUCKET = "registry";
const WAIT_MS = 90_000;

// What --privileged gives, but CAP_SYS_RESOURCE: the engine's capability bounding set lacks
// it on these machines, and --privileged fails there ("unable to apply caps"). The
// image's start-dockerd makes /sys and the cgroups writable, as --privileged mounts them.
const NODE_RUN_FLAGS = [
  "--cap-add",
  "ALL",
  "--cap-drop",
  "SYS_RESOURCE",
  "--security-opt",
  "seccomp=unconfined",
  "--security-opt",
  "apparmor=unconfined",
  "--security-opt",
  "systempaths=unconfined",
  "--device-cgroup-rule",
  "a *:* rwm",
];

function run(args: string[], input?: string | number): ExecResult {
  const stdin = typeof input === "number" ? input : "pipe";
  const r = spawnSync("docker", args, {
    input: typeof input === "string" ? input : undefined,
    stdio: [stdin, "pipe", "pipe"],
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
    timeout: 300_000,
  });
  return { status: r.status, stdout: r.stdout ?? "", stderr: `${r.stderr ?? ""}${r.error ? r.error.message : ""}` };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `ready` until it holds; throws with `what` and the last `detail()` after timeoutMs. */
async function waitFor(what: string, ready: () => boolean, detail: () => string = () => "", timeoutMs = WAIT_MS): Promise<void> {
  const start = Date.now();
  for (;;) {
    if (ready()) return;
    if (Date.now() - start > timeoutMs)
      throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}${detail() ? `: ${detail()}` : ""}`);
    await sleep(250);
  }
}

function ipToInt(ip: string): number {
  const parts = ip.split(".").map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) throw new Error(`not an IPv4 address: ${ip}`);
  return ((parts[0] << 24) | (parts[1] << 16) | (parts[2] << 8) | parts[3]) >>> 0;
}
const intToIp = (n: number) => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");

/**
 * `count` free addresses of the network's IPv4 subnet, from its top down (away from the
 * addresses Docker hands out from the bottom), or undefined when the network has no subnet
 * of its own (then Docker picks, and a restarted worker may come back elsewhere).
 */
function fixedAddresses(network: string, gateway: string, count: number): string[] | undefined {
  const inspect = run(["network", "inspect", "--format", "{{json .IPAM.Config}}|{{json .Containers}}", network]);
  if (inspect.status !== 0) throw new Error(`docker network inspect ${network}: ${inspect.stderr.trim()}`);
  const [configJson, containersJson] = inspect.stdout.trim().split("|");
  const configs = (JSON.parse(configJson) ?? []) as { Subnet?: string; Gateway?: string }[];
  const subnet = configs.map((c) => c.Subnet ?? "").find((s) => /^\d+\.\d+\.\d+\.\d+\/\d+$/.test(s));
  if (!subnet) return undefined;
  const [base, bitsText] = subnet.split("/");
  const bits = Number(bitsText);
  if (bits > 28) return undefined;
  const size = 2 ** (32 - bits);
  const first = ipToInt(base) & ~(size - 1) & 0xffffffff;
  const containers = (JSON.parse(containersJson) ?? {}) as Record<string, { IPv4Address?: string }>;
  const used = new Set([
    gateway,
    ...configs.map((c) => c.Gateway ?? ""),
    ...Object.values(containers).map((c) => (c.IPv4Address ?? "").split("/")[0]),
  ]);
  const free: string[] = [];
  for (let n = first + size - 2; n > first && free.length < count; n--) {
    const ip = intToIp(n >>> 0);
    if (!used.has(ip)) free.push(ip);
  }
  if (free.length < count) throw new Error(`network ${network} (${subnet}) has no ${count} free addresses`);
  return free;
}

/** An S3 key's percent-encoding as SigV4 wants it (RFC 3986 unreserved characters kept). */
const s3Encode = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

const xmlUnescape = (s: string) =>
  s
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&quot;|&#34;/g, '"')
    .replace(/&apos;|&#39;/g, "'")
    .replace(/&amp;/g, "&");

/** A signed (SigV4) request to the S3 server with curl; curl's own flags first, the URL last. */
function s3Curl(s3: S3Server, curlArgs: string[]): ExecResult & { code: number } {
  const r = spawnSync(
    "curl",
    [
      "-sS",
      "--max-time",
      "20",
      "--aws-sigv4",
      `aws:amz:${s3.region}:s3`,
      "--user",
      `${s3.accessKey}:${s3.secretKey}`,
      "-w",
      "\n%{http_code}",
      ...curlArgs,
    ],
    { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 },
  );
  const out = r.stdout ?? "";
  const cut = out.lastIndexOf("\n");
  return {
    status: r.status,
    stdout: out.slice(0, cut),
    stderr: `${r.stderr ?? ""}${r.error ? r.error.message : ""}`,
    code: Number(out.slice(cut + 1)),
  };
}

/** Keys under `prefix` in the bucket (ListObjectsV2, every page). */
function listKeys(s3: S3Server, prefix: string): string[] {
  const keys: string[] = [];
  let token: string | undefined;
  for (;;) {
    // Query parameters in SigV4's canonical order (sorted), values encoded: curl 7.88 signs the query as written.
    const query = [...(token ? [`continuation-token=${s3Encode(token)}`] : []), "list-type=2", `prefix=${s3Encode(prefix)}`].join("&");
    const r = s3Curl(s3, [`${s3.endpoint}/${s3.bucket}?${query}`]);
    if (r.status !== 0 || r.code !== 200)
      throw new Error(`S3 ListObjectsV2 ${s3.bucket}/${prefix}: HTTP ${r.code} ${r.stderr.trim()} ${r.stdout.trim()}`);
    for (const m of r.stdout.matchAll(/<Key>([^<]*)<\/Key>/g)) keys.push(xmlUnescape(m[1]));
    const next = /<NextContinuationToken>([^<]*)<\/NextContinuationToken>/.exec(r.stdout);
    if (!/<IsTruncated>true<\/IsTruncated>/.test(r.stdout) || !next) return keys;
    token = xmlUnescape(next[1]);
  }
}

/** This engine's swarm state: LocalNodeState, whether it is a manager, and its node id. */
function swarmState(): { state: string; manager: boolean; nodeId: string } {
  const [state, control, nodeId] = docker(
    "info",
    "--format",
    "{{.Swarm.LocalNodeState}}|{{.Swarm.ControlAvailable}}|{{.Swarm.NodeID}}",
  ).split("|");
  return { state, manager: control === "true", nodeId };
}

/** Removes this id's containers and volumes (by label): what a killed earlier run left, or this run's. */
function removeLabelled(id: string): void {
  const containers = run(["ps", "-aq", "--filter", `label=${LABEL}=${id}`])
    .stdout.split("\n")
    .filter(Boolean);
  if (containers.length > 0) dockerQuiet("rm", "-f", "-v", ...containers);
  const volumes = run(["volume", "ls", "-q", "--filter", `label=${LABEL}=${id}`])
    .stdout.split("\n")
    .filter(Boolean);
  if (volumes.length > 0) dockerQuiet("volume", "rm", "-f", ...volumes);
}

/**
 * Makes this engine a swarm manager (advertising `gateway`), starts `workers` worker engines
 * on `network` with `images` loaded and joins them, and starts an S3 server there with its
 * bucket. Refuses when this engine is in a swarm that no earlier run with this id made.
 */
export async function startSwarmCluster(o: SwarmClusterOptions): Promise<SwarmCluster> {
  const { id, network, gateway } = o;
  const workerCount = o.workers ?? 1;
  if (!/^[a-z0-9][a-z0-9_.-]*$/.test(id)) throw new Error(`startSwarmCluster: id "${id}" must be lowercase letters, digits, _ . -`);
  if (!Number.isInteger(workerCount) || workerCount < 1)
    throw new Error(`startSwarmCluster: workers must be 1 or more, not ${workerCount}`);
  ipToInt(gateway);
  const images = localImages();
  const prefix = `${id}-swarm`;

  // This engine: in no swarm, or in the one a killed run with this id made (its node label says so).
  const before = swarmState();
  if (before.state !== "inactive") {
    const mark = before.manager ? run(["node", "inspect", "--format", `{{index .Spec.Labels "${LABEL}"}}`, "self"]).stdout.trim() : "";
    if (mark !== id) {
      throw new Error(
        `startSwarmCluster: this Docker engine is already in a swarm (state ${before.state}, node ${before.nodeId || "?"}) ` +
          `that no earlier run with id "${id}" made${mark ? ` (its node is labelled ${LABEL}=${mark})` : ""}; ` +
          "it may be in use: leave it yourself (docker swarm leave --force) if it is not",
      );
    }
    dockerQuiet("swarm", "leave", "--force");
    await waitFor("this engine to leave the earlier run's swarm", () => swarmState().state === "inactive");
  }
  removeLabelled(id);

  const madeGwbridge = run(["network", "inspect", "docker_gwbridge"]).status !== 0;
  const addresses = fixedAddresses(network, gateway, workerCount + 1);
  const workerNames = Array.from({ length: workerCount }, (_, i) => `${prefix}-w${i + 1}`);
  const s3Name = `${prefix}-s3`;
  const workers: SwarmNode[] = [];
  let managerId = "";

  const onWorker = (i: number, args: string[], input?: string): ExecResult => {
    if (!workerNames[i]) throw new Error(`no worker ${i} (there are ${workerNames.length})`);
    return run(["exec", ...(input !== undefined ? ["-i"] : []), workerNames[i], "docker", ...args], input);
  };
  const engineUp = (i: number) => onWorker(i, ["version", "--format", "{{.Server.Version}}"]).status === 0;
  const nodeReady = (i: number) =>
    onWorker(i, ["info", "--format", "{{.Swarm.LocalNodeState}}"]).stdout.trim() === "active" &&
    run(["node", "inspect", "--format", "{{.Status.State}}", workers[i].nodeId]).stdout.trim() === "ready";

  const teardown = async (): Promise<void> => {
    // Best effort: a worker that is down (killed, never started) has nothing to leave.
    for (const name of workerNames) run(["exec", name, "docker", "swarm", "leave", "--force"]);
    for (const name of [...workerNames, s3Name]) dockerQuiet("rm", "-f", "-v", name);
    removeLabelled(id);
    const state = swarmState();
    if (state.state !== "inactive") {
      const mark = state.manager ? run(["node", "inspect", "--format", `{{index .Spec.Labels "${LABEL}"}}`, "self"]).stdout.trim() : "";
      if (mark === id || state.nodeId === managerId) {
        dockerQuiet("swarm", "leave", "--force");
        await waitFor("this engine to leave the swarm", () => swarmState().state === "inactive");
      }
    }
    // swarm init made docker_gwbridge; it stays after leaving. Removed when this run made it and nothing uses it.
    if (madeGwbridge) {
      const users = run(["network", "inspect", "--format", "{{len .Containers}}", "docker_gwbridge"]).stdout.trim();
      if (users === "0") dockerQuiet("network", "rm", "docker_gwbridge");
    }
  };

  try {
    // The manager: this engine, on the network's gateway address.
    docker("swarm", "init", "--advertise-addr", gateway, "--listen-addr", `${gateway}:2377`);
    managerId = swarmState().nodeId;
    docker("node", "update", "--label-add", `${LABEL}=${id}`, managerId);

    // The worker engines.
    for (const [i, name] of workerNames.entries()) {
      const volume = `${name}-docker`;
      docker("volume", "create", "--label", `${LABEL}=${id}`, volume);
      docker(
        "run",
        "-d",
        "--name",
        name,
        "--hostname",
        name,
        "--label",
        `${LABEL}=${id}`,
        "--network",
        network,
        ...(addresses ? ["--ip", addresses[i]] : []),
        "--restart",
        "no",
        ...NODE_RUN_FLAGS,
        "-v",
        `${volume}:/var/lib/docker`,
        images["swarm-node"],
      );
    }
    for (const i of workerNames.keys()) {
      await waitFor(
        `the engine in ${workerNames[i]}`,
        () => engineUp(i),
        () => run(["logs", "--tail", "5", workerNames[i]]).stderr.trim(),
      );
    }

    // The images, saved once and loaded into every worker.
    if (o.images.length > 0) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${prefix}-images-`));
      try {
        const archive = path.join(dir, "images.tar");
        docker("save", "-o", archive, ...o.images);
        for (const i of workerNames.keys()) {
          const fd = fs.openSync(archive, "r");
          try {
            const load = run(["exec", "-i", workerNames[i], "docker", "load", "-q"], fd);
            if (load.status !== 0) throw new Error(`docker load into ${workerNames[i]}: ${load.stderr.trim()}`);
          } finally {
            fs.closeSync(fd);
          }
        }
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    }

    // Join them as workers.
    const token = docker("swarm", "join-token", "-q", "worker");
    for (const [i, name] of workerNames.entries()) {
      const address = addresses
        ? addresses[i]
        : docker("inspect", "--format", `{{(index .NetworkSettings.Networks "${network}").IPAddress}}`, name);
      const join = onWorker(i, ["swarm", "join", "--token", token, "--advertise-addr", address, `${gateway}:2377`]);
      if (join.status !== 0) throw new Error(`docker swarm join in ${name}: ${join.stderr.trim()}`);
      const nodeId = onWorker(i, ["info", "--format", "{{.Swarm.NodeID}}"]).stdout.trim();
      workers.push({ name, address, nodeId });
    }
    for (const i of workerNames.keys()) {
      await waitFor(
        `node ${workerNames[i]} Ready in docker node ls`,
        () => nodeReady(i),
        () => docker("node", "ls"),
      );
    }

    // The S3 server: SeaweedFS, one admin identity with random keys (its AWS_* fallback).
    const accessKey = `AK${crypto.randomBytes(9).toString("hex").toUpperCase()}`;
    const secretKey = crypto.randomBytes(30).toString("base64").replace(/[+/=]/g, "x");
    docker("volume", "create", "--label", `${LABEL}=${id}`, `${s3Name}-data`);
    docker(
      "run",
      "-d",
      "--name",
      s3Name,
      "--label",
      `${LABEL}=${id}`,
      // In this machine's network namespace, on the network's gateway address only: the
      // manager's tasks leave through docker_gwbridge, and Docker's isolation rules drop
      // what they would send to a container on another bridge; an address of this machine
      // is reached through its own input path by them and by the workers alike.
      "--network",
      "host",
      "--restart",
      "no",
      "-e",
      `AWS_ACCESS_KEY_ID=${accessKey}`,
      "-e",
      `AWS_SECRET_ACCESS_KEY=${secretKey}`,
      "-v",
      `${s3Name}-data:/data`,
      images.seaweedfs,
      "weed",
      "server",
      `-ip=${gateway}`,
      `-ip.bind=${gateway}`,
      "-dir=/data",
      "-s3",
      "-master.telemetry=false",
    );
    const s3Ip = gateway;
    const s3: S3Server = {
      container: s3Name,
      endpoint: `http://${s3Ip}:${S3_PORT}`,
      region: S3_REGION,
      bucket: S3_BUCKET,
      accessKey,
      secretKey,
    };
    let last: ExecResult & { code: number } = { status: null, stdout: "", stderr: "", code: 0 };
    await waitFor(
      `S3 at ${s3.endpoint}`,
      () => (last = s3Curl(s3, [`${s3.endpoint}/`])).code === 200,
      () => `HTTP ${last.code} ${last.stderr.trim()} ${run(["logs", "--tail", "5", s3Name]).stderr.trim()}`,
    );
    const created = s3Curl(s3, ["-X", "PUT", `${s3.endpoint}/${s3.bucket}`]);
    if (created.code !== 200)
      throw new Error(`S3 CreateBucket ${s3.bucket}: HTTP ${created.code} ${created.stderr.trim()} ${created.stdout.trim()}`);
    listKeys(s3, "");

    const manager: SwarmNode = { name: "", address: gateway, nodeId: managerId };
    return {
      manager,
      workers,
      s3,
      onWorker,
      serviceContainers: (service) => {
        const filter = ["ps", "-a", "--filter", `label=com.docker.swarm.service.name=${service}`, "--format", "{{.ID}} {{.State}}"];
        const parse = (node: string, out: string) =>
          out
            .split("\n")
            .filter(Boolean)
            .map((line) => {
              const [cid, state] = line.split(" ");
              return { node, id: cid, state };
            });
        return [...parse("", run(filter).stdout), ...workerNames.flatMap((name, i) => parse(name, onWorker(i, filter).stdout))];
      },
      killWorker: (i) => {
        if (!workerNames[i]) throw new Error(`no worker ${i} (there are ${workerNames.length})`);
        docker("kill", workerNames[i]);
      },
      startWorker: async (i) => {
        if (!workerNames[i]) throw new Error(`no worker ${i} (there are ${workerNames.length})`);
        docker("start", workerNames[i]);
        await waitFor(
          `the engine in ${workerNames[i]}`,
          () => engineUp(i),
          () => run(["logs", "--tail", "5", workerNames[i]]).stderr.trim(),
        );
        await waitFor(
          `node ${workerNames[i]} Ready again`,
          () => nodeReady(i),
          () => docker("node", "ls"),
        );
      },
      s3List: (p) => listKeys(s3, p),
      teardown,
    };
  } catch (e) {
    await teardown().catch(() => undefined);
    throw e;
  }
}
