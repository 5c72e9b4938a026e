// The one fixture of every real-deployment suite (after Pulumi's ProgramTest and
// pulumi-eks's `getJSBaseOptions().With({...})`): a deployment described by what the
// test needs — client hosts (root or a sudo login, trustOs, restart policy), a DNS
// name, extra host networks, a config patch — set up and torn down by jest hooks
// it registers itself.
//
// What it hands out and keeps apart:
// - a 10.251.N.0/24 network no other Docker network uses, and a host port nothing
//   listens on, per deployment (the gateway, the host's side, is the address
//   clients dial: outside 127/8, so TLS is really verified);
// - a file backend, a random passphrase, and the stack files in a scratch "project
//   shell" (a copy of Pulumi.yaml whose `main` points back at this program), so no
//   suite writes `Pulumi.<stack>.yaml` beside the real Pulumi.yaml;
// - names `<tag><pid>-…`; leftovers of an earlier killed run of the same tag are
//   removed first.
// It gives back `up(patch)` with the recorded plan, `preview`, `expectNoChanges()`,
// `destroy()`, clients with push/pull/login helpers that verify TLS with the CA the
// program installed, an HTTPS helper that verifies with the deployed CA, and a
// teardown that destroys what is left and fails the suite if `destroy` left any
// container, network or volume of the stack behind (beyond what the test declared).
// For the suites that need more: another machine's engine (spec.remoteEngine: a TLS
// listener in front of this one), an sshd published on loopback (ClientSpec.loopbackSsh),
// the engine restarted as by a crash or a boot (restartEngine, clientsBack), the
// project's npm scripts run against the stack (npmRun), and stacks dropped (dropStack).
import * as crypto from "crypto";
import * as fs from "fs";
import * as https from "https";
import * as os from "os";
import * as path from "path";
import { ChildProcess, execFileSync, spawn, spawnSync } from "child_process";
import { ConfigMap, EngineEvent, LocalWorkspace, OutputMap, PreviewResult, Stack, UpResult } from "@pulumi/pulumi/automation";
import { localImages } from "../../lib/localImages";
import { containerSh, docker, dockerQuiet, planRecorder, Plan, ShResult, waitForSsh } from "./e2e";
import { MAKE_IMAGE_SH } from "./ociImage";
import { makeEcCa, makeEcCert } from "./pki";
import { startSwarmCluster, SwarmCluster } from "./swarmCluster";

export const PROJECT_DIR = path.join(__dirname, "..", "..");
export const IMAGES = localImages();
const CONFIG_PREFIX = "private-registry:";

/** A config value: plain text, `{ secret }` (set on stdin, never on a command line), or null to remove the key. */
export type ConfigValue = string | number | boolean | { secret: string } | null;
export type ConfigPatch = Record<string, ConfigValue>;

export interface ClientSpec {
  /** The SSH login: "root" (default) or another user, who gets passwordless sudo in the image. */
  user?: string;
  /** The stack's clients[i].sudo and .trustOs. */
  sudo?: boolean;
  trustOs?: boolean;
  /** `docker run --restart always`: the host comes back after the engine restarts. */
  restartAlways?: boolean;
  /** false: a registry client only (sleep, no sshd), not in the stack's `clients`. */
  ssh?: boolean;
  /** Also publish its sshd on this machine's loopback (127.0.0.1, a port Docker picks): Client.loopbackPort. */
  loopbackSsh?: boolean;
}

export interface DeploymentSpec {
  /** Short tag of the suite: names are `<tag><pid>-…`. */
  tag: string;
  clients?: ClientSpec[];
  /** The DNS name clients dial besides the IP: dnsNames[0], resolved to the gateway inside the clients. */
  dnsName?: string;
  /** More names the clients resolve to the gateway (not in the config). */
  extraHostNames?: string[];
  /** Also resolve dnsName on this machine (an /etc/hosts line, removed afterwards). */
  hostsLine?: boolean;
  /** How many more host networks to create (their gateways are other addresses of this machine). */
  extraNetworks?: number;
  /** The local registry image: distribution 2.x ("registry") or 3.x ("registry3"). Default "registry". */
  registry?: "registry" | "registry3";
  /** Keys to add, change (or, with null, remove) on top of the fixture's base config. */
  config?: ConfigPatch | ((d: Deployment) => ConfigPatch);
  /** Run the first `up` in beforeAll (default true); false leaves the stack created and configured. */
  up?: boolean;
  /** Names (suffixes after `<id>-`) that may remain after a successful destroy, e.g. an adopted volume. */
  survivesDestroy?: string[];
  /** Called after the clients start and before the stack is created (e.g. to make a volume to adopt). */
  beforeStack?: (d: Deployment) => void | Promise<void>;
  /**
   * Deploy to this machine's engine as to another machine's: behind a TLS listener that
   * demands a client certificate (socat on 127.0.0.1, a port of its own), with dockerHost
   * tcp://127.0.0.1:PORT and the client TLS material (secrets) in the base config. See
   * Deployment.engine.
   */
  remoteEngine?: boolean;
  /**
   * The swarm layout: this machine's engine as a swarm manager, `workers` engines in
   * containers on the clients' network joined to it (with the local images loaded), and an
   * S3 server (SeaweedFS) the test starts; the base config sets `swarm` (the bucket, the
   * keys as secrets), listenAddress 0.0.0.0 and every worker's address in ipAddresses.
   * See Deployment.swarm (tests/helpers/swarmCluster.ts).
   */
  swarm?: { workers: number };
}

export interface UpOutcome {
  result: UpResult;
  outputs: OutputMap;
  plan: Plan;
  /** What Pulumi printed. */
  output: string;
}

export interface Client {
  name: string;
  ip: string;
  user: string;
  /** `sh -c script` in the host, as root. */
  sh(script: string, stdin?: string): ShResult;
  /** `skopeo login` with the user's password (stdin), verifying TLS with the installed CA. */
  login(user?: string, endpoint?: string): ShResult;
  /** Makes an image of random layers and pushes it; returns its digest. Fails the test if the push fails. */
  push(repo: string, layers?: number, bytes?: number, endpoint?: string): string;
  /** Pulls `repo` whole (skopeo checks every blob's digest); returns the digest, or throws with what skopeo said. */
  pull(repo: string, endpoint?: string): string;
  /** Every path under /etc/docker/certs.d with its SHA-256 prefix: the host's side, file for file. */
  certsD(): string;
  /** With ClientSpec.loopbackSsh: the port on 127.0.0.1 where its sshd is published. */
  loopbackPort?: number;
}

export interface HttpsAnswer {
  status: number;
  headers: Record<string, unknown>;
  body: string;
}

export class Deployment {
  readonly id: string;
  readonly workDir: string;
  /** The scratch project folder that holds the stack files. */
  readonly shellDir: string;
  readonly sshKeyFile: string;
  readonly env: Record<string, string>;
  subnet = "";
  gateway = "";
  port = 0;
  readonly extraGateways: string[] = [];
  readonly clients: Client[] = [];
  /** With spec.remoteEngine: the TLS listener in front of this machine's engine. */
  engine?: RemoteEngine;
  /** With spec.swarm: the swarm, its worker engines and the S3 server. */
  swarm?: SwarmCluster;
  private engineRestarted = false;
  stack!: Stack;
  /** The first `up`'s outcome (when spec.up is not false). */
  first!: UpOutcome;
  /** The latest `up`'s outputs. */
  outputs: OutputMap = {};
  private config: ConfigPatch = {};
  private destroyed = false;
  private readonly stacks: Stack[] = [];
  private readonly networks: string[] = [];

  constructor(readonly spec: DeploymentSpec) {
    this.id = `${spec.tag}${process.pid % 100000}`;
    this.workDir = fs.mkdtempSync(path.join(os.tmpdir(), `${spec.tag}-deployment-`));
    this.shellDir = path.join(this.workDir, "project");
    this.sshKeyFile = path.join(this.workDir, "id_ed25519");
    this.env = scratchPulumiEnv(path.join(this.workDir, "state"));
  }

  /** host:port of the gateway (the address in ipAddresses[0]). */
  get endpoint(): string {
    return `${this.gateway}:${this.port}`;
  }
  get nameEndpoint(): string {
    return `${this.spec.dnsName}:${this.port}`;
  }
  get passwords(): Record<string, string> {
    return this.outputs.credentials?.value ?? {};
  }
  get caPem(): string {
    return this.outputs.caCertPem?.value ?? "";
  }
  /** The stack's own container, network and volume names. */
  names = (suffix: string) => `${this.id}-${suffix}`;

  /** The base config: the gateway, the port, the local images, one user, 2048-bit RSA, the clients. */
  baseConfig(): ConfigPatch {
    const base: ConfigPatch = {
      "ipAddresses[0]": this.gateway,
      port: this.port,
      listenAddress: this.gateway,
      "users[0]": "admin",
      rsaBits: 2048,
      registryImage: IMAGES[this.spec.registry ?? "registry"],
      nginxImage: IMAGES.nginx,
      pullImages: false,
      namePrefix: this.id,
      keepDataOnDestroy: false,
    };
    if (this.spec.dnsName) base["dnsNames[0]"] = this.spec.dnsName;
    const key = fs.readFileSync(this.sshKeyFile, "utf8");
    let i = 0;
    for (const [n, c] of (this.spec.clients ?? []).entries()) {
      if (c.ssh === false) continue;
      base[`clients[${i}].host`] = this.clients[n].ip;
      if (c.user && c.user !== "root") base[`clients[${i}].user`] = c.user;
      if (c.sudo) base[`clients[${i}].sudo`] = true;
      if (c.trustOs) base[`clients[${i}].trustOs`] = true;
      base[`clients[${i}].privateKey`] = { secret: key };
      i++;
    }
    if (this.engine) Object.assign(base, this.engine.config());
    if (this.swarm) {
      const s3 = this.swarm.s3;
      base.listenAddress = "0.0.0.0";
      this.swarm.workers.forEach((w, i) => {
        base[`ipAddresses[${i + 1}]`] = w.address;
      });
      Object.assign(base, {
        "swarm.s3Endpoint": s3.endpoint,
        "swarm.s3Bucket": s3.bucket,
        "swarm.s3Region": s3.region,
        "swarm.s3AccessKey": { secret: s3.accessKey },
        "swarm.s3SecretKey": { secret: s3.secretKey },
      });
    }
    return base;
  }

  /** Sets config keys (null removes one); secrets go on stdin. */
  async setConfig(patch: ConfigPatch, stack: Stack = this.stack): Promise<void> {
    const plain: ConfigMap = {};
    for (const [key, value] of Object.entries(patch)) {
      const full = `${CONFIG_PREFIX}${key}`;
      if (value === null) await stack.removeConfig(full, true).catch(() => undefined);
      else if (typeof value === "object") this.setSecret(stack, full, value.secret);
      else plain[full] = { value: String(value) };
    }
    if (Object.keys(plain).length > 0) await stack.setAllConfig(plain, true);
    if (stack === this.stack) this.config = { ...this.config, ...patch };
  }

  // The Automation API passes values as arguments of `pulumi config set-all`, where the
  // process list shows them: a secret goes to `pulumi config set --secret` on stdin.
  private setSecret(stack: Stack, key: string, value: string): void {
    const r = spawnSync("pulumi", ["config", "set", "--secret", "--path", "--stack", stack.name, "--non-interactive", key], {
      cwd: this.shellDir,
      env: { ...process.env, ...this.env },
      input: value,
      encoding: "utf8",
    });
    if (r.status !== 0) throw new Error(`pulumi config set --secret ${key} failed: ${r.stderr}`);
  }

  /** `pulumi up` (after applying `patch`): fails the test unless it succeeds. `options.replace`: URNs to replace. */
  async up(patch: ConfigPatch = {}, stack: Stack = this.stack, options: { replace?: string[] } = {}): Promise<UpOutcome> {
    await this.setConfig(patch, stack);
    const recorder = planRecorder();
    let output = "";
    const result = await stack.up({
      ...options,
      onOutput: (o) => {
        output += o;
      },
      onEvent: recorder.onEvent,
    });
    expect(result.summary.result).toBe("succeeded");
    if (stack === this.stack) {
      this.outputs = result.outputs;
      this.destroyed = false;
    }
    return { result, outputs: result.outputs, plan: recorder.plan(), output };
  }

  /** `pulumi up` expected to fail: what Pulumi printed (the error's message included). */
  async failingUp(patch: ConfigPatch = {}, stack: Stack = this.stack): Promise<{ output: string; plan: Plan }> {
    await this.setConfig(patch, stack);
    const recorder = planRecorder();
    let output = "";
    try {
      await stack.up({
        onOutput: (o) => {
          output += o;
        },
        onEvent: recorder.onEvent,
      });
    } catch (e) {
      return { output: `${output}\n${(e as Error).message}`, plan: recorder.plan() };
    }
    throw new Error(`the up was expected to fail and succeeded:\n${output}`);
  }

  async preview(stack: Stack = this.stack): Promise<{ result: PreviewResult; plan: Plan }> {
    const recorder = planRecorder();
    const result = await stack.preview({ onEvent: (e: EngineEvent) => recorder.onEvent(e) });
    return { result, plan: recorder.plan() };
  }

  /** A preview that must plan nothing but `same` steps. */
  async expectNoChanges(stack: Stack = this.stack): Promise<void> {
    const { result } = await this.preview(stack);
    const changes = Object.entries(result.changeSummary).filter(([op, n]) => op !== "same" && n > 0);
    expect(changes).toEqual([]);
  }

  async destroy(stack: Stack = this.stack): Promise<string> {
    let output = "";
    const result = await stack.destroy({
      onOutput: (o) => {
        output += o;
      },
    });
    expect(result.summary.result).toBe("succeeded");
    if (stack === this.stack) this.destroyed = true;
    return output;
  }

  /** Another stack of this program in the same backend and project shell (torn down with this one). */
  async otherStack(suffix: string, patch: ConfigPatch): Promise<Stack> {
    const stack = await LocalWorkspace.createStack({ stackName: `${this.id}${suffix}`, workDir: this.shellDir }, { envVars: this.env });
    this.stacks.push(stack);
    await this.setConfig(patch, stack);
    return stack;
  }

  /**
   * The stack's resources as `pulumi stack export --show-secrets` gives them (the CLI
   * decrypting with this deployment's passphrase); fails the test if the export fails.
   * Read a secret output with `revealed`.
   */
  exportedResources(stack: Stack = this.stack): ExportedResource[] {
    const plain = spawnSync("pulumi", ["stack", "export", "--show-secrets", "--stack", stack.name], {
      cwd: this.shellDir,
      env: { ...process.env, ...this.env },
      encoding: "utf8",
    });
    expect(plain.status).toBe(0);
    return JSON.parse(plain.stdout).deployment.resources;
  }

  /** `npm run pulumi -- ARGS` as a user runs it, with this deployment's backend and passphrase. */
  npmPulumi(args: string[]): { status: number | null; stdout: string; stderr: string } {
    const r = spawnSync("npm", ["run", "--silent", "pulumi", "--", ...args], {
      cwd: PROJECT_DIR,
      env: { ...process.env, ...this.env },
      encoding: "utf8",
      timeout: 300_000,
    });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  /**
   * `npm run SCRIPT -- ARGS` as a user runs it (deploy, gc, pulumi), with this deployment's
   * backend and passphrase. The scripts read the stack's config beside the real Pulumi.yaml,
   * so the stack's file is copied there for the time of the call only (what the script
   * changed in it is copied back), and removed again whatever happens.
   */
  npmRun(
    script: string,
    args: string[],
    o: { stack?: Stack; timeout?: number } = {},
  ): { status: number | null; stdout: string; stderr: string } {
    const file = `Pulumi.${(o.stack ?? this.stack).name}.yaml`;
    const inShell = path.join(this.shellDir, file);
    const inProject = path.join(PROJECT_DIR, file);
    if (fs.existsSync(inProject)) throw new Error(`${inProject} exists: not this deployment's to overwrite`);
    fs.copyFileSync(inShell, inProject);
    try {
      const r = spawnSync("npm", ["run", "--silent", script, "--", ...args], {
        cwd: PROJECT_DIR,
        env: { ...process.env, ...this.env },
        encoding: "utf8",
        timeout: o.timeout ?? 600_000,
      });
      return { status: r.status, stdout: r.stdout, stderr: r.stderr };
    } finally {
      if (fs.existsSync(inProject)) {
        fs.copyFileSync(inProject, inShell);
        fs.rmSync(inProject);
      }
    }
  }

  /** Removes a stack made with otherStack (`stack rm --force`) and forgets it: the teardown no longer destroys it. */
  async dropStack(stack: Stack): Promise<void> {
    await stack.workspace.removeStack(stack.name, { force: true });
    const i = this.stacks.indexOf(stack);
    if (i >= 0) this.stacks.splice(i, 1);
  }

  /**
   * This machine's Docker engine stopped as by a crash or a power cut (SIGKILL of dockerd, its
   * containerd and every container's shim at once) or by a shutdown (SIGTERM to dockerd), then
   * started again as a boot would (scripts/ensure-docker-engine.sh, nothing else run). Fails
   * the test unless the engine starts again; returns when it was stopped (Date.now()). The
   * teardown makes sure the engine runs whatever happened.
   */
  async restartEngine(signal: "SIGKILL" | "SIGTERM"): Promise<number> {
    const pidOf = (file: string) => Number((fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "").trim()) || 0;
    const alive = (pid: number) =>
      pid > 0 && fs.existsSync(`/proc/${pid}`) && !/^\d+ \(\S+\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, "utf8"));
    const dockerd = pidOf("/var/run/docker.pid");
    if (dockerd === 0) throw new Error("no /var/run/docker.pid: not an engine this machine started by hand");
    this.engineRestarted = true;
    const stoppedAt = Date.now();
    let stopFailed: Error | undefined;
    try {
      if (signal === "SIGKILL") {
        const shims = spawnSync("pgrep", ["-f", "containerd-shim"], { encoding: "utf8" }).stdout.split("\n").filter(Boolean).map(Number);
        for (const pid of [dockerd, pidOf("/var/run/docker/containerd/containerd.pid"), ...shims].filter((p) => p > 0)) {
          try {
            process.kill(pid, "SIGKILL");
          } catch {
            /* already gone */
          }
        }
      } else {
        process.kill(dockerd, "SIGTERM");
      }
      while (alive(dockerd)) {
        if (Date.now() - stoppedAt > 60_000) throw new Error(`dockerd did not stop after ${signal}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    } catch (e) {
      stopFailed = e as Error;
    }
    const start = ensureDockerEngine();
    if (stopFailed) throw stopFailed;
    expect({ engineStart: start.status, log: start.status === 0 ? "" : start.stderr }).toEqual({ engineStart: 0, log: "" });
    return stoppedAt;
  }

  /** Waits until every client host answers `docker exec` again (restart-always hosts come back with the engine); with `ssh`, until its sshd takes the key too. */
  async clientsBack(o: { ssh?: boolean; limitMs?: number } = {}): Promise<void> {
    for (const [i, c] of this.clients.entries()) {
      for (
        const until = Date.now() + (o.limitMs ?? 30_000);
        containerSh(c.name, "true").status !== 0;
        await new Promise((r) => setTimeout(r, 200))
      ) {
        if (Date.now() > until) throw new Error(`client ${c.name} did not come back`);
      }
      if (o.ssh && this.spec.clients?.[i]?.ssh !== false) waitForSsh(this.sshKeyFile, c.user, c.ip);
    }
  }

  /** GET over HTTPS, verifying the server with the deployed CA (or `ca`). */
  https(
    pathName: string,
    o: { auth?: string; host?: string; port?: number; ca?: string; servername?: string; timeoutMs?: number } = {},
  ): Promise<HttpsAnswer> {
    return new Promise((resolve, reject) => {
      const req = https.get(
        {
          host: o.host ?? this.gateway,
          port: o.port ?? this.port,
          path: pathName,
          ca: o.ca ?? this.caPem,
          agent: false,
          timeout: o.timeoutMs ?? 10_000,
          servername: o.servername,
          headers: o.auth ? { Authorization: `Basic ${Buffer.from(o.auth).toString("base64")}` } : {},
        },
        (res) => {
          let body = "";
          res.setEncoding("utf8");
          res.on("data", (chunk) => {
            body += chunk;
          });
          res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        },
      );
      req.on("timeout", () => req.destroy(new Error(`GET ${pathName}: no answer in ${(o.timeoutMs ?? 10_000) / 1000} s`)));
      req.on("error", reject);
    });
  }

  // --- set-up and teardown -------------------------------------------------------

  async setUp(): Promise<void> {
    removeLeftovers(new RegExp(`^${this.spec.tag}[0-9]+-`));
    withoutHostsLine(this.spec.tag);
    writeProjectShell(this.shellDir);
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", this.sshKeyFile]);
    this.port = freePort();
    for (let n = 0; n <= (this.spec.extraNetworks ?? 0); n++) {
      const subnet = freeSubnet();
      const gateway = subnet.replace(/0\/24$/, "1");
      const name = this.names(n === 0 ? "clients" : `alt${n}`);
      docker("network", "create", "--subnet", subnet, "--gateway", gateway, "--label", `private-registry-test=${this.spec.tag}`, name);
      this.networks.push(name);
      if (n === 0) {
        this.subnet = subnet;
        this.gateway = gateway;
      } else this.extraGateways.push(gateway);
    }
    if (this.spec.hostsLine && this.spec.dnsName) {
      fs.appendFileSync("/etc/hosts", `${this.gateway} ${this.spec.dnsName} # private-registry test ${this.spec.tag}\n`);
    }
    if (this.spec.remoteEngine) this.engine = await RemoteEngine.start(this.id, this.workDir, this.gateway);
    if (this.spec.swarm) {
      this.swarm = await startSwarmCluster({
        id: this.id,
        network: this.names("clients"),
        gateway: this.gateway,
        workers: this.spec.swarm.workers,
        images: [IMAGES[this.spec.registry ?? "registry"], IMAGES.nginx],
      });
    }
    this.startClients();
    await this.spec.beforeStack?.(this);
    this.stack = await LocalWorkspace.createStack({ stackName: this.id, workDir: this.shellDir }, { envVars: this.env });
    this.stacks.push(this.stack);
    const patch = typeof this.spec.config === "function" ? this.spec.config(this) : (this.spec.config ?? {});
    await this.setConfig({ ...this.baseConfig(), ...patch });
    if (this.spec.up !== false) this.first = await this.up();
  }

  private startClients(): void {
    const publicKey = fs.readFileSync(`${this.sshKeyFile}.pub`, "utf8").trim();
    const hostNames = [this.spec.dnsName, ...(this.spec.extraHostNames ?? [])].filter((n): n is string => !!n);
    (this.spec.clients ?? []).forEach((c, i) => {
      const name = this.names(`client-${i + 1}`);
      const ip = this.subnet.replace(/0\/24$/, String(21 + i));
      const user = c.user ?? "root";
      docker(
        "run",
        "-d",
        "--name",
        name,
        "--network",
        this.names("clients"),
        "--ip",
        ip,
        ...(c.restartAlways ? ["--restart", "always"] : []),
        ...(c.loopbackSsh ? ["-p", "127.0.0.1::22"] : []),
        ...hostNames.flatMap((h) => ["--add-host", `${h}:${this.gateway}`]),
        "--label",
        `private-registry-test=${this.spec.tag}`,
        ...(c.ssh === false
          ? ["--entrypoint", "sleep", IMAGES["ssh-client-host"], "infinity"]
          : ["-e", `AUTHORIZED_KEY=${publicKey}`, ...(user !== "root" ? ["-e", `SSH_USER=${user}`] : []), IMAGES["ssh-client-host"]]),
      );
      this.clients.push(this.client(name, ip, user));
      if (c.loopbackSsh) this.clients[i].loopbackPort = Number(docker("port", name, "22").split("\n")[0].split(":").pop());
    });
    (this.spec.clients ?? []).forEach((c, i) => {
      if (c.ssh !== false) waitForSsh(this.sshKeyFile, this.clients[i].user, this.clients[i].ip);
    });
  }

  private client(name: string, ip: string, user: string): Client {
    const sh = (script: string, stdin = "") => containerSh(name, script, stdin);
    const dir = (repo: string) => `/tmp/img-${repo.replace(/\W/g, "_")}`;
    return {
      name,
      ip,
      user,
      sh,
      login: (who = "admin", endpoint = this.endpoint) =>
        sh(`skopeo login --username ${who} --password-stdin ${endpoint}`, this.passwords[who]),
      push: (repo, layers = 2, bytes = 64 << 10, endpoint = this.endpoint) => {
        const made = sh(`${MAKE_IMAGE_SH}\nmake_image ${dir(repo)} ${layers} ${bytes}`);
        expect(made.status).toBe(0);
        const digest = made.out.trim();
        const push = sh(
          `skopeo copy --digestfile /tmp/pushed-digest oci:${dir(repo)}:latest docker://${endpoint}/${repo} >/dev/null && cat /tmp/pushed-digest`,
        );
        expect({ ...push, out: push.out.trim() }).toEqual({ status: 0, out: digest });
        return digest;
      },
      pull: (repo, endpoint = this.endpoint) => {
        const r = sh(
          `rm -rf /tmp/pulled && skopeo copy --digestfile /tmp/pulled-digest docker://${endpoint}/${repo} oci:/tmp/pulled:x >/dev/null && cat /tmp/pulled-digest`,
        );
        if (r.status !== 0) throw new Error(`pull of ${endpoint}/${repo} from ${name} failed: ${r.out}`);
        return r.out.trim();
      },
      certsD: () =>
        sh(
          "cd /etc/docker/certs.d 2>/dev/null && find . -mindepth 1 | sort | while read -r f; do " +
            'if [ -f "$f" ]; then echo "$f $(sha256sum <"$f" | cut -c1-16)"; else echo "$f/"; fi; done',
        ).out,
    };
  }

  /** The stack's containers, networks and volumes that exist now (the fixture's own clients and networks excluded). */
  existing(): string[] {
    const own = new Set([...this.clients.map((c) => c.name), ...this.networks]);
    const prefixes = this.stacks.map((s) => `${s.name}-`);
    const list = (...args: string[]) =>
      docker(...args)
        .split("\n")
        .filter((n) => n && !own.has(n) && prefixes.some((p) => n.startsWith(p)));
    return [
      ...list("ps", "-a", "--format", "{{.Names}}"),
      ...list("network", "ls", "--format", "{{.Name}}"),
      ...list("volume", "ls", "--format", "{{.Name}}"),
    ].sort();
  }

  async tearDown(): Promise<void> {
    const problems: string[] = [];
    // After restartEngine: whatever happened, the engine runs again (the destroy needs it).
    if (this.engineRestarted && ensureDockerEngine().status !== 0) problems.push("the Docker engine does not start again");
    for (const stack of this.stacks.reverse()) {
      const wasDestroyed = stack === this.stack && this.destroyed;
      if (!wasDestroyed) {
        try {
          await stack.destroy();
        } catch (e) {
          problems.push(`destroy of ${stack.name} failed: ${(e as Error).message.split("\n").slice(-5).join(" ")}`);
        }
      }
      await stack.workspace.removeStack(stack.name, { force: true }).catch(() => undefined);
    }
    this.engine?.stop();
    if (this.swarm) {
      // The swarm is the test's own: after a destroy no service, secret or config may remain.
      const remaining = ["service", "secret", "config"].flatMap((kind) =>
        docker(kind, "ls", "--format", "{{.Name}}")
          .split("\n")
          .filter(Boolean)
          .map((n) => `${kind} ${n}`),
      );
      if (problems.length === 0 && remaining.length > 0) problems.push(`destroy left ${remaining.join(", ")}`);
      // A removed service's task containers go a moment after it (nginx finishing up).
      for (const until = Date.now() + 40_000; this.existing().length > 0 && Date.now() < until;) {
        await new Promise((r) => setTimeout(r, 500));
      }
      await this.swarm.teardown().catch((e: Error) => problems.push(`swarm teardown: ${e.message}`));
    }
    // Only a clean destroy is judged: after a failed one the suite has already failed.
    const allowed = new Set((this.spec.survivesDestroy ?? []).map((s) => this.names(s)));
    const left = this.existing().filter((n) => !allowed.has(n));
    withoutHostsLine(this.spec.tag);
    removeLeftovers(new RegExp(`^${this.id}[a-z]*-`));
    fs.rmSync(this.workDir, { recursive: true, force: true });
    if (problems.length === 0 && left.length > 0) problems.push(`destroy left ${left.join(", ")}`);
    if (problems.length > 0) throw new Error(problems.join("\n"));
  }
}

/**
 * A real deployment for the test file that calls this (at its top level): set up in
 * beforeAll (the first `up` included unless spec.up is false), torn down in afterAll.
 */
export function deployment(spec: DeploymentSpec): Deployment {
  if (process.env.PRIVATE_REGISTRY_FAST_PROJECT) {
    throw new Error(`${expect.getState().testPath}: this suite deploys for real; list it in REAL_SUITES in jest.config.js`);
  }
  const d = new Deployment(spec);
  beforeAll(() => d.setUp(), 900_000);
  afterAll(() => d.tearDown(), 900_000);
  return d;
}

/** A copy of Pulumi.yaml whose program is this one: stack files live beside it, not in the project. */
export function writeProjectShell(dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
  const project = fs.readFileSync(path.join(PROJECT_DIR, "Pulumi.yaml"), "utf8");
  if (/^main:/m.test(project)) throw new Error("Pulumi.yaml sets main: the project shell would need to combine it");
  const main = path.relative(dir, PROJECT_DIR);
  fs.writeFileSync(path.join(dir, "Pulumi.yaml"), project.replace(/^(name: .*)$/m, `$1\nmain: ${main}`));
}

/** Containers (with their anonymous volumes), networks and volumes whose names match. */
export function removeLeftovers(pattern: RegExp): void {
  const matching = (...args: string[]) =>
    docker(...args)
      .split("\n")
      .filter((n) => n && pattern.test(n));
  const containers = matching("ps", "-a", "--format", "{{.Names}}");
  if (containers.length) dockerQuiet("rm", "-f", "-v", ...containers);
  for (const network of matching("network", "ls", "--format", "{{.Name}}")) dockerQuiet("network", "rm", network);
  for (const volume of matching("volume", "ls", "--format", "{{.Name}}")) dockerQuiet("volume", "rm", volume);
}

function withoutHostsLine(tag: string): void {
  const hosts = fs.readFileSync("/etc/hosts", "utf8");
  const kept = hosts
    .split("\n")
    .filter((line) => !line.endsWith(`# private-registry test ${tag}`))
    .join("\n");
  if (kept !== hosts) fs.writeFileSync("/etc/hosts", kept);
}

/** A 10.251.N.0/24 that no Docker network uses (N from a random start, so parallel runs rarely meet). */
export function freeSubnet(): string {
  const used = docker("network", "ls", "-q")
    .split("\n")
    .filter(Boolean)
    .flatMap((id) => docker("network", "inspect", "--format", "{{range .IPAM.Config}}{{.Subnet}} {{end}}", id).split(" "));
  const start = crypto.randomInt(10, 250);
  for (let i = 0; i < 240; i++) {
    const subnet = `10.251.${10 + ((start - 10 + i) % 240)}.0/24`;
    if (!used.includes(subnet)) return subnet;
  }
  throw new Error("no free 10.251.N.0/24 for a test network");
}

/** A port from 15000-19999 that nothing on this machine listens on and no container publishes. */
export function freePort(): number {
  const published = docker("ps", "-a", "--format", "{{.Ports}}");
  const start = crypto.randomInt(15000, 20000);
  for (let i = 0; i < 5000; i++) {
    const port = 15000 + ((start - 15000 + i) % 5000);
    if (published.includes(`:${port}->`)) continue;
    if (canBind(port)) return port;
  }
  throw new Error("no free port in 15000-19999");
}

function canBind(port: number): boolean {
  // A synchronous probe in a child: node's listen is asynchronous.
  const r = spawnSync(process.execPath, [
    "-e",
    `const s=require("net").createServer();s.once("error",()=>process.exit(1));s.listen(${port},"0.0.0.0",()=>s.close(()=>process.exit(0)))`,
  ]);
  return r.status === 0;
}

/** Runs scripts/ensure-docker-engine.sh: starts this machine's engine unless it answers. */
function ensureDockerEngine(): { status: number | null; stderr: string } {
  const r = spawnSync("bash", [path.join(PROJECT_DIR, "scripts/ensure-docker-engine.sh")], { encoding: "utf8" });
  return { status: r.status, stderr: r.stderr };
}

/**
 * This machine's Docker engine behind a TLS listener that demands a client certificate
 * (socat on 127.0.0.1 in front of /var/run/docker.sock), as another machine's engine would
 * be: its own CA, a server certificate for 127.0.0.1 and the network's gateway, a client
 * certificate it signs, and a client certificate from another CA that it must refuse.
 */
export class RemoteEngine {
  readonly pkiDir: string;
  readonly logFile: string;
  port = 0;
  private socat?: ChildProcess;

  private constructor(workDir: string) {
    this.pkiDir = path.join(workDir, "engine-pki");
    this.logFile = path.join(workDir, "socat.log");
  }

  /** The dockerHost: tcp://127.0.0.1:PORT. */
  get host(): string {
    return `tcp://127.0.0.1:${this.port}`;
  }

  /** A file of its PKI: engine-ca.pem, engine-server.pem/.key, engine-client.pem/.key, other-ca.pem, other-client.pem/.key. */
  pem(file: string): string {
    return fs.readFileSync(path.join(this.pkiDir, file), "utf8");
  }

  /** dockerHost and the client TLS material (secrets) with `client`'s certificate. */
  config(client = "engine-client"): ConfigPatch {
    return {
      dockerHost: this.host,
      dockerTlsCaCert: { secret: this.pem("engine-ca.pem") },
      dockerTlsCert: { secret: this.pem(`${client}.pem`) },
      dockerTlsKey: { secret: this.pem(`${client}.key`) },
    };
  }

  /** Connections the listener accepted so far (its -d -d log). */
  acceptedConnections(): number {
    return (fs.existsSync(this.logFile) ? (fs.readFileSync(this.logFile, "utf8").match(/accepting connection from/g) ?? []) : []).length;
  }

  static async start(id: string, workDir: string, gateway: string): Promise<RemoteEngine> {
    execFileSync(path.join(PROJECT_DIR, "scripts/ensure-debian-packages.sh"), ["socat=socat", "openssl=openssl"], { stdio: "inherit" });
    const e = new RemoteEngine(workDir);
    fs.mkdirSync(e.pkiDir);
    // EC P-256 (fast); two days.
    const makeCa = (name: string) =>
      makeEcCa(e.pkiDir, { key: `${name}.key`, cert: `${name}.pem`, commonName: `${id} ${name}`, keyUsage: "keyCertSign" });
    const makeCert = (name: string, ca: string, ext: string) => makeEcCert(e.pkiDir, name, ca, `${id} ${name}`, ext);
    makeCa("engine-ca");
    makeCert("engine-server", "engine-ca", `subjectAltName=IP:127.0.0.1,IP:${gateway}\nextendedKeyUsage=serverAuth\n`);
    makeCert("engine-client", "engine-ca", "extendedKeyUsage=clientAuth\n");
    makeCa("other-ca");
    makeCert("other-client", "other-ca", "extendedKeyUsage=clientAuth\n");
    e.port = freePort();
    const log = fs.openSync(e.logFile, "w");
    e.socat = spawn(
      "socat",
      [
        "-d",
        "-d",
        `OPENSSL-LISTEN:${e.port},bind=127.0.0.1,reuseaddr,fork,cert=${e.pkiDir}/engine-server.pem,key=${e.pkiDir}/engine-server.key,cafile=${e.pkiDir}/engine-ca.pem,verify=1`,
        "UNIX-CONNECT:/var/run/docker.sock",
      ],
      { stdio: ["ignore", "ignore", log] },
    );
    fs.closeSync(log);
    const listening = () => /listening on/.test(fs.readFileSync(e.logFile, "utf8"));
    for (let i = 0; i < 50 && !listening(); i++) await new Promise((r) => setTimeout(r, 100));
    if (!listening()) {
      e.stop();
      throw new Error(`socat does not listen on 127.0.0.1:${e.port}: ${fs.readFileSync(e.logFile, "utf8")}`);
    }
    return e;
  }

  stop(): void {
    this.socat?.kill();
    this.socat = undefined;
  }
}

/**
 * The environment of a Pulumi run of its own: a file backend in `stateDir` (created), a
 * random passphrase, no update check, no plugin downloads (the plugins are installed).
 */
export function scratchPulumiEnv(stateDir: string): Record<string, string> {
  fs.mkdirSync(stateDir, { recursive: true });
  return {
    PULUMI_BACKEND_URL: `file://${stateDir}`,
    PULUMI_CONFIG_PASSPHRASE: crypto.randomBytes(16).toString("hex"),
    PULUMI_SKIP_UPDATE_CHECK: "true",
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
  };
}

export interface ExportedResource {
  type: string;
  urn: string;
  outputs: Record<string, unknown>;
}

/** An exported value in clear: --show-secrets keeps the secret envelope and puts the JSON-encoded value in `plaintext`. */
export function revealed(value: unknown): unknown {
  const envelope = value as { plaintext?: string };
  return typeof envelope === "object" && envelope?.plaintext !== undefined ? JSON.parse(envelope.plaintext) : value;
}
