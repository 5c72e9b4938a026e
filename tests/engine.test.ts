// Bad configuration through the real Pulumi engine and language host: the
// preview fails with our one message, before any resource is registered.
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { scratchPulumiEnv, writeProjectShell } from "./helpers/deployment";

// Stacks in a scratch copy of the project (its Pulumi.yaml, this program), so that no
// stack file is written beside the real Pulumi.yaml.
const workDir = fs.mkdtempSync(path.join(os.tmpdir(), "engine-test-"));
const shellDir = path.join(workDir, "project");
writeProjectShell(shellDir);
const env = { ...process.env, ...scratchPulumiEnv(path.join(workDir, "state")), PULUMI_HOME: path.join(workDir, "home") };

function pulumi(args: string[], input?: string) {
  const result = spawnSync("pulumi", ["--non-interactive", ...args], { cwd: shellDir, env, input, encoding: "utf8", timeout: 120_000 });
  if (result.error) throw result.error;
  return { status: result.status, output: `${result.stdout}\n${result.stderr}` };
}

let stackCount = 0;
function previewWith(config: [string, string, boolean?][]): { status: number | null; output: string } {
  const stack = `engine-test-${process.pid}-${++stackCount}`;
  const init = pulumi(["stack", "init", stack]);
  expect(init.output).toContain("Created stack");
  for (const [key, value, secret] of config) {
    const args = ["config", "set", "--stack", stack, "--path", `private-registry:${key}`, value, ...(secret ? ["--secret"] : [])];
    expect(pulumi(args).status).toBe(0);
  }
  const result = pulumi(["preview", "--stack", stack]);
  pulumi(["stack", "rm", "--yes", "--force", "--stack", stack]);
  return result;
}

afterAll(() => fs.rmSync(workDir, { recursive: true, force: true }));

describe("pulumi preview with bad configuration (real engine)", () => {
  test.each([
    [
      "a port outside 1-65535",
      [["port", "70000"]],
      'error: Invalid config "private-registry:port" = "70000": must be a whole number from 1 to 65535.',
    ],
    [
      "an address that is not an IP",
      [["ipAddresses[0]", "192.0.2.300"]],
      'error: Invalid config "private-registry:ipAddresses" = "192.0.2.300": is not an IPv4 or IPv6 address.',
    ],
    ["an unknown option", [["prot", "443"]], 'error: Invalid config "private-registry:prot" = "[value hidden]": unknown setting'],
    [
      "a client without a key",
      [["clients[0].host", "198.51.100.21"]],
      'error: Invalid config "private-registry:clients[0].privateKey" = "(missing)": must be a PEM private key',
    ],
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
    const { output } = previewWith([
      ["clients[0].host", "bad host"],
      ["clients[0].privateKey", "not-a-pem-but-secret", true],
      ["clientz", "pasted:-----BEGIN OPENSSH PRIVATE KEY-----secret-body", true],
    ]);
    expect(output).toContain('Invalid config "private-registry:clients[0].host" = "bad host": must be an IP address or DNS name.');
    expect(output).not.toContain("not-a-pem-but-secret");
    expect(output).toContain('Invalid config "private-registry:clientz" = "[value hidden]": unknown setting');
    expect(output).not.toContain("secret-body");
  });
});

// The same refusals through a real `pulumi up`, and what only the hosts can tell
// (busy ports, taken names, client hosts that say no): tests/badConfig.test.ts.
