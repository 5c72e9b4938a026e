// Stack config for the real-deployment tests without a secret on any command line:
// the Automation API's setAllConfig passes every value as an argument of
// `pulumi config set-all`, where the process list shows it. Plain values go that
// way; each secret goes to `pulumi config set --secret` on standard input.
import { spawnSync } from "child_process";
import { ConfigMap, LocalWorkspace, Stack } from "@pulumi/pulumi/automation";

/** Like stack.setAllConfig(config, true) (keys are paths), with secrets passed on stdin. */
export async function setAllConfigSafely(stack: Stack, config: ConfigMap, _path = true): Promise<void> {
  const plain = Object.fromEntries(Object.entries(config).filter(([, v]) => !v.secret));
  if (Object.keys(plain).length > 0) await stack.setAllConfig(plain, true);
  const workspace = stack.workspace as LocalWorkspace;
  for (const [key, { value }] of Object.entries(config).filter(([, v]) => v.secret)) {
    const r = spawnSync("pulumi", ["config", "set", "--secret", "--path", "--stack", stack.name, "--non-interactive", key],
      { cwd: workspace.workDir, env: { ...process.env, ...workspace.envVars }, input: value, encoding: "utf8" });
    if (r.status !== 0) throw new Error(`pulumi config set --secret ${key} failed: ${r.stderr}`);
  }
}
