// The parts of `npm run deploy` that read the project's and the stack's data, run by
// scripts/deploy.sh (which first makes sure of the toolchain, the backend, the stack and
// the Docker engine, and runs `pulumi up` between these steps):
//   tsx scripts/deploy.ts images --stack NAME [--local-images]
//       every image the stack runs is on the Docker host or pulled now (lib/deployImages.ts);
//       else the local images (scripts/local-images.txt) are built and set on the stack when
//       it uses the defaults, or it stops. --local-images switches up front.
//   tsx scripts/deploy.ts summary --stack NAME   the endpoints and a login line per user
//   tsx scripts/deploy.ts owner --stack NAME     PROJECT/STACK, the value of the stack label
// Messages go to stderr as "[deploy] ..."; PRIVATE_REGISTRY_OFFLINE=1 skips the pull.
import { spawnSync } from "child_process";
import * as path from "path";
import { LocalWorkspace } from "@pulumi/pulumi/automation";
import { checkImages } from "../lib/deployImages";
import { localImages } from "../lib/localImages";
import { systemRun } from "../lib/preflight";
import { ConfigError, Settings, parseSettings } from "../lib/settings";
import { PROJECT_DIR, runMain, stackArg, stackConfig, stackOutputs, workspace } from "./stackData";

const log = (message: string) => process.stderr.write(`[deploy] ${message}\n`);

/** Builds the local registry 3 and nginx images, and sets them on the stack with pullImages false. */
async function useLocalImages(ws: LocalWorkspace, project: string, stack: string): Promise<void> {
  const built = spawnSync("bash", [path.join(PROJECT_DIR, "scripts", "build-local-images.sh")], {
    cwd: PROJECT_DIR,
    stdio: "inherit",
    env: { ...process.env, PRIVATE_REGISTRY_IMAGES: "registry3 nginx" },
  });
  if (built.status !== 0) throw new Error(`scripts/build-local-images.sh failed (exit ${built.status ?? built.signal})`);
  const local = localImages();
  await ws.setAllConfig(stack, {
    [`${project}:registryImage`]: { value: local.registry3 },
    [`${project}:nginxImage`]: { value: local.nginx },
    [`${project}:pullImages`]: { value: "false" },
  });
}

async function images(stack: string, switchUpFront: boolean): Promise<void> {
  const ws = await workspace();
  const config = await stackConfig(ws, stack);
  if (switchUpFront) {
    await useLocalImages(ws, config.project, stack);
    return;
  }
  let settings: Settings;
  try {
    settings = parseSettings(config.values, config.project, stack, config.secretKeys);
  } catch (e) {
    // `pulumi up` reports every problem of the config in its own words, before it creates anything.
    if (e instanceof ConfigError) return;
    throw e;
  }
  const check = checkImages(
    settings,
    {
      stack,
      defaults: { registryImage: config.defaults.registryImage, nginxImage: config.defaults.nginxImage },
      offline: Boolean(process.env.PRIVATE_REGISTRY_OFFLINE),
    },
    systemRun,
  );
  if (check.action === "stop") throw new Error(check.message);
  if (check.action === "use-local-images") {
    const local = localImages();
    log(
      `the default image ${check.image} cannot be pulled here (${check.reason}): using ${local.registry3} and ${local.nginx} built from Debian packages, set on stack ${stack}`,
    );
    await useLocalImages(ws, config.project, stack);
  }
}

async function summary(stack: string): Promise<void> {
  const outputs = await stackOutputs(await workspace(), stack);
  const endpoints = (outputs.endpoints?.value ?? []) as string[];
  const logins = (outputs.dockerLoginCommands?.value ?? {}) as Record<string, string>;
  console.log(`\nRegistry endpoints: ${endpoints.join(" ")}`);
  console.log(`Log in with (one line per user; run from ${PROJECT_DIR}):`);
  for (const line of Object.values(logins)) console.log(`  ${line}`);
}

async function owner(stack: string): Promise<void> {
  const settings = await (await workspace()).projectSettings();
  console.log(`${settings.name}/${stack}`);
}

runMain("deploy", async () => {
  const [step, ...args] = process.argv.slice(2);
  const { stack, rest } = stackArg(args);
  if (step === "images") return images(stack, rest.includes("--local-images"));
  if (step === "summary") return summary(stack);
  if (step === "owner") return owner(stack);
  throw new Error(`unknown step '${step}' (images, summary or owner)`);
});
