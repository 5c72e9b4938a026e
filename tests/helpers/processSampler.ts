// Samples what other users of a machine could read of a deployment while it runs: the
// process lists (`ps -eo user,args`), and with `environ` every process's environment
// (/proc/*/environ), on this machine and inside client-host containers, until stopped.
// Each distinct line is kept once (the raw samples of a long `up` outgrow a buffer).
import { spawn } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { containerSh, docker } from "./e2e";

export interface Samples {
  /** This machine's distinct lines. */
  host: string;
  /** Each client container's distinct lines, by container name. */
  clients: Record<string, string>;
}

/** Starts sampling; the function it returns stops it and gives the samples. */
export function startSampling(workDir: string, clients: string[], environ = false): () => Promise<Samples> {
  const stopFile = path.join(workDir, "stop-sampling");
  const hostFile = path.join(workDir, "host-samples.txt");
  const envs = environ ? "; for f in /proc/[0-9]*/environ; do tr '\\0' '\\n' <\"$f\"; echo; done 2>/dev/null" : "";
  // Each loop also ends by itself after 10 minutes, should this process die before it stops
  // them. The client hosts' run flat out (few processes there, and an install is brief); this
  // machine's pauses a little, not to starve the deploy of CPU.
  const loop = (stop: string, out: string, pause: string) =>
    `end=$(($(date +%s) + 600)); while [ ! -e ${stop} ] && [ "$(date +%s)" -lt "$end" ]; do { ps -eo user,args${envs}; } | sort -u; ${pause}; done >>${out}`;
  for (const client of clients) docker("exec", "-d", client, "sh", "-c", loop("/tmp/stop-sampling", "/tmp/samples.txt", ":"));
  const host = spawn("sh", ["-c", loop(stopFile, hostFile, "sleep 0.05")], { stdio: "ignore" });
  const hostDone = new Promise((resolve) => host.once("exit", resolve));
  return async () => {
    fs.writeFileSync(stopFile, "");
    for (const client of clients) containerSh(client, "touch /tmp/stop-sampling; sleep 0.3");
    await hostDone;
    const samples: Samples = { host: [...new Set(fs.readFileSync(hostFile, "utf8").split("\n"))].join("\n"), clients: {} };
    for (const client of clients) samples.clients[client] = containerSh(client, "sort -u /tmp/samples.txt").out;
    return samples;
  };
}
