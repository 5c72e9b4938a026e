// examples/own-program previewed for real (Pulumi engine, language host, provider
// plugins), as a user of the component would first run it: what would be created.
// The docker provider connects to this machine's Docker engine when it starts (its
// native half does so even with docker:disableDockerDaemonCheck), so an engine must
// answer; a preview creates nothing on it (the test checks that no object named
// example-registry-* appears). Run it under the shared engine's lock:
//   flock /tmp/engine.lock npx jest tests/ownProgram.test.ts
// Nothing dials the example's documentation addresses: it has no client hosts.
import { execFileSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { EngineEvent, LocalWorkspace, PreviewResult, Stack } from "@pulumi/pulumi/automation";

const EXAMPLE_DIR = path.join(__dirname, "..", "examples", "own-program");
const PULUMI_VERSION: string = require("../package.json").dependencies["@pulumi/pulumi"];
const TOOLCHAIN_BIN = path.join(
  process.env.XDG_CACHE_HOME || path.join(os.homedir(), ".cache"),
  "private-registry",
  `pulumi-v${PULUMI_VERSION}`,
  "bin",
);

interface Step {
  op: string;
  type: string;
  name: string;
  urn: string;
  inputs: Record<string, any>;
}

describe("examples/own-program: a program of one's own, previewed by the real engine", () => {
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), "own-program-"));
  const shellDir = path.join(workDir, "project");
  const env: Record<string, string> = {
    PULUMI_BACKEND_URL: `file://${path.join(workDir, "state")}`,
    PULUMI_CONFIG_PASSPHRASE: crypto.randomBytes(16).toString("hex"),
    PULUMI_SKIP_UPDATE_CHECK: "true",
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
    // The CLI scripts/install-pulumi-toolchain.sh puts there, when it did.
    PATH: fs.existsSync(TOOLCHAIN_BIN) ? `${TOOLCHAIN_BIN}${path.delimiter}${process.env.PATH}` : String(process.env.PATH),
  };
  let stack: Stack;
  let preview: PreviewResult;
  const steps: Step[] = [];

  beforeAll(async () => {
    // The stack's files in a scratch project shell whose `main` points at the example, not beside it.
    fs.mkdirSync(shellDir, { recursive: true });
    fs.mkdirSync(path.join(workDir, "state"));
    const project = fs.readFileSync(path.join(EXAMPLE_DIR, "Pulumi.yaml"), "utf8");
    expect(project).toMatch(/^main: index\.ts$/m);
    fs.writeFileSync(
      path.join(shellDir, "Pulumi.yaml"),
      project.replace(/^main: index\.ts$/m, `main: ${path.join(EXAMPLE_DIR, "index.ts")}`),
    );
    stack = await LocalWorkspace.createStack({ stackName: "example", workDir: shellDir }, { envVars: env });
    preview = await stack.preview({
      onEvent: (event: EngineEvent) => {
        const m = event.resourcePreEvent?.metadata;
        if (m) steps.push({ op: m.op, type: m.type, name: m.urn.split("::").pop() as string, urn: m.urn, inputs: m.new?.inputs ?? {} });
      },
    });
  }, 300_000);

  afterAll(async () => {
    await stack?.workspace.removeStack("example", { force: true }).catch(() => undefined);
    fs.rmSync(workDir, { recursive: true, force: true });
  });

  test("nothing was made on the Docker engine", () => {
    const names = [
      ["ps", "-a", "--format", "{{.Names}}"],
      ["network", "ls", "--format", "{{.Name}}"],
      ["volume", "ls", "--format", "{{.Name}}"],
    ].flatMap((args) => execFileSync("docker", args, { encoding: "utf8" }).split("\n"));
    expect(names.filter((n) => n.startsWith("example-registry"))).toEqual([]);
  });

  const only = (type: string, name: string) => {
    const found = steps.filter((s) => s.type === type && s.name === name);
    expect(found).toHaveLength(1);
    return found[0];
  };

  test("everything is to be created, with no warning or error", () => {
    expect(new Set(steps.map((s) => s.op))).toEqual(new Set(["create"]));
    // The summary leaves out the default providers (docker, tls, random).
    expect(preview.changeSummary.create).toBe(steps.filter((s) => !s.type.startsWith("pulumi:providers:")).length);
    expect(preview.stdout).not.toMatch(/warning:|error:/);
  });

  test("one PrivateRegistry of the example's project and stack, holding everything else", () => {
    const top = only("private-registry:index:PrivateRegistry", "registry");
    expect(top.urn).toBe("urn:pulumi:example::own-program::private-registry:index:PrivateRegistry::registry");
    for (const s of steps.filter((x) => x.type !== "pulumi:pulumi:Stack" && x !== top && !x.type.startsWith("pulumi:providers:"))) {
      expect(s.urn).toContain("::private-registry:index:PrivateRegistry$");
    }
  });

  test("a CA: an ECDSA key and a self-signed CA certificate with the example's subject", () => {
    expect(only("tls:index/privateKey:PrivateKey", "registry-ca-key").inputs).toMatchObject({ algorithm: "ECDSA", ecdsaCurve: "P256" });
    expect(only("tls:index/selfSignedCert:SelfSignedCert", "registry-ca-cert").inputs).toMatchObject({
      isCaCertificate: true,
      subject: { commonName: "Example Registry CA", organization: "Example" },
      validityPeriodHours: 3650 * 24,
    });
  });

  test("a server certificate naming the IP and the DNS name, signed by the CA for a year", () => {
    expect(only("tls:index/certRequest:CertRequest", "registry-server-csr").inputs).toMatchObject({
      ipAddresses: ["192.0.2.10"],
      dnsNames: ["registry.example.com"],
      subject: { commonName: "registry.example.com" },
    });
    expect(only("tls:index/locallySignedCert:LocallySignedCert", "registry-server-cert").inputs).toMatchObject({
      validityPeriodHours: 365 * 24,
      earlyRenewalHours: 30 * 24,
      allowedUses: ["digital_signature", "server_auth"],
    });
  });

  test("a password per user", () => {
    expect(
      steps
        .filter((s) => s.type === "random:index/randomPassword:RandomPassword")
        .map((s) => s.name)
        .sort(),
    ).toEqual(["registry-registry-http-secret", "registry-users-admin", "registry-users-ci"]);
  });

  test("a registry container with no network, and an nginx container publishing 5443 on the private network", () => {
    const registry = only("docker:index/container:Container", "registry-registry-container");
    expect(registry.inputs).toMatchObject({ name: "example-registry-registry", networkMode: "none", restart: "always" });
    expect(registry.inputs.ports ?? []).toEqual([]);
    const proxy = only("docker:index/container:Container", "registry-proxy-container");
    expect(proxy.inputs).toMatchObject({
      name: "example-registry-nginx",
      ports: [{ internal: 443, external: 5443, ip: "0.0.0.0", protocol: "tcp" }],
    });
    expect(only("docker:index/network:Network", "registry-registry-network").inputs.name).toBe("example-registry-net");
    expect(only("docker:index/volume:Volume", "registry-registry-data").inputs.name).toBe("example-registry-data");
    expect(
      steps
        .filter((s) => s.type === "docker:index/remoteImage:RemoteImage")
        .map((s) => s.inputs.name)
        .sort(),
    ).toEqual(["nginx:1.30.4", "registry:3.1.1"]);
  });

  test("only admin may push (ci is pull-only); no client host is touched", () => {
    const writer = only("docker:index/container:Container", "registry-proxy-users-writer");
    const pushList = (writer.inputs.uploads as { file: string; content: string }[]).find((u) => u.file.endsWith("/may-push.list"));
    expect(pushList?.content).toBe("admin\n");
    expect(steps.filter((s) => s.type.startsWith("command:"))).toEqual([]);
  });
});
