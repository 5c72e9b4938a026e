// Bad configuration through the real Pulumi engine and language host: the
// preview fails with our one message, before any resource is registered.
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as net from "net";

const projectDir = path.join(__dirname, "..");
const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), "engine-test-state-"));
const env = {
  ...process.env,
  PULUMI_BACKEND_URL: `file://${stateDir}`,
  PULUMI_CONFIG_PASSPHRASE: "engine-test-only",
  PULUMI_SKIP_UPDATE_CHECK: "true",
  PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
  PULUMI_HOME: path.join(stateDir, "home"),
};

function pulumi(args: string[], input?: string) {
  const result = spawnSync("pulumi", ["--non-interactive", ...args], { cwd: projectDir, env, input, encoding: "utf8", timeout: 120_000 });
  if (result.error) throw result.error;
  return { status: result.status, output: `${result.stdout}\n${result.stderr}` };
}

let stackCount = 0;
function previewWith(config: [string, string, boolean?][]): { status: number | null; output: string } {
  const stack = `engine-test-${process.pid}-${++stackCount}`;
  // Stack settings in a scratch file, not beside Pulumi.yaml.
  const configFile = ["--config-file", path.join(stateDir, `${stack}.yaml`)];
  const init = pulumi(["stack", "init", stack]);
  expect(init.output).toContain("Created stack");
  for (const [key, value, secret] of config) {
    const args = ["config", "set", "--stack", stack, "--path", `private-registry:${key}`, value, ...(secret ? ["--secret"] : []), ...configFile];
    expect(pulumi(args).status).toBe(0);
  }
  const result = pulumi(["preview", "--stack", stack, ...configFile]);
  pulumi(["stack", "rm", "--yes", "--force", "--stack", stack]);
  return result;
}

afterAll(() => fs.rmSync(stateDir, { recursive: true, force: true }));

describe("pulumi preview with bad configuration (real engine)", () => {
  test.each([
    ["a port outside 1-65535", [["port", "70000"]], 'error: Invalid config "private-registry:port" = "70000": must be a whole number from 1 to 65535.'],
    ["an address that is not an IP", [["ipAddresses[0]", "192.0.2.300"]], 'error: Invalid config "private-registry:ipAddresses" = "192.0.2.300": is not an IPv4 or IPv6 address.'],
    ["an unknown option", [["prot", "443"]], 'error: Invalid config "private-registry:prot" = "[value hidden]": unknown setting'],
    ["a client without a key", [["clients[0].host", "198.51.100.21"]], 'error: Invalid config "private-registry:clients[0].privateKey" = "(missing)": must be a PEM private key'],
  ] as [string, [string, string][], string][])("%s", (_label, config, message) => {
    const { status, output } = previewWith(config);
    expect(status).not.toBe(0);
    expect(output).toContain(message);
    // One message, no stack trace, and nothing of ours was registered.
    expect(output).not.toMatch(/\n\s+at /);
    expect(output).not.toContain("private-registry:pki");
    expect(output).not.toContain("pulumi:providers:");
  });

  test("a secret never shows in the message, a host does", () => {
    const { output } = previewWith([["clients[0].host", "bad host"], ["clients[0].privateKey", "not-a-pem-but-secret", true], ["clientz", "pasted:-----BEGIN OPENSSH PRIVATE KEY-----secret-body", true]]);
    expect(output).toContain('Invalid config "private-registry:clients[0].host" = "bad host": must be an IP address or DNS name.');
    expect(output).not.toContain("not-a-pem-but-secret");
    expect(output).toContain('Invalid config "private-registry:clientz" = "[value hidden]": unknown setting');
    expect(output).not.toContain("secret-body");
  });
});

// What only the hosts can tell, checked by the program before it registers anything:
// a real `pulumi up` that must stop with one message and leave nothing behind.
describe("pulumi up stops before creating anything when the Docker host or a client host says no (real engine)", () => {
  const prefix = `preflight${process.pid % 100000}`;
  const sshKey = path.join(stateDir, "id_ed25519");
  const otherKey = path.join(stateDir, "other_ed25519");
  let sshPort = 0;
  let silentPort = 0;
  let busyPort = 0;
  let closedPort = 0;
  const servers: net.Server[] = [];
  const listen = (server: net.Server, host = "127.0.0.1") =>
    new Promise<number>((resolve) => server.listen(0, host, () => resolve((server.address() as net.AddressInfo).port)));

  beforeAll(async () => {
    spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", sshKey]);
    spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", otherKey]);
    // A real sshd that knows sshKey only, published on loopback.
    const run = spawnSync("docker", ["run", "-d", "--name", `${prefix}-sshd`, "-p", "127.0.0.1::22",
      "-e", `AUTHORIZED_KEY=${fs.readFileSync(`${sshKey}.pub`, "utf8").trim()}`, "private-registry/ssh-client-host:bookworm"], { encoding: "utf8" });
    expect(run.stderr).toBe("");
    sshPort = Number(spawnSync("docker", ["port", `${prefix}-sshd`, "22"], { encoding: "utf8" }).stdout.trim().split(":").pop());
    // Accepts TCP, never says a word: the hang a real client host can cause.
    const silent = net.createServer(() => undefined);
    const busy = net.createServer((s) => s.destroy());
    const closed = net.createServer();
    servers.push(silent, busy);
    [silentPort, busyPort, closedPort] = [await listen(silent), await listen(busy), await listen(closed)];
    await new Promise((r) => closed.close(r));
    spawnSync("docker", ["network", "create", `${prefix}n-net`]);
    spawnSync("docker", ["volume", "create", `${prefix}v-data`]);
    for (let i = 0; i < 50 && spawnSync("ssh", ["-i", sshKey, "-p", String(sshPort), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
      "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "root@127.0.0.1", "true"]).status !== 0; i++) {
      await new Promise((r) => setTimeout(r, 200));
    }
  });
  afterAll(() => {
    servers.forEach((s) => s.close());
    spawnSync("docker", ["rm", "-f", `${prefix}-sshd`]);
    spawnSync("docker", ["network", "rm", `${prefix}n-net`]);
    spawnSync("docker", ["volume", "rm", `${prefix}v-data`]);
  });

  const client = (port: number, keyFile: string) => [
    ["clients[0].host", "127.0.0.1"], ["clients[0].port", String(port)], ["clients[0].privateKey", fs.readFileSync(keyFile, "utf8"), true],
  ] as [string, string, boolean?][];
  const localImages = [["registryImage", "private-registry/registry:2.8.2-debian"], ["nginxImage", "private-registry/nginx:1.22.1-debian"], ["pullImages", "false"]] as [string, string][];
  // A free loopback port, so that only the setting under test is wrong.
  const free = () => [["listenAddress", "127.0.0.1"], ["port", String(closedPort)]] as [string, string][];

  test.each([
    ["a port another program listens on", (p: string) => [["namePrefix", p], ["listenAddress", "127.0.0.1"], ["port", String(busyPort)]],
      (): string => `Invalid config "private-registry:port" = ${busyPort}: is already in use on 127.0.0.1 on the Docker host.`],
    ["a port another container publishes", (p: string) => [["namePrefix", p], ["listenAddress", "127.0.0.1"], ["port", String(sshPort)]],
      (): string => `Invalid config "private-registry:port" = ${sshPort}: is already published on the Docker host by container ${prefix}-sshd.`],
    ["a listenAddress that is not the Docker host's", (p: string) => [["namePrefix", p], ["listenAddress", "192.0.2.1"], ["port", String(busyPort)]],
      (): string => 'Invalid config "private-registry:listenAddress" = "192.0.2.1": is not an address of the Docker host.'],
    ["an image that is not there with pullImages false", (p: string) => [["namePrefix", p], ...free(), ["registryImage", "private-registry/missing:1"], ["pullImages", "false"]],
      (): string => 'Invalid config "private-registry:registryImage" = "private-registry/missing:1": is not on the Docker host, and pullImages is false'],
    ["a network of that name that the stack did not make", (p: string) => [["namePrefix", `${p}n`], ...free(), ...localImages],
      (): string => `Invalid config "private-registry:namePrefix" = "${prefix}n": a Docker network named ${prefix}n-net already exists on the Docker host and belongs to no stack of this program`],
    ["a volume of that name that the stack did not make", (p: string) => [["namePrefix", `${p}v`], ...free(), ...localImages],
      (): string => `Invalid config "private-registry:namePrefix" = "${prefix}v": a Docker volume named ${prefix}v-data already exists on the Docker host and belongs to no stack of this program; to use its data as this registry's, set adoptExistingVolume to true`],
    ["a client host that refuses the connection", (p: string) => [["namePrefix", p], ...free(), ...localImages, ...client(closedPort, sshKey)],
      (): string => `Invalid config "private-registry:clients[0].host" = "127.0.0.1": cannot log in over SSH with the configured key as root on port ${closedPort} (ssh: connect to host 127.0.0.1 port ${closedPort}: Connection refused).`],
    ["a client host that refuses the key", (p: string) => [["namePrefix", p], ...free(), ...localImages, ...client(sshPort, otherKey)],
      (): string => `Invalid config "private-registry:clients[0].host" = "127.0.0.1": cannot log in over SSH with the configured key as root on port ${sshPort} (root@127.0.0.1: Permission denied (publickey).`],
    ["a client host that accepts TCP and never speaks SSH", (p: string) => [["namePrefix", p], ...free(), ...localImages, ...client(silentPort, sshKey)],
      (): string => `Invalid config "private-registry:clients[0].host" = "127.0.0.1": cannot log in over SSH with the configured key as root on port ${silentPort} (`],
  ] as [string, (p: string) => [string, string, boolean?][], () => string][])("%s", (_label, config, message) => {
    const started = Date.now();
    const { status, output, resources } = upWith(config(prefix));
    expect(status).not.toBe(0);
    expect(output).toContain(message());
    expect(Date.now() - started).toBeLessThan(60_000); // bounded, even against a silent host
    expect(output).not.toMatch(/\n\s+at /);
    // Nothing was created: no resource in the state, no container, network or volume of the stack.
    expect(resources.filter((type) => type !== "pulumi:pulumi:Stack")).toEqual([]);
    const made = spawnSync("docker", ["ps", "-a", "--filter", `name=^${prefix}[nv]?-(registry|nginx)$`, "-q"], { encoding: "utf8" }).stdout.trim();
    expect(made).toBe("");
    expect(spawnSync("docker", ["volume", "ls", "-q", "--filter", `name=^${prefix}-data$`], { encoding: "utf8" }).stdout.trim()).toBe("");
  });
});

/** A real `pulumi up` on a scratch stack; returns its output and the types of what the state holds after it. */
function upWith(config: [string, string, boolean?][]): { status: number | null; output: string; resources: string[] } {
  const stack = `engine-test-${process.pid}-${++stackCount}`;
  const configFile = ["--config-file", path.join(stateDir, `${stack}.yaml`)];
  expect(pulumi(["stack", "init", stack]).output).toContain("Created stack");
  for (const [key, value, secret] of config) {
    const args = ["config", "set", "--stack", stack, "--path", `private-registry:${key}`, ...(secret ? ["--secret"] : []), ...configFile, "--", value];
    expect(pulumi(args).status).toBe(0);
  }
  const result = pulumi(["up", "--yes", "--skip-preview", "--stack", stack, ...configFile]);
  const exported = pulumi(["stack", "export", "--stack", stack]);
  const resources = (JSON.parse(exported.output.slice(exported.output.indexOf("{"), exported.output.lastIndexOf("}") + 1)).deployment.resources ?? [])
    .map((r: { type: string }) => r.type);
  pulumi(["stack", "rm", "--yes", "--force", "--stack", stack]);
  return { ...result, resources };
}
