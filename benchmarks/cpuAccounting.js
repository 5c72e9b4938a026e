// Where the CPU of a workload goes, for benchmarks/sideBySide.js: the CPU time that
// each named container used (its cgroup's counter, read from /sys/fs/cgroup), that
// this process used (the load generator of the request rates), and that the whole
// machine used (/proc/stat); what is left of the machine's is "everything else": the
// kernel's network and disk work, the Docker engine and its log pipes, docker-proxy.
"use strict";
const { execFileSync } = require("child_process");
const fs = require("fs");

const TICK_MS = 10; // USER_HZ is 100 on Linux: /proc/stat counts hundredths of a second.

/** The cgroup file with a container's CPU time, and how to read it in ms; undefined when none is found. */
function cgroupReader(id) {
  const v1 = [`/sys/fs/cgroup/cpuacct/docker/${id}/cpuacct.usage`, `/sys/fs/cgroup/cpu,cpuacct/docker/${id}/cpuacct.usage`];
  for (const f of v1) if (fs.existsSync(f)) return () => Number(fs.readFileSync(f, "utf8")) / 1e6;
  const v2 = [`/sys/fs/cgroup/system.slice/docker-${id}.scope/cpu.stat`, `/sys/fs/cgroup/docker/${id}/cpu.stat`];
  for (const f of v2) {
    if (fs.existsSync(f)) return () => Number(/usage_usec (\d+)/.exec(fs.readFileSync(f, "utf8"))?.[1] ?? NaN) / 1e3;
  }
  return undefined;
}

/** CPU ms of the whole machine since boot: every /proc/stat column but idle and iowait. */
function machineMs() {
  const [, ...cols] = fs.readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = cols;
  return (user + nice + system + irq + softirq + (steal ?? 0)) * TICK_MS;
}

/**
 * A meter for the given containers (names). meter.start() returns a function that,
 * called after the workload, gives { [name]: ms, loadGenerator: ms, total: ms }.
 * Containers whose cgroup cannot be found are left out (meter.missing names them).
 */
function cpuMeter(names) {
  const readers = {};
  const missing = [];
  for (const name of names) {
    let id = "";
    try {
      id = execFileSync("docker", ["inspect", "--format", "{{.Id}}", name], { encoding: "utf8" }).trim();
    } catch {
      /* not there */
    }
    const reader = id ? cgroupReader(id) : undefined;
    if (reader) readers[name] = reader;
    else missing.push(name);
  }
  const snapshot = () => {
    const own = process.cpuUsage();
    const s = { total: machineMs(), loadGenerator: (own.user + own.system) / 1e3 };
    for (const [name, read] of Object.entries(readers)) s[name] = read();
    return s;
  };
  return {
    missing,
    start() {
      const a = snapshot();
      return () => {
        const b = snapshot();
        return Object.fromEntries(Object.keys(a).map((k) => [k, Math.round(b[k] - a[k])]));
      };
    },
  };
}

module.exports = { cpuMeter };
