#!/usr/bin/env node
// The side-by-side measurement of benchmarks/run.sh: the same workloads against every
// target, interleaved (round-robin per repetition, the order rotated each time), so
// that whatever else the machine does falls on all of them alike.
//   node benchmarks/sideBySide.js TARGETS.json RESULTS.json [--quick]
// TARGETS.json: [{ key, label, host, port, tls, user?, password?, containers?: { role: name } }]; the client
// container (CLIENT, default bench-client) already trusts each TLS target's CA in
// /etc/docker/certs.d. Workloads:
//   - skopeo push of one big random layer (1 GiB; 256 MiB with --quick) and pull of
//     it into an oci: directory, from the client container (times taken inside it);
//   - the same for an image of 50 layers of 100 KiB;
//   - request rates of `GET /v2/` and of a manifest HEAD at 1, 8 and 32 concurrent
//     clients: a keep-alive load generator in this process, fixed duration.
// Every sample also says where the CPU went meanwhile (benchmarks/cpuAccounting.js):
// the client container, each of the target's containers, this process, the machine.
"use strict";
const { spawn, spawnSync } = require("child_process");
const fs = require("fs");
const http = require("http");
const https = require("https");

const [targetsFile, resultsFile] = process.argv.slice(2, 4);
const quick = process.argv.includes("--quick");
const CLIENT = process.env.BENCH_CLIENT ?? "bench-client";
const REPS = Number(process.env.BENCH_REPS ?? (quick ? 1 : 3));
const RATE_SECONDS = Number(process.env.BENCH_RATE_SECONDS ?? (quick ? 2 : 4));
const BIG_BYTES = Number(process.env.BENCH_BIG_MIB ?? (quick ? 256 : 1024)) * 1024 * 1024;
const SMALL_LAYERS = 50;
const SMALL_BYTES = 100 * 1024;
const CONCURRENCY = [1, 8, 32];
const MANIFEST_ACCEPT = "application/vnd.oci.image.manifest.v1+json";
// --subset (the tuning variants of run.sh): the big layer (unless BENCH_SKIP_BIG=1), the 50-layer image and GET /v2/ at 8 clients.
const subset = process.argv.includes("--subset");
// Repository names carry this tag, so that a later run against the same registry uploads again.
const TAG = process.env.BENCH_TAG ?? "";

const targets = JSON.parse(fs.readFileSync(targetsFile, "utf8"));
const { cpuMeter } = require("./cpuAccounting.js");
// t.containers: { role: container name }, e.g. { nginx: "bench-proxy-nginx", registry: "bench-proxy-registry" }.
const meter = cpuMeter([CLIENT, ...new Set(targets.flatMap((t) => Object.values(t.containers ?? {})))]);
const { MAKE_IMAGE_SH } = require("./loadTs.js")("../tests/helpers/ociImage.ts");

const log = (...a) => console.log(`[${new Date().toISOString().slice(11, 19)}]`, ...a);

/** A shell script in the client container; throws with its output on failure. */
function client(script, stdin = "") {
  const r = spawnSync("docker", ["exec", "-i", CLIENT, "sh", "-c", script], { input: stdin, encoding: "utf8", maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`client: ${script.slice(0, 200)}\n${r.stdout}${r.stderr}`);
  return r.stdout.trim();
}

const endpoint = (t) => `${t.host}:${t.port}`;
const tlsFlag = (t, dir) => (t.tls ? "" : `--${dir}-tls-verify=false`);

/**
 * Times one skopeo copy inside the client, in seconds. The blob-info cache is emptied
 * first so that skopeo neither skips nor cross-mounts a blob it saw before: every
 * push uploads every byte, every pull downloads every byte. With the CPU used meanwhile.
 */
function timedCopy(t, kind, src, dst) {
  const flags = kind === "push" ? tlsFlag(t, "dest") : tlsFlag(t, "src");
  const stopMeter = meter.start();
  const out = client(
    `rm -rf /var/lib/containers/cache /root/.local/share/containers/cache /bench/pull; ` +
      `s=$(date +%s%N); skopeo copy ${flags} ${src} ${dst} >/dev/null; e=$(date +%s%N); echo $((e - s))`,
  );
  return { seconds: Number(out) / 1e9, cpu: cpuByRole(t, stopMeter()) };
}

/** The CPU ms a meter measured, named by role: the client container, the target's containers (nginx, registry), this process, the machine. */
function cpuByRole(t, used) {
  const cpu = { total: used.total, client: used[CLIENT], loadGenerator: used.loadGenerator };
  for (const [role, name] of Object.entries(t.containers ?? {})) cpu[role] = used[name];
  return cpu;
}

/**
 * Requests per second answered 2xx, for `seconds`, by `concurrency` clients on kept-alive
 * connections; with the CPU used meanwhile and the number of requests answered.
 */
async function requestRate(t, method, urlPath, concurrency, seconds) {
  const mod = t.tls ? https : http;
  const agent = new mod.Agent({ keepAlive: true, maxSockets: concurrency, ...(t.tls ? { ca: t.ca } : {}) });
  const headers = { Accept: MANIFEST_ACCEPT, "User-Agent": "bench/1" };
  if (t.user) headers.Authorization = `Basic ${Buffer.from(`${t.user}:${t.password}`).toString("base64")}`;
  let ok = 0;
  let failed = 0;
  let counting = false;
  let running = true;
  const one = () =>
    new Promise((resolve) => {
      const req = mod.request({ host: t.host, port: t.port, path: urlPath, method, agent, headers }, (res) => {
        res.resume();
        res.on("end", () => {
          if (counting) {
            if (res.statusCode >= 200 && res.statusCode < 300) ok++;
            else failed++;
          }
          resolve();
        });
      });
      req.on("error", () => {
        if (counting) failed++;
        setTimeout(resolve, 10);
      });
      req.end();
    });
  const loop = async () => {
    while (running) await one();
  };
  const loops = Array.from({ length: concurrency }, loop);
  await new Promise((r) => setTimeout(r, 500)); // connections up, TLS done, caches warm
  counting = true;
  const stopMeter = meter.start();
  const start = process.hrtime.bigint();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  counting = false;
  const elapsed = Number(process.hrtime.bigint() - start) / 1e9;
  const cpu = cpuByRole(t, stopMeter());
  running = false;
  await Promise.all(loops);
  agent.destroy();
  return { rate: ok / elapsed, failed, requests: ok + failed, cpu };
}

async function main() {
  const results = {
    quick,
    reps: REPS,
    rateSeconds: RATE_SECONDS,
    bigBytes: BIG_BYTES,
    smallLayers: SMALL_LAYERS,
    smallBytes: SMALL_BYTES,
    concurrency: CONCURRENCY,
    targets: targets.map(({ key, label }) => ({ key, label })),
    samples: [],
    // A tuning variant of run.sh says which, for report.js.
    ...(process.env.BENCH_VARIANT ? { variant: process.env.BENCH_VARIANT, description: process.env.BENCH_DESCRIPTION ?? "" } : {}),
  };
  if (meter.missing.length) log(`no CPU counters found for ${meter.missing.join(", ")}: left out of the CPU table`);
  const sample = (s) => {
    results.samples.push(s);
    log(JSON.stringify(s));
    fs.writeFileSync(resultsFile, JSON.stringify(results, null, 2));
  };

  if (!(subset && process.env.BENCH_SKIP_BIG === "1"))
    log(`making the images in ${CLIENT}: 1 x ${BIG_BYTES / 1048576} MiB and ${SMALL_LAYERS} x ${SMALL_BYTES / 1024} KiB random layers`);
  // Made once per client (the variants reuse them); the work files on the tmpfs too.
  client(
    `mkdir -p /bench/tmp && export TMPDIR=/bench/tmp && ${MAKE_IMAGE_SH}\n` +
      `[ -f /bench/big/index.json ] || make_image /bench/big 1 ${BIG_BYTES} >/dev/null; ` +
      `[ -f /bench/small/index.json ] || make_image /bench/small ${SMALL_LAYERS} ${SMALL_BYTES} >/dev/null`,
  );
  const blobSize = (dir) => Number(client(`cd /bench/${dir}/blobs/sha256 && ls -l | awk 'NR>1 {s+=$5} END {print s}'`));
  results.bigImageBytes = blobSize("big");
  results.smallImageBytes = blobSize("small");

  for (const t of targets) {
    if (t.user)
      client(
        `skopeo login ${t.tls ? "" : "--tls-verify=false"} --username ${t.user} --password-stdin ${endpoint(t)} >/dev/null`,
        t.password,
      );
  }

  for (let rep = 0; rep < REPS; rep++) {
    // Round-robin: every workload visits every target in turn, starting one later each repetition.
    const order = targets.map((_, i) => targets[(i + rep) % targets.length]);
    const images = [
      ["big", results.bigImageBytes],
      ["small", results.smallImageBytes],
    ];
    for (const [image, bytes] of subset && process.env.BENCH_SKIP_BIG === "1" ? images.slice(1) : images) {
      for (const t of order) {
        // Per target too: (c) and (d) share one registry (the recipe proxies to it).
        const ref = `docker://${endpoint(t)}/bench/${image}-${t.key}-${TAG}r${rep}:latest`;
        const push = timedCopy(t, "push", `oci:/bench/${image}:latest`, ref);
        sample({ rep, target: t.key, metric: `${image}-push`, ...push, mibPerSecond: bytes / 1048576 / push.seconds });
        const pull = timedCopy(t, "pull", ref, "oci:/bench/pull:latest");
        sample({ rep, target: t.key, metric: `${image}-pull`, ...pull, mibPerSecond: bytes / 1048576 / pull.seconds });
      }
    }
    const requests = [
      ["get-v2", "GET", () => "/v2/"],
      ["head-manifest", "HEAD", (t) => `/v2/bench/small-${t.key}-${TAG}r${rep}/manifests/latest`],
    ];
    for (const [name, method, urlPath] of subset ? requests.slice(0, 1) : requests) {
      for (const c of subset ? [8] : CONCURRENCY) {
        for (const t of order) {
          sample({ rep, target: t.key, metric: `${name}-c${c}`, ...(await requestRate(t, method, urlPath(t), c, RATE_SECONDS)) });
        }
      }
    }
  }
  fs.writeFileSync(resultsFile, JSON.stringify(results, null, 2));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
