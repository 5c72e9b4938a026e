// Bad configurations through the real `pulumi up` (real engine, real language host,
// real provider plugins, this machine's Docker engine, a real sshd as a client
// host): each must stop with its one message, quickly, and leave nothing behind:
// no resource in the state, no container, network or volume, no file on the
// client host. Then the same on a running stack: a bad change must change nothing.
// With RELIABILITY_REPORT_DIR set, the results are written as a Markdown table
// (scripts/reliability-report.sh puts it into docs/reliability.md).
import { spawnSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import { BadConfigCase, ConfigEntry, Fixtures, hostCases, settingCases, sound } from "./helpers/badConfigCases";
import { containerSh, docker, dockerQuiet } from "./helpers/e2e";

jest.setTimeout(1_800_000);

const projectDir = path.join(__dirname, "..");
const id = `rel${process.pid % 100000}`;
const workDir = fs.mkdtempSync(path.join(os.tmpdir(), "bad-config-test-"));
const env = {
  ...process.env,
  PULUMI_BACKEND_URL: `file://${path.join(workDir, "state")}`,
  PULUMI_CONFIG_PASSPHRASE: crypto.randomBytes(16).toString("hex"),
  PULUMI_SKIP_UPDATE_CHECK: "true",
  PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
  // No pull attempt from the deploy script's image check, should anything call it.
  PRIVATE_REGISTRY_OFFLINE: "1",
};
fs.mkdirSync(path.join(workDir, "state"));

interface Row {
  name: string;
  message: string;
  seconds: number;
  leftBehind: string;
}
const rows: { fresh: Row[]; running: Row[] } = { fresh: [], running: [] };

function pulumi(args: string[], input?: string): { status: number | null; output: string } {
  const r = spawnSync("pulumi", ["--non-interactive", ...args], { cwd: projectDir, env, input, encoding: "utf8", timeout: 300_000 });
  if (r.error) throw r.error;
  return { status: r.status, output: `${r.stdout}\n${r.stderr}` };
}

const configFile = (stack: string) => ["--stack", stack, "--config-file", path.join(workDir, `${stack}.yaml`)];

/**
 * Sets the entries: plain ones in one call, "[]" as a real empty list (as a stack file
 * has it), each secret from standard input (never on a command line).
 */
function setConfig(stack: string, entries: ConfigEntry[]): void {
  const emptyLists = entries.filter(([, v, secret]) => !secret && v === "[]");
  if (emptyLists.length > 0) {
    const json = Object.fromEntries(emptyLists.map(([k]) => [`private-registry:${k}`, { value: "[]", objectValue: [] }]));
    expect(pulumi(["config", "set-all", ...configFile(stack), "--json", JSON.stringify(json)]).output.trim()).toBe("");
  }
  const plain = entries.filter(([, v, secret]) => !secret && v !== "[]");
  if (plain.length > 0) {
    const r = pulumi(["config", "set-all", "--path", ...configFile(stack), ...plain.flatMap(([k, v]) => ["--plaintext", `private-registry:${k}=${v}`])]);
    expect(r.output.trim()).toBe("");
  }
  for (const [k, v] of entries.filter(([, , secret]) => secret)) {
    const r = pulumi(["config", "set", "--secret", "--path", ...configFile(stack), `private-registry:${k}`], v);
    expect(r.status).toBe(0);
  }
}

/** The resources the stack's state holds: urn and id, in order. */
function stateResources(stack: string): string[] {
  const r = pulumi(["stack", "export", "--stack", stack]);
  const deployment = JSON.parse(r.output.slice(r.output.indexOf("{"), r.output.lastIndexOf("}") + 1)).deployment;
  return (deployment.resources ?? []).map((res: { urn: string; id?: string }) => `${res.urn} ${res.id ?? ""}`);
}

/** Every Docker object of this run's stacks (by label or by name), with ids: what a run may have made. */
function dockerObjects(): string[] {
  // Lines trimmed: an empty label leaves a trailing space, which the last line of a listing loses.
  const list = (...args: string[]) => docker(...args).split("\n").map((line) => line.trim())
    .filter((line) => line.includes(id) || line.includes("private-registry/bad-"));
  return [
    ...list("ps", "-a", "--format", '{{.ID}} {{.Names}} {{.Label "private-registry.stack"}}'),
    ...list("network", "ls", "--format", '{{.ID}} {{.Name}} {{.Label "private-registry.stack"}}'),
    ...list("volume", "ls", "--format", '{{.Name}} {{.Label "private-registry.stack"}}'),
  ].sort();
}

/** What the client host holds of ours: files under /etc/docker and in the OS trust store, with their digests. */
function clientFiles(): string {
  return containerSh(`${id}-sshd`,
    "find /etc/docker /usr/local/share/ca-certificates -type f -exec sha256sum {} + 2>/dev/null | sort; true").out.trim();
}

/** The error a user reads: Pulumi prints ours after "error: "; the whole message, up to the blank line. */
function errorMessage(output: string): string {
  const diagnostics = output.slice(output.indexOf("Diagnostics:"));
  const match = /error: ([\s\S]*?)(\n\s*\n|$)/.exec(diagnostics) ?? /error: (.*)/.exec(output);
  return match ? match[1].trim() : "(no error line)";
}

const fixtures: Fixtures = {
  sshPort: 0, sshKey: "", otherKey: "", noSudoUser: "nosudo", sshContainer: `${id}-sshd`, silentPort: 0, busyPort: 0, freePort: 0, refusedPort: 0,
  takenNetworkPrefix: `${id}n`, takenVolumePrefix: `${id}v`, takenContainerPrefix: `${id}c`,
};
const servers: net.Server[] = [];
const listen = (server: net.Server) =>
  new Promise<number>((resolve) => server.listen(0, "127.0.0.1", () => resolve((server.address() as net.AddressInfo).port)));

beforeAll(async () => {
  const keyFile = path.join(workDir, "id_ed25519");
  const otherFile = path.join(workDir, "other_ed25519");
  spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", keyFile]);
  spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", otherFile]);
  fixtures.sshKey = fs.readFileSync(keyFile, "utf8");
  fixtures.otherKey = fs.readFileSync(otherFile, "utf8");
  // A real sshd on loopback: root and a user without sudo accept the key.
  docker("run", "-d", "--name", fixtures.sshContainer, "-p", "127.0.0.1::22", "-e", `AUTHORIZED_KEY=${fs.readFileSync(`${keyFile}.pub`, "utf8").trim()}`,
    "-e", `SSH_USER=${fixtures.noSudoUser}`, "private-registry/ssh-client-host:bookworm");
  fixtures.sshPort = Number(docker("port", fixtures.sshContainer, "22").split("\n")[0].split(":").pop());
  const silent = net.createServer(() => undefined); // accepts TCP, never speaks
  const busy = net.createServer((s) => s.destroy());
  const free = net.createServer();
  const refused = net.createServer();
  servers.push(silent, busy);
  [fixtures.silentPort, fixtures.busyPort, fixtures.freePort, fixtures.refusedPort] =
    [await listen(silent), await listen(busy), await listen(free), await listen(refused)];
  await new Promise((r) => free.close(r));
  await new Promise((r) => refused.close(r));
  // Names taken by things no stack made.
  docker("network", "create", `${fixtures.takenNetworkPrefix}-net`);
  docker("volume", "create", `${fixtures.takenVolumePrefix}-data`);
  docker("create", "--name", `${fixtures.takenContainerPrefix}-registry`, "private-registry/registry:2.8.2-debian");
  waitForSshOnLoopback(keyFile);
  // The user's sudo right goes: sudo -n now fails for that user.
  expect(containerSh(fixtures.sshContainer, "rm /etc/sudoers.d/90-ssh-user").status).toBe(0);
});

function waitForSshOnLoopback(keyFile: string): void {
  for (let tries = 0; tries < 100; tries++) {
    const r = spawnSync("ssh", ["-i", keyFile, "-p", String(fixtures.sshPort), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
      "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=2", "-o", "LogLevel=ERROR", "root@127.0.0.1", "true"]);
    if (r.status === 0) return;
    spawnSync("sleep", ["0.2"]);
  }
  throw new Error("the test's sshd did not come up");
}

afterAll(() => {
  servers.forEach((s) => s.close());
  dockerQuiet("rm", "-f", fixtures.sshContainer, `${fixtures.takenContainerPrefix}-registry`);
  dockerQuiet("network", "rm", `${fixtures.takenNetworkPrefix}-net`);
  dockerQuiet("volume", "rm", `${fixtures.takenVolumePrefix}-data`);
  writeReport();
  fs.rmSync(workDir, { recursive: true, force: true });
});

let stackCount = 0;
describe("a bad configuration on a new stack: one message, nothing created (real pulumi up)", () => {
  test.each([...settingCases, ...hostCases].map((c) => [c.name, c] as [string, BadConfigCase]))("%s", (_name, badCase) => {
    const stack = `bad-${id}-${++stackCount}`;
    expect(pulumi(["stack", "init", stack]).output).toContain("Created stack");
    try {
      setConfig(stack, badCase.config(fixtures));
      const dockerBefore = dockerObjects();
      const clientBefore = clientFiles();
      const started = Date.now();
      const { status, output } = pulumi(["up", "--yes", "--skip-preview", ...configFile(stack)]);
      const seconds = (Date.now() - started) / 1000;
      const message = errorMessage(output);
      const leftBehind = [
        ...stateResources(stack).filter((r) => !r.includes("pulumi:pulumi:Stack")),
        ...dockerObjects().filter((o) => !dockerBefore.includes(o)),
        ...(clientFiles() === clientBefore ? [] : ["files on the client host"]),
      ];
      rows.fresh.push({ name: badCase.name, message, seconds, leftBehind: leftBehind.join(", ") || "nothing" });
      expect(status).not.toBe(0);
      expect(output).toContain(badCase.message(fixtures));
      expect(output).not.toMatch(/\n\s+at /); // no stack trace
      // No secret in the output: the client keys never, whatever the key they sit under.
      expect(output).not.toContain("PRIVATE KEY");
      expect(output).not.toContain("hunter2");
      expect(output).not.toContain("secretbody");
      expect(leftBehind).toEqual([]);
    } finally {
      pulumi(["stack", "rm", "--yes", "--force", "--stack", stack]);
    }
  });
});

describe("a bad change to a running stack: one message, nothing changed (real pulumi up)", () => {
  const stack = `bad-${id}-running`;
  const good = (): ConfigEntry[] => [
    ...sound(fixtures), ["namePrefix", `${id}run`], ["ipAddresses[0]", "127.0.0.1"], ["dnsNames[0]", "localhost"],
    ["clients[0].host", "127.0.0.1"], ["clients[0].port", String(fixtures.sshPort)], ["clients[0].privateKey", fixtures.sshKey, true],
    ["keyAlgorithm", "ECDSA"],
    // The client host is a container whose 127.0.0.1 is its own: it cannot reach the registry.
    ["verifyFromClients", "false"],
  ];
  let containerIds = "";

  beforeAll(() => {
    expect(pulumi(["stack", "init", stack]).output).toContain("Created stack");
    setConfig(stack, good());
    const up = pulumi(["up", "--yes", "--skip-preview", ...configFile(stack)]);
    expect(up.output).toContain("Resources:");
    expect(up.status).toBe(0);
    containerIds = docker("ps", "-a", "-q", "--no-trunc", "--filter", `name=^${id}run-`);
    // The registry, nginx and the users writer (exited).
    expect(containerIds.split("\n")).toHaveLength(3);
  });
  afterAll(() => {
    pulumi(["destroy", "--yes", "--skip-preview", ...configFile(stack)]);
    pulumi(["stack", "rm", "--yes", "--force", "--stack", stack]);
    dockerQuiet("rm", "-f", `${id}run-nginx`, `${id}run-registry`, `${id}run-users-writer`);
    dockerQuiet("network", "rm", `${id}run-net`);
    dockerQuiet("volume", "rm", `${id}run-data`, `${id}run-users`);
  });

  const changes: [string, () => ConfigEntry[], () => string][] = [
    ["the port moved to one another program listens on", () => [["port", String(fixtures.busyPort)]],
      () => `Invalid config "private-registry:port" = ${fixtures.busyPort}: is already in use on 127.0.0.1 on the Docker host.`],
    ["a client host added that refuses the connection", () => [["clients[1].host", "127.0.0.1"], ["clients[1].port", String(fixtures.refusedPort)], ["clients[1].privateKey", fixtures.sshKey, true]],
      () => `Invalid config "private-registry:clients[1].host" = "127.0.0.1": cannot log in over SSH with the configured key as root on port ${fixtures.refusedPort} (ssh: connect to host 127.0.0.1 port ${fixtures.refusedPort}: Connection refused).`],
    ["the registry image changed to one that is not there", () => [["registryImage", "private-registry/missing:2"]],
      () => 'Invalid config "private-registry:registryImage" = "private-registry/missing:2": is not on the Docker host, and pullImages is false'],
    ["a user added with a bad name", () => [["users[0]", "admin"], ["users[1]", "ci:bot"]],
      () => `Invalid config "private-registry:users" = "ci:bot": is not a valid user name`],
    ["the client's key replaced by one the host refuses", () => [["clients[0].privateKey", fixtures.otherKey, true]],
      () => `Invalid config "private-registry:clients[0].host" = "127.0.0.1": cannot log in over SSH with the configured key as root on port ${fixtures.sshPort} (root@127.0.0.1: Permission denied (publickey).`],
  ];

  test.each(changes)("%s", (name, change, message) => {
    const stateBefore = stateResources(stack);
    const clientBefore = clientFiles();
    expect(clientBefore).toContain("/etc/docker/certs.d/127.0.0.1:");
    const file = path.join(workDir, `${stack}.yaml`);
    const saved = fs.readFileSync(file, "utf8");
    try {
      setConfig(stack, change());
      const started = Date.now();
      const { status, output } = pulumi(["up", "--yes", "--skip-preview", ...configFile(stack)]);
      const seconds = (Date.now() - started) / 1000;
      const changed = [
        ...(JSON.stringify(stateResources(stack)) === JSON.stringify(stateBefore) ? [] : ["the state"]),
        ...(docker("ps", "-a", "-q", "--no-trunc", "--filter", `name=^${id}run-`) === containerIds ? [] : ["the containers"]),
        ...(clientFiles() === clientBefore ? [] : ["the client's files"]),
      ];
      rows.running.push({ name, message: errorMessage(output), seconds, leftBehind: changed.join(", ") || "nothing" });
      expect(status).not.toBe(0);
      expect(output).toContain(message());
      expect(output).not.toContain("PRIVATE KEY");
      expect(changed).toEqual([]);
    } finally {
      fs.writeFileSync(file, saved);
    }
  });

  test("verifyFromClients: a client host that cannot reach the registry fails the up, naming the host and the endpoint", () => {
    const file = path.join(workDir, `${stack}.yaml`);
    const saved = fs.readFileSync(file, "utf8");
    try {
      setConfig(stack, [["verifyFromClients", "true"]]);
      const { status, output } = pulumi(["up", "--yes", "--skip-preview", ...configFile(stack)]);
      expect(status).not.toBe(0);
      // The client command of that host fails; its own line says which endpoint and why.
      expect(output).toContain(`command:remote:Command registry-trust-127.0.0.1-${fixtures.sshPort}`);
      expect(output).toContain(`private-registry: https://127.0.0.1:${fixtures.freePort}/v2/ does not answer from this host over TLS verified by the installed CA: curl: (7)`);
    } finally {
      fs.writeFileSync(file, saved);
    }
    // Taken back, the next up converges.
    expect(pulumi(["up", "--yes", "--skip-preview", ...configFile(stack)]).status).toBe(0);
  });

  test("after the bad changes are taken back, the stack is as it was: a no-change preview", () => {
    const preview = pulumi(["preview", "--expect-no-changes", ...configFile(stack)]);
    expect(preview.status).toBe(0);
    // The same containers (the users writer among them, exited), and the registry and nginx serving.
    expect(docker("ps", "-a", "-q", "--no-trunc", "--filter", `name=^${id}run-`).split("\n").sort())
      .toEqual(containerIds.split("\n").sort());
    expect(docker("ps", "--format", "{{.Names}}", "--filter", `name=^${id}run-`, "--filter", "status=running").split("\n").sort())
      .toEqual([`${id}run-nginx`, `${id}run-registry`]);
  });
});

/** The results as Markdown tables, when asked (scripts/reliability-report.sh). */
function writeReport(): void {
  const dir = process.env.RELIABILITY_REPORT_DIR;
  if (!dir) return;
  const cell = (text: string) => text.replace(/\|/g, "\\|").replace(/\s*\n\s*/g, "<br>");
  const table = (list: Row[], changedHeader: string) => [
    `| # | Bad configuration | Message (after \`error: \`) | \`up\` took | ${changedHeader} |`,
    "|---|---|---|---|---|",
    ...list.map((r, i) => `| ${i + 1} | ${cell(r.name)} | ${cell(r.message)} | ${r.seconds.toFixed(1)} s | ${cell(r.leftBehind)} |`),
  ].join("\n");
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "bad-configs-new-stack.md"), `${table(rows.fresh, "Left behind")}\n`);
  fs.writeFileSync(path.join(dir, "bad-configs-running-stack.md"), `${table(rows.running, "Changed")}\n`);
}
