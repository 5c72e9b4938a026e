// Carries out the program's recorded resource inputs with real tools, for the
// harness deployment test: openssl for certificates, bcryptjs for htpasswd
// hashes, the docker CLI for networks, volumes and containers, ssh and sh for
// the client commands. It stands in for the four provider plugins, which cannot
// be had on machines without Pulumi's download site; it does not stand in for
// the engine's diff/replace logic, which only a real `pulumi up` exercises.
import { execFileSync, spawnSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import * as bcrypt from "bcryptjs";
import * as pulumi from "@pulumi/pulumi";
import { plain } from "./mocks";

export interface Realized {
  type: string;
  name: string;
  inputs: Record<string, any>;
}

export interface RealizeOptions {
  workDir: string;
  /** File with the SSH private key the client hosts accept, as `ssh -i` wants it. */
  sshKeyFile: string;
}

function run(cmd: string, args: string[], input?: string): string {
  const result = spawnSync(cmd, args, { input, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  if (result.status !== 0) {
    throw new Error(`${cmd} ${args.slice(0, 3).join(" ")}… failed (${result.status}): ${result.stderr}${result.stdout}`);
  }
  return result.stdout;
}

export const docker = (...args: string[]) => run("docker", args).trim();

const ALPHANUMERIC = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/** Applies recorded resources for real, keeping what it made so it can be torn down. */
export class Realizer {
  readonly realized: Realized[] = [];
  private files = 0;

  constructor(private readonly options: RealizeOptions) {}

  /** A Pulumi mocks implementation that realizes each custom resource. */
  mocks(): pulumi.runtime.Mocks {
    return {
      newResource: async (args) => {
        if (args.custom === false) return { id: `${args.name}-component`, state: {} };
        const inputs = plain(args.inputs);
        const state = { ...inputs, ...(await this.create(args.type, args.name, inputs)) };
        this.realized.push({ type: args.type, name: args.name, inputs });
        return { id: String(state.id ?? args.name), state };
      },
      call: (args) => args.inputs,
    };
  }

  private file(name: string, content: string, mode = 0o600): string {
    const p = path.join(this.options.workDir, `${++this.files}-${name}`);
    fs.writeFileSync(p, content, { mode });
    return p;
  }

  private openssl(...args: string[]): string {
    return run("openssl", args);
  }

  async create(type: string, name: string, inputs: Record<string, any>): Promise<Record<string, unknown>> {
    switch (type) {
      case "tls:index/privateKey:PrivateKey": {
        const { privateKey } = inputs.algorithm === "RSA"
          ? crypto.generateKeyPairSync("rsa", { modulusLength: inputs.rsaBits })
          : crypto.generateKeyPairSync("ec", { namedCurve: "prime256v1" });
        return { privateKeyPem: privateKey.export({ format: "pem", type: inputs.algorithm === "RSA" ? "pkcs1" : "sec1" }) };
      }
      case "tls:index/selfSignedCert:SelfSignedCert": {
        const key = this.file("ca.key", inputs.privateKeyPem);
        const usages = usageExtensions(inputs.allowedUses, inputs.isCaCertificate);
        const pem = this.openssl("req", "-x509", "-new", "-key", key, "-subj", subject(inputs.subject), "-days",
          String(Math.ceil(inputs.validityPeriodHours / 24)), ...usages.flatMap((u) => ["-addext", u]));
        return { certPem: pem, ...validity(pem) };
      }
      case "tls:index/certRequest:CertRequest": {
        const key = this.file("server.key", inputs.privateKeyPem);
        const sans = [...(inputs.ipAddresses ?? []).map((ip: string) => `IP:${ip}`), ...(inputs.dnsNames ?? []).map((d: string) => `DNS:${d}`)];
        return { certRequestPem: this.openssl("req", "-new", "-key", key, "-subj", subject(inputs.subject), "-addext", `subjectAltName=${sans.join(",")}`) };
      }
      case "tls:index/locallySignedCert:LocallySignedCert": {
        const csr = this.file("server.csr", inputs.certRequestPem);
        const caCert = this.file("ca.crt", inputs.caCertPem);
        const caKey = this.file("ca.key", inputs.caPrivateKeyPem);
        const ext = this.file("ext.cnf", usageExtensions(inputs.allowedUses, false).join("\n") + "\n");
        const pem = this.openssl("x509", "-req", "-in", csr, "-CA", caCert, "-CAkey", caKey, "-set_serial", `0x${crypto.randomBytes(8).toString("hex")}`,
          "-days", String(Math.ceil(inputs.validityPeriodHours / 24)), "-copy_extensions", "copy", "-extfile", ext);
        return { certPem: pem, ...validity(pem) };
      }
      case "random:index/randomPassword:RandomPassword": {
        const result = Array.from(crypto.randomBytes(inputs.length), (b) => ALPHANUMERIC[b % ALPHANUMERIC.length]).join("");
        return { result, bcryptHash: bcrypt.hashSync(result, 10) };
      }
      case "docker:index/network:Network":
        return { id: docker("network", "create", "--driver", inputs.driver ?? "bridge", inputs.name) };
      case "docker:index/volume:Volume":
        return { id: docker("volume", "create", inputs.name), name: inputs.name };
      case "docker:index/container:Container":
        return this.createContainer(inputs);
      case "command:remote:Command":
        return { stdout: this.ssh(inputs.connection, inputs.create, inputs.stdin) };
      case "command:local:Command":
        return { stdout: run("sh", ["-c", inputs.create], inputs.stdin) };
      default:
        throw new Error(`the harness cannot realize ${type}`);
    }
  }

  ssh(connection: { host: string; port: number; user: string }, command: string, stdin?: string): string {
    return run("ssh", ["-i", this.options.sshKeyFile, "-p", String(connection.port), "-o", "BatchMode=yes",
      "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
      `${connection.user}@${connection.host}`, command], stdin ?? "");
  }

  /** docker create + uploads + start, as the docker provider does for these inputs. */
  createContainer(inputs: Record<string, any>): Record<string, unknown> {
    const args = ["create", "--name", inputs.name];
    if (inputs.restart) args.push("--restart", inputs.restart);
    const [firstNetwork, ...otherNetworks] = inputs.networksAdvanced ?? [];
    if (firstNetwork) {
      args.push("--network", firstNetwork.name);
      for (const alias of firstNetwork.aliases ?? []) args.push("--network-alias", alias);
    }
    for (const v of inputs.volumes ?? []) args.push("-v", `${v.volumeName}:${v.containerPath}`);
    for (const e of inputs.envs ?? []) args.push("-e", e);
    for (const p of inputs.ports ?? []) args.push("-p", `${p.ip}:${p.external}:${p.internal}`);
    const hc = inputs.healthcheck;
    if (hc) {
      if (hc.tests[0] !== "CMD-SHELL") throw new Error(`the harness knows only CMD-SHELL health checks, not ${hc.tests[0]}`);
      args.push("--health-cmd", hc.tests[1], "--health-interval", hc.interval, "--health-timeout", hc.timeout,
        "--health-retries", String(hc.retries), "--health-start-period", hc.startPeriod);
    }
    args.push(inputs.image);
    const id = docker(...args);
    for (const n of otherNetworks) docker("network", "connect", ...(n.aliases ?? []).flatMap((a: string) => ["--alias", a]), n.name, id);
    if (inputs.uploads?.length) {
      // One tar with the files at their modes, copied in before the first start.
      const root = fs.mkdtempSync(path.join(this.options.workDir, "uploads-"));
      for (const u of inputs.uploads) {
        const target = path.join(root, u.file);
        fs.mkdirSync(path.dirname(target), { recursive: true });
        fs.writeFileSync(target, u.content);
        fs.chmodSync(target, parseInt(u.permissions ?? "0644", 8));
      }
      const files = inputs.uploads.map((u: { file: string }) => `.${u.file}`);
      const tar = execFileSync("tar", ["-C", root, "--owner=0", "--group=0", "--no-recursion", "-c", ...files], { maxBuffer: 64 * 1024 * 1024 });
      const cp = spawnSync("docker", ["cp", "-", `${id}:/`], { input: tar });
      if (cp.status !== 0) throw new Error(`docker cp failed: ${cp.stderr}`);
    }
    docker("start", id);
    if (inputs.wait && hc) waitHealthy(id, inputs.waitTimeout ?? 60);
    return { id };
  }

  /** Runs each command's delete and removes containers, networks and (unless retained) volumes, newest first. */
  destroy(retainVolumes: boolean): void {
    for (const r of [...this.realized].reverse()) {
      switch (r.type) {
        case "command:remote:Command":
          this.ssh(r.inputs.connection, r.inputs.delete);
          break;
        case "command:local:Command":
          run("sh", ["-c", r.inputs.delete]);
          break;
        case "docker:index/container:Container":
          docker("rm", "-f", r.inputs.name);
          break;
        case "docker:index/network:Network":
          docker("network", "rm", r.inputs.name);
          break;
        case "docker:index/volume:Volume":
          if (!retainVolumes) docker("volume", "rm", r.inputs.name);
          break;
      }
    }
  }

  find(type: string, nameContains: string): Realized {
    const found = this.realized.filter((r) => r.type === type && r.name.includes(nameContains));
    if (found.length !== 1) throw new Error(`expected one ${type} named *${nameContains}*, found ${found.length}`);
    return found[0];
  }
}

export function waitHealthy(container: string, timeoutSeconds: number): void {
  const deadline = Date.now() + timeoutSeconds * 1000;
  for (;;) {
    const status = docker("inspect", "-f", "{{.State.Health.Status}}", container);
    if (status === "healthy") return;
    if (Date.now() > deadline) throw new Error(`${container} is ${status} after ${timeoutSeconds} s: ${docker("logs", "--tail", "20", container)}`);
    execFileSync("sleep", ["1"]);
  }
}

function subject(s: { commonName?: string; organization?: string } = {}): string {
  return [s.organization && `/O=${s.organization}`, s.commonName && `/CN=${s.commonName}`].filter(Boolean).join("") || "/";
}

// The tls provider's allowed_uses names, as openssl extensions.
function usageExtensions(uses: string[], isCa: boolean): string[] {
  const key: Record<string, string> = {
    digital_signature: "digitalSignature", key_encipherment: "keyEncipherment", cert_signing: "keyCertSign", crl_signing: "cRLSign",
  };
  const ext: Record<string, string> = { server_auth: "serverAuth", client_auth: "clientAuth" };
  const keyUsage = uses.filter((u) => key[u]).map((u) => key[u]);
  const extendedKeyUsage = uses.filter((u) => ext[u]).map((u) => ext[u]);
  return [
    `basicConstraints=critical,CA:${isCa ? "TRUE" : "FALSE"}`,
    ...(keyUsage.length ? [`keyUsage=critical,${keyUsage.join(",")}`] : []),
    ...(extendedKeyUsage.length ? [`extendedKeyUsage=${extendedKeyUsage.join(",")}`] : []),
  ];
}

function validity(pem: string): { validityEndTime: string } {
  return { validityEndTime: new crypto.X509Certificate(pem).validTo };
}
