// A proxy that does not serve is not a success: a real `pulumi up` (through
// `npm run deploy`, as a user runs it) whose nginx image is not nginx (an sshd image,
// which the pre-flight cannot tell from nginx and which listens on no TLS port) must
// fail on the proxy's health check, name the container, its image and its last log
// lines, and not report a registry that answers nothing.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { spawnSync } from "child_process";
import { LocalWorkspace } from "@pulumi/pulumi/automation";
import { setAllConfigSafely } from "./helpers/config";
import { dockerQuiet } from "./helpers/e2e";

jest.setTimeout(300_000);

const projectDir = path.join(__dirname, "..");
const id = `proxyhealth${process.pid % 100000}`;
const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), "proxy-health-"));
const NOT_NGINX = "private-registry/ssh-client-host:bookworm";

afterAll(() => {
  fs.rmSync(path.join(projectDir, `Pulumi.${id}.yaml`), { force: true });
  dockerQuiet("rm", "-f", `${id}-registry`, `${id}-nginx`, `${id}-users-writer`);
  dockerQuiet("network", "rm", `${id}-net`);
  dockerQuiet("volume", "rm", `${id}-data`, `${id}-users`, `${id}-socket`);
  fs.rmSync(stateDir, { recursive: true, force: true });
});

test("up fails when the proxy container never listens, and says which container, which image, and what it logged", async () => {
  const env = {
    PULUMI_BACKEND_URL: `file://${stateDir}`, PULUMI_CONFIG_PASSPHRASE: "proxy-health-test",
    PULUMI_SKIP_UPDATE_CHECK: "true", PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
  };
  const stack = await LocalWorkspace.createStack({ stackName: id, workDir: projectDir }, { envVars: env });
  try {
    await setAllConfigSafely(stack, {
      "private-registry:registryImage": { value: "private-registry/registry:2.8.2-debian" },
      "private-registry:nginxImage": { value: NOT_NGINX },
      "private-registry:pullImages": { value: "false" },
      "private-registry:port": { value: String(20000 + (process.pid % 20000) + 1) },
      "private-registry:listenAddress": { value: "127.0.0.1" },
      "private-registry:rsaBits": { value: "2048" },
      "private-registry:namePrefix": { value: id },
      "private-registry:keepDataOnDestroy": { value: "false" },
    });
    const deploy = spawnSync("npm", ["run", "deploy", "--", "--stack", id], { cwd: projectDir, env: { ...process.env, ...env }, encoding: "utf8", timeout: 600_000 });
    const output = `${deploy.stdout}${deploy.stderr}`;
    expect(deploy.status).not.toBe(0);
    expect(output).toMatch(/registry-proxy-container \*\*creating failed\*\*/);
    expect(output).toContain("container failed to be in healthy state");
    // What the provider does not say: which container, which image, and its last words.
    expect(output).toMatch(new RegExp(`\\[deploy\\] container ${id}-nginx \\(image ${NOT_NGINX}\\) is (running|exited)[^\\n]*health: (unhealthy|starting)`));
    expect(output).toContain("the last lines of its log:");
    expect(output).toContain("its last health check said:");
    // Nothing claims a registry that answers: no endpoints, no login lines.
    const outputs = await stack.outputs();
    expect(outputs.endpoints).toBeUndefined();
    expect(outputs.dockerLoginCommand).toBeUndefined();
    expect(outputs.dockerLoginCommands).toBeUndefined();
  } finally {
    await stack.destroy().catch(() => undefined);
    await stack.workspace.removeStack(id, { force: true }).catch(() => undefined);
  }
});
