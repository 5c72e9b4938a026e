// Bad configurations through the real `pulumi up` (the shared fixture,
// tests/helpers/deployment.ts: the Automation API's `up`, real engine, real language
// host, real provider plugins, this machine's Docker engine, a real sshd as a client
// host, published on 127.0.0.1 where the cases dial it): each must stop with its one message, quickly, and leave nothing behind:
// no resource in the state, no container, network or volume, no file on the
// client host. Then the same on a running stack: a bad change must change nothing.
// With RELIABILITY_REPORT_DIR set, the results are written as a Markdown table
// (scripts/reliability-report.sh puts it into docs/reliability.md).
import * as fs from "fs";
import * as net from "net";
import * as path from "path";
import { execFileSync } from "child_process";
import { Stack } from "@pulumi/pulumi/automation";
import { BadConfigCase, ConfigEntry, Fixtures, hostCases, settingCases, sound } from "./helpers/badConfigCases";
import { ConfigPatch, deployment, IMAGES } from "./helpers/deployment";
import { docker, dockerQuiet } from "./helpers/e2e";

jest.setTimeout(1_800_000);

// One client host: a real sshd, also published on 127.0.0.1, where root and a user
// without sudo (nosudo, whose sudo right goes below) accept the fixture's key. The
// fixture's stack is the running stack of the second part (its first `up` is there);
// each bad configuration gets a new stack of its own beside it.
const d = deployment({ tag: "rel", clients: [{ user: "nosudo", loopbackSsh: true }], up: false });

interface Row {
  name: string;
  message: string;
  seconds: number;
  leftBehind: string;
}
const rows: { fresh: Row[]; running: Row[] } = { fresh: [], running: [] };

const patchOf = (entries: ConfigEntry[]): ConfigPatch =>
  Object.fromEntries(entries.map(([k, v, secret]) => [k, secret ? { secret: v } : v]));

/**
 * Sets the entries: "[]" as a real empty list (as a stack file has it), the rest through
 * the fixture (plain ones in one call, each secret on standard input, never on a command line).
 */
async function setEntries(entries: ConfigEntry[], stack: Stack = d.stack): Promise<void> {
  const emptyLists = entries.filter(([, v, secret]) => !secret && v === "[]");
  if (emptyLists.length > 0) {
    await stack.setAllConfigJson(
      JSON.stringify(Object.fromEntries(emptyLists.map(([k]) => [`private-registry:${k}`, { value: "[]", objectValue: [] }]))),
    );
  }
  await d.setConfig(patchOf(entries.filter(([, v, secret]) => secret || v !== "[]")), stack);
}

/** The resources the stack's state holds: urn and id, in order. */
async function stateResources(stack: Stack): Promise<string[]> {
  const deployment = (await stack.exportStack()).deployment;
  return (deployment.resources ?? []).map((res: { urn: string; id?: string }) => `${res.urn} ${res.id ?? ""}`);
}

/** Every Docker object of this run's stacks (by label or by name), with ids: what a run may have made. */
function dockerObjects(): string[] {
  // Lines trimmed: an empty label leaves a trailing space, which the last line of a listing loses.
  const list = (...args: string[]) =>
    docker(...args)
      .split("\n")
      .map((line) => line.trim())
      .filter((line) => line.includes(d.id) || line.includes("private-registry/bad-"));
  return [
    ...list("ps", "-a", "--format", '{{.ID}} {{.Names}} {{.Label "private-registry.stack"}}'),
    ...list("network", "ls", "--format", '{{.ID}} {{.Name}} {{.Label "private-registry.stack"}}'),
    ...list("volume", "ls", "--format", '{{.Name}} {{.Label "private-registry.stack"}}'),
  ].sort();
}

/** What the client host holds of ours: files under /etc/docker and in the OS trust store, with their digests. */
function clientFiles(): string {
  return d.clients[0]
    .sh("find /etc/docker /usr/local/share/ca-certificates -type f -exec sha256sum {} + 2>/dev/null | sort; true")
    .out.trim();
}

/** The error a user reads: Pulumi prints ours after "error: "; the whole message, up to the blank line. */
function errorMessage(output: string): string {
  const diagnostics = output.slice(output.indexOf("Diagnostics:"));
  const match = /error: ([\s\S]*?)(\n\s*\n|$)/.exec(diagnostics) ?? /error: (.*)/.exec(output);
  return match ? match[1].trim() : "(no error line)";
}

const fixtures: Fixtures = {
  sshPort: 0,
  sshKey: "",
  otherKey: "",
  noSudoUser: "nosudo",
  sshContainer: "",
  silentPort: 0,
  busyPort: 0,
  freePort: 0,
  refusedPort: 0,
  takenNetworkPrefix: `${d.id}n`,
  takenVolumePrefix: `${d.id}v`,
  takenContainerPrefix: `${d.id}c`,
};
const servers: net.Server[] = [];
const listen = (server: net.Server) =>
  new Promise<number>((resolve) => server.listen(0, "127.0.0.1", () => resolve((server.address() as net.AddressInfo).port)));

beforeAll(async () => {
  const otherFile = path.join(d.workDir, "other_ed25519");
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", otherFile]);
  fixtures.sshKey = fs.readFileSync(d.sshKeyFile, "utf8");
  fixtures.otherKey = fs.readFileSync(otherFile, "utf8");
  fixtures.sshContainer = d.clients[0].name;
  fixtures.sshPort = d.clients[0].loopbackPort ?? 0;
  // The port the fixture handed out (nothing listens there): the registry's in every case, and the running stack's.
  fixtures.freePort = d.port;
  const silent = net.createServer(() => undefined); // accepts TCP, never speaks
  const busy = net.createServer((s) => s.destroy());
  const refused = net.createServer();
  servers.push(silent, busy);
  [fixtures.silentPort, fixtures.busyPort, fixtures.refusedPort] = [await listen(silent), await listen(busy), await listen(refused)];
  await new Promise((r) => refused.close(r));
  // Names taken by things no stack made.
  docker("network", "create", `${fixtures.takenNetworkPrefix}-net`);
  docker("volume", "create", `${fixtures.takenVolumePrefix}-data`);
  docker("create", "--name", `${fixtures.takenContainerPrefix}-registry`, IMAGES.registry);
  // The user's sudo right goes: sudo -n now fails for that user.
  expect(d.clients[0].sh("rm /etc/sudoers.d/90-ssh-user").status).toBe(0);
});

afterAll(() => {
  servers.forEach((s) => s.close());
  dockerQuiet("rm", "-f", `${fixtures.takenContainerPrefix}-registry`);
  dockerQuiet("network", "rm", `${fixtures.takenNetworkPrefix}-net`);
  dockerQuiet("volume", "rm", `${fixtures.takenVolumePrefix}-data`);
  writeReport();
});

let stackCount = 0;
describe("a bad configuration on a new stack: one message, nothing created (real pulumi up)", () => {
  test.each([...settingCases, ...hostCases].map((c) => [c.name, c] as [string, BadConfigCase]))("%s", async (_name, badCase) => {
    // A new stack with the case's settings only (over Pulumi.yaml's defaults).
    const stack = await d.otherStack(`bad${++stackCount}`, {});
    try {
      await setEntries(badCase.config(fixtures), stack);
      const dockerBefore = dockerObjects();
      const clientBefore = clientFiles();
      const started = Date.now();
      const { output } = await d.failingUp({}, stack); // the fixture fails the test if this `up` succeeds
      const seconds = (Date.now() - started) / 1000;
      const message = errorMessage(output);
      const leftBehind = [
        ...(await stateResources(stack)).filter((r) => !r.includes("pulumi:pulumi:Stack")),
        ...dockerObjects().filter((o) => !dockerBefore.includes(o)),
        ...(clientFiles() === clientBefore ? [] : ["files on the client host"]),
      ];
      rows.fresh.push({ name: badCase.name, message, seconds, leftBehind: leftBehind.join(", ") || "nothing" });
      expect(output).toContain(badCase.message(fixtures));
      expect(output).not.toMatch(/\n\s+at /); // no stack trace
      // No secret in the output: the client keys never, whatever the key they sit under.
      expect(output).not.toContain("PRIVATE KEY");
      expect(output).not.toContain("hunter2");
      expect(output).not.toContain("secretbody");
      expect(leftBehind).toEqual([]);
    } finally {
      await d.dropStack(stack);
    }
  });
});

describe("a bad change to a running stack: one message, nothing changed (real pulumi up)", () => {
  // Over the fixture's base config (its namePrefix, users, local images): the client as root at 127.0.0.1.
  const good = (): ConfigEntry[] => [
    ...sound(fixtures),
    ["ipAddresses[0]", "127.0.0.1"],
    ["dnsNames[0]", "localhost"],
    ["clients[0].host", "127.0.0.1"],
    ["clients[0].port", String(fixtures.sshPort)],
    ["clients[0].privateKey", fixtures.sshKey, true],
    ["keyAlgorithm", "ECDSA"],
    // The client host is a container whose 127.0.0.1 is its own: it cannot reach the registry.
    ["verifyFromClients", "false"],
  ];
  /** The stack's containers: the registry, nginx and the users writer (exited). */
  const containers = (...filters: string[]) => docker("ps", ...filters, "--filter", `name=^${d.id}-(registry|nginx|users-writer)$`);
  let containerIds = "";

  beforeAll(async () => {
    await setEntries(good());
    const up = await d.up({ "clients[0].user": null }); // the fixture fails the test unless it succeeds
    expect(up.output).toContain("Resources:");
    containerIds = containers("-a", "-q", "--no-trunc");
    // The registry, nginx and the users writer (exited).
    expect(containerIds.split("\n")).toHaveLength(3);
  });

  const changes: [string, () => ConfigEntry[], () => string][] = [
    [
      "the port moved to one another program listens on",
      () => [["port", String(fixtures.busyPort)]],
      () => `Invalid config "private-registry:port" = ${fixtures.busyPort}: is already in use on 127.0.0.1 on the Docker host.`,
    ],
    [
      "a client host added that refuses the connection",
      () => [
        ["clients[1].host", "127.0.0.1"],
        ["clients[1].port", String(fixtures.refusedPort)],
        ["clients[1].privateKey", fixtures.sshKey, true],
      ],
      () =>
        `Invalid config "private-registry:clients[1].host" = "127.0.0.1": cannot log in over SSH with the configured key as root on port ${fixtures.refusedPort} (ssh: connect to host 127.0.0.1 port ${fixtures.refusedPort}: Connection refused).`,
    ],
    [
      "the registry image changed to one that is not there",
      () => [["registryImage", "private-registry/missing:2"]],
      () =>
        'Invalid config "private-registry:registryImage" = "private-registry/missing:2": is not on the Docker host, and pullImages is false',
    ],
    [
      "a user added with a bad name",
      () => [
        ["users[0]", "admin"],
        ["users[1]", "ci:bot"],
      ],
      () => `Invalid config "private-registry:users" = "ci:bot": is not a valid user name`,
    ],
    [
      "the client's key replaced by one the host refuses",
      () => [["clients[0].privateKey", fixtures.otherKey, true]],
      () =>
        `Invalid config "private-registry:clients[0].host" = "127.0.0.1": cannot log in over SSH with the configured key as root on port ${fixtures.sshPort} (root@127.0.0.1: Permission denied (publickey).`,
    ],
  ];

  test.each(changes)("%s", async (name, change, message) => {
    const stateBefore = await stateResources(d.stack);
    const clientBefore = clientFiles();
    expect(clientBefore).toContain("/etc/docker/certs.d/127.0.0.1:");
    const file = path.join(d.shellDir, `Pulumi.${d.stack.name}.yaml`);
    const saved = fs.readFileSync(file, "utf8");
    try {
      await setEntries(change());
      const started = Date.now();
      const { output } = await d.failingUp(); // the fixture fails the test if this `up` succeeds
      const seconds = (Date.now() - started) / 1000;
      const changed = [
        ...(JSON.stringify(await stateResources(d.stack)) === JSON.stringify(stateBefore) ? [] : ["the state"]),
        ...(containers("-a", "-q", "--no-trunc") === containerIds ? [] : ["the containers"]),
        ...(clientFiles() === clientBefore ? [] : ["the client's files"]),
      ];
      rows.running.push({ name, message: errorMessage(output), seconds, leftBehind: changed.join(", ") || "nothing" });
      expect(output).toContain(message());
      expect(output).not.toContain("PRIVATE KEY");
      expect(changed).toEqual([]);
    } finally {
      fs.writeFileSync(file, saved);
    }
  });

  test("verifyFromClients: a client host that cannot reach the registry fails the up, naming the host and the endpoint", async () => {
    const file = path.join(d.shellDir, `Pulumi.${d.stack.name}.yaml`);
    const saved = fs.readFileSync(file, "utf8");
    try {
      await setEntries([["verifyFromClients", "true"]]);
      const { output } = await d.failingUp(); // the fixture fails the test if this `up` succeeds
      // The client command of that host fails; its own line says which endpoint and why.
      expect(output).toContain(`command:remote:Command registry-trust-127.0.0.1-${fixtures.sshPort}`);
      expect(output).toContain(
        `private-registry: https://127.0.0.1:${fixtures.freePort}/v2/ does not answer from this host over TLS verified by the installed CA: curl: (7)`,
      );
    } finally {
      fs.writeFileSync(file, saved);
    }
    // Taken back, the next up converges (the fixture fails the test unless it succeeds).
    await d.up();
  });

  test("after the bad changes are taken back, the stack is as it was: a no-change preview", async () => {
    await d.expectNoChanges();
    // The same containers (the users writer among them, exited), and the registry and nginx serving.
    expect(containers("-a", "-q", "--no-trunc").split("\n").sort()).toEqual(containerIds.split("\n").sort());
    expect(containers("--format", "{{.Names}}", "--filter", "status=running").split("\n").sort()).toEqual([
      d.names("nginx"),
      d.names("registry"),
    ]);
  });
});

/** The results as Markdown tables, when asked (scripts/reliability-report.sh). */
function writeReport(): void {
  const dir = process.env.RELIABILITY_REPORT_DIR;
  if (!dir) return;
  const cell = (text: string) => text.replace(/\|/g, "\\|").replace(/\s*\n\s*/g, "<br>");
  const table = (list: Row[], changedHeader: string) =>
    [
      `| # | Bad configuration | Message (after \`error: \`) | \`up\` took | ${changedHeader} |`,
      "|---|---|---|---|---|",
      ...list.map((r, i) => `| ${i + 1} | ${cell(r.name)} | ${cell(r.message)} | ${r.seconds.toFixed(1)} s | ${cell(r.leftBehind)} |`),
    ].join("\n");
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "bad-configs-new-stack.md"), `${table(rows.fresh, "Left behind")}\n`);
  fs.writeFileSync(path.join(dir, "bad-configs-running-stack.md"), `${table(rows.running, "Changed")}\n`);
}
