// Small helpers for the real-deployment test: the docker CLI, SSH client-host
// containers, and the plan of a Pulumi operation as a user reads it.
import { execFileSync, spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { EngineEvent } from "@pulumi/pulumi/automation";

/** Runs the docker CLI; returns trimmed stdout, throws with stderr on failure. */
export function docker(...args: string[]): string {
  const result = spawnSync("docker", args, { encoding: "utf8" });
  if (result.status !== 0) throw new Error(`docker ${args.join(" ")} failed: ${result.stderr}`);
  return result.stdout.trim();
}

/** Like docker(), ignoring failure (cleanup of what may already be gone). */
export function dockerQuiet(...args: string[]): void {
  spawnSync("docker", args, { stdio: "ignore" });
}

export interface ShResult {
  status: number;
  out: string;
}

/** Runs a shell script inside a container, stdin optional. */
export function containerSh(container: string, script: string, stdin = ""): ShResult {
  const result = spawnSync("docker", ["exec", "-i", container, "sh", "-c", script], { input: stdin, encoding: "utf8" });
  return { status: result.status ?? -1, out: `${result.stdout}${result.stderr}` };
}

/** ssh's options for a test's client host: this key only, no prompts, no known_hosts. */
export function sshOptions(keyFile: string): string[] {
  return [
    "-i",
    keyFile,
    "-o",
    "BatchMode=yes",
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "LogLevel=ERROR",
  ];
}

/** Waits until sshd in a client container accepts our key. */
export function waitForSsh(keyFile: string, user: string, host: string): void {
  for (let tries = 0; ; tries++) {
    const result = spawnSync("ssh", [...sshOptions(keyFile), "-o", "ConnectTimeout=2", `${user}@${host}`, "true"], { encoding: "utf8" });
    if (result.status === 0) return;
    if (tries > 100) throw new Error(`ssh ${user}@${host}: ${result.stderr}`);
    execFileSync("sleep", ["0.2"]);
  }
}

export interface Plan {
  created: string[];
  updated: string[];
  replaced: string[];
  deleted: string[];
}

/** Collects the steps on provider resources (not components) of an operation, by resource name. */
export function planRecorder(): { onEvent: (event: EngineEvent) => void; plan: () => Plan } {
  const steps: { name: string; op: string }[] = [];
  return {
    onEvent: (event) => {
      const meta = event.resourcePreEvent?.metadata;
      if (meta && !/^(pulumi|private-registry):/.test(meta.type)) steps.push({ name: meta.urn.split("::").pop() ?? meta.urn, op: meta.op });
    },
    plan: () => {
      const named = (...ops: string[]) => [...new Set(steps.filter((s) => ops.includes(s.op)).map((s) => s.name))].sort();
      return {
        created: named("create"),
        updated: named("update"),
        replaced: named("replace", "create-replacement", "delete-replaced"),
        deleted: named("delete"),
      };
    },
  };
}

/** A one-file image, imported and saved as a docker-archive at /tmp/tiny.tar inside `container`: something small to push. */
export function copyTinyImageInto(container: string, workDir: string, id: string): void {
  fs.writeFileSync(path.join(workDir, "hello.txt"), `hello from ${id}\n`);
  execFileSync("sh", [
    "-c",
    `tar -C ${workDir} -c hello.txt | docker import - ${id}-tiny:1 >/dev/null && ` +
      `docker save ${id}-tiny:1 -o ${workDir}/tiny.tar && docker rmi ${id}-tiny:1 >/dev/null`,
  ]);
  docker("cp", `${workDir}/tiny.tar`, `${container}:/tmp/tiny.tar`);
}
