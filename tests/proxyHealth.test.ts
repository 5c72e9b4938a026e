// A proxy that does not serve is not a success: a real `pulumi up` whose nginx
// image is not nginx (the registry image, which listens on no TLS port) must fail
// on the proxy's health check, not report a registry that answers nothing.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { LocalWorkspace } from "@pulumi/pulumi/automation";
import { setAllConfigSafely } from "./helpers/config";
import { dockerQuiet } from "./helpers/e2e";

jest.setTimeout(300_000);

const projectDir = path.join(__dirname, "..");
const id = `proxyhealth${process.pid % 100000}`;
const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), "proxy-health-"));

afterAll(() => {
  fs.rmSync(path.join(projectDir, `Pulumi.${id}.yaml`), { force: true });
  dockerQuiet("rm", "-f", `${id}-registry`, `${id}-nginx`, `${id}-users-writer`);
  dockerQuiet("network", "rm", `${id}-net`);
  dockerQuiet("volume", "rm", `${id}-data`, `${id}-users`);
  fs.rmSync(stateDir, { recursive: true, force: true });
});

test("up fails when the proxy container never listens, and says which container", async () => {
  const stack = await LocalWorkspace.createStack({ stackName: id, workDir: projectDir }, {
    envVars: {
      PULUMI_BACKEND_URL: `file://${stateDir}`, PULUMI_CONFIG_PASSPHRASE: "proxy-health-test",
      PULUMI_SKIP_UPDATE_CHECK: "true", PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
    },
  });
  try {
    await setAllConfigSafely(stack, {
      "private-registry:registryImage": { value: "private-registry/registry:2.8.2-debian" },
      "private-registry:nginxImage": { value: "private-registry/registry:2.8.2-debian" },
      "private-registry:pullImages": { value: "false" },
      "private-registry:port": { value: String(20000 + (process.pid % 20000) + 1) },
      "private-registry:listenAddress": { value: "127.0.0.1" },
      "private-registry:rsaBits": { value: "2048" },
      "private-registry:namePrefix": { value: id },
      "private-registry:keepDataOnDestroy": { value: "false" },
    });
    let output = "";
    await expect(stack.up({ onOutput: (o) => { output += o; } })).rejects.toThrow(/update failed|failed/);
    expect(output).toMatch(/registry-proxy-container \*\*creating failed\*\*/);
    expect(output).toContain("container failed to be in healthy state");
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
