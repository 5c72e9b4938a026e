// What the scripts read of Pulumi's structured data, on the Automation API: the project
// (Pulumi.yaml, with its config declarations and their defaults), a stack's config
// and its outputs. Run by scripts/*.ts under tsx, after the bash part made sure of the
// toolchain, selected the backend and the passphrase (scripts/pulumi-env.sh, whose
// environment the Pulumi CLI inherits here: nothing secret goes on a command line).
import * as path from "path";
import { LocalWorkspace, OutputMap } from "@pulumi/pulumi/automation";

export const PROJECT_DIR = path.resolve(__dirname, "..");

/** The workspace of this project (its Pulumi.yaml and stack files); the CLI on PATH. */
export function workspace(): Promise<LocalWorkspace> {
  return LocalWorkspace.create({ workDir: PROJECT_DIR });
}

/** A config value as the engine hands it to the program: text as it is, anything else as JSON. */
export function configText(value: unknown): string {
  return typeof value === "string" ? value : JSON.stringify(value);
}

/**
 * The defaults Pulumi.yaml declares (`config: KEY: { default: ... }`), as config text by
 * key (no namespace). The SDK's ProjectSettings type leaves the declarations out; they
 * are in what it reads.
 */
export function projectDefaults(settings: unknown): Record<string, string> {
  const declared = (settings as { config?: unknown }).config;
  const defaults: Record<string, string> = {};
  if (typeof declared !== "object" || declared === null) return defaults;
  for (const [key, declaration] of Object.entries(declared)) {
    if (typeof declaration === "object" && declaration !== null && "default" in declaration) {
      defaults[key] = configText((declaration as { default: unknown }).default);
    }
  }
  return defaults;
}

export interface StackConfig {
  project: string;
  /** Pulumi.yaml's defaults. */
  defaults: Record<string, string>;
  /** The stack's config of this project (no namespace) over the defaults: what the program reads. */
  values: Record<string, string>;
  /** Keys whose values are secrets (wholly or in part); their values are never shown. */
  secretKeys: Set<string>;
}

/** The project's config of `stack`, over Pulumi.yaml's defaults. */
export async function stackConfig(ws: LocalWorkspace, stack: string): Promise<StackConfig> {
  const settings = await ws.projectSettings();
  const defaults = projectDefaults(settings);
  const values = { ...defaults };
  const secretKeys = new Set<string>();
  const prefix = `${settings.name}:`;
  for (const [key, { value, secret }] of Object.entries(await ws.getAllConfig(stack))) {
    if (!key.startsWith(prefix)) continue;
    const name = key.slice(prefix.length);
    values[name] = value;
    if (secret) secretKeys.add(name);
  }
  return { project: settings.name, defaults, values, secretKeys };
}

/** The stack's outputs (secrets in clear, in this process only). */
export function stackOutputs(ws: LocalWorkspace, stack: string): Promise<OutputMap> {
  return ws.stackOutputs(stack);
}

/** `--stack NAME` (or `-s NAME`, `--stack=NAME`) from the arguments; the rest as they came. */
export function stackArg(args: string[]): { stack: string; rest: string[] } {
  let stack = "";
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--stack" || a === "-s") stack = args[++i] ?? "";
    else if (a.startsWith("--stack=")) stack = a.slice("--stack=".length);
    else rest.push(a);
  }
  if (!stack) throw new Error("no --stack NAME given");
  return { stack, rest };
}

/** Runs `main`; a failure is one line on stderr with `tag`, and exit status 1. */
export function runMain(tag: string, main: () => Promise<void>): void {
  main().catch((e: unknown) => {
    const message = e instanceof Error ? e.message : String(e);
    process.stderr.write(`[${tag}] error: ${message.trim()}\n`);
    process.exit(1);
  });
}
