// Fault drills and load against a real deployment (the shared fixture,
// tests/helpers/deployment.ts: real `pulumi up` through the Automation API, real
// registry and nginx from the local Debian images, two SSH client hosts in containers
// with skopeo, restart: always). Each drill measures how long until the
// registry serves again and checks by digest that no image was lost:
// processes killed, the Docker engine restarted, a push cut off half way, a client
// host going down during `up`, the data volume's disk full, 8 clients at once, and
// `destroy` when a client host is gone for good (the README's way out).
// With RELIABILITY_REPORT_DIR set, the measurements are written as Markdown tables.
// Traffic goes only to this test's own network and containers.
import * as fs from "fs";
import * as path from "path";
import { spawn, spawnSync } from "child_process";
import { deployment, freePort } from "./helpers/deployment";
import { docker, dockerQuiet, waitForSsh } from "./helpers/e2e";
import { MAKE_IMAGE_SH } from "./helpers/ociImage";

jest.setTimeout(1_800_000);

const DNS_NAME = "registry.faults.test";
const ORPHAN_NAME = "orphan.faults.test";
const EXTRA_NAME = "registry2.faults.test"; // the DNS name the client-down drill adds
// restart: always, as a real host comes back after a power cut (the engine drill kills every container).
const d = deployment({
  tag: "flt",
  dnsName: DNS_NAME,
  extraHostNames: [EXTRA_NAME],
  clients: [{ restartAlways: true }, { restartAlways: true }],
});
let ENDPOINT = "";
let PORT = 0;
let CLIENT_IPS: string[] = [];
// An address of the test's own network that nothing holds: the clients' check cannot reach it.
let UNREACHABLE = "";

/** Images pushed so far, by repository: every drill checks them all. */
const pushed = new Map<string, string>();
const drills: { drill: string; result: string; data: string }[] = [];
let loadReport = "";

const client = (i: number, script: string, stdin = "") => d.clients[i].sh(script, stdin);
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Pushes a new image of random layers from client 1 (the fixture's push fails the test unless it succeeds); returns its digest. */
function pushNew(repo: string, layers = 2, bytes = 256 << 10): string {
  const digest = d.clients[0].push(repo, layers, bytes);
  pushed.set(repo, digest);
  return digest;
}

/** Every image pushed so far pulls from client 2, whole (skopeo checks each blob's digest), with its digest. */
function everyImagePulls(): string {
  for (const [repo, digest] of pushed) {
    const pull = client(
      1,
      `rm -rf /tmp/pull && skopeo copy --digestfile /tmp/pd docker://${ENDPOINT}/${repo} oci:/tmp/pull:x >/dev/null && cat /tmp/pd`,
    );
    expect({ ...pull, out: pull.out.trim() }).toEqual({ status: 0, out: digest });
  }
  return `${pushed.size} image(s) pulled whole, same digests`;
}

/** Every path under a client's /etc/docker/certs.d with its size and digest: the host's side, file for file. */
const clientFiles = (i: number): string => d.clients[i].certsD();

/** Pulumi's Diagnostics section, by resource name: what a user reads about each failure. */
function diagnostics(output: string): Map<string, string> {
  const section = output.split(/\nDiagnostics:\n/)[1]?.split(/\n(Outputs|Resources):\n/)[0] ?? "";
  const blocks = new Map<string, string>();
  for (const block of section.split(/\n(?=  \S+:\S+ \()/)) {
    const name = /^\s*\S+:\S+ \(([^)]+)\):/.exec(block)?.[1];
    if (name) blocks.set(name, block);
  }
  return blocks;
}

/** GET with the deployed CA: the status, or 0 when nothing answers within 3 s. */
const httpsStatus = (pathName: string, auth?: string): Promise<number> =>
  d.https(pathName, { auth, timeoutMs: 3000 }).then(
    (r) => r.status,
    () => 0,
  );

/** Milliseconds from `since` until GET /v2/ with a password answers 200 three times in a row. */
async function untilServed(since: number, limitMs = 120_000): Promise<number> {
  let good = 0;
  while (good < 3) {
    if (Date.now() - since > limitMs) throw new Error(`not served ${limitMs / 1000} s after the fault`);
    good = (await httpsStatus("/v2/", `admin:${d.passwords.admin}`)) === 200 ? good + 1 : 0;
    await sleep(200);
  }
  return Date.now() - since;
}

beforeAll(() => {
  ENDPOINT = d.endpoint;
  PORT = d.port;
  CLIENT_IPS = d.clients.map((c) => c.ip);
  UNREACHABLE = d.subnet.replace(/0\/24$/, "99");
  for (const c of d.clients) expect(c.login().status).toBe(0);
  pushNew("drill/first:1");
});

afterAll(() => writeReport());

describe("fault drills on a real deployment", () => {
  test.each([
    ["registry", "-registry"],
    ["nginx", "-nginx"],
  ])("the %s process killed (SIGKILL): served again, nothing lost", async (name, suffix) => {
    const container = d.names(suffix.slice(1));
    const pid = Number(docker("inspect", "-f", "{{.State.Pid}}", container));
    const killedAt = Date.now();
    process.kill(pid, "SIGKILL");
    const ms = await untilServed(killedAt);
    drills.push({ drill: `${name} process killed (SIGKILL)`, result: `served again after ${seconds(ms)}`, data: everyImagePulls() });
  });

  test("a push cut off half way leaves the registry serving, and the retried push completes", async () => {
    const before = pushed.size;
    // One 384 MiB layer: a few seconds of upload here, long enough to cut it part way.
    expect(client(0, `${MAKE_IMAGE_SH}\nmake_image /tmp/img-big 1 $((384 * 1024 * 1024)) >/tmp/big-digest`).status).toBe(0);
    const digest = client(0, "cat /tmp/big-digest").out.trim();
    const push = spawn("docker", [
      "exec",
      d.clients[0].name,
      "skopeo",
      "copy",
      "oci:/tmp/img-big:latest",
      `docker://${ENDPOINT}/drill/big:1`,
    ]);
    push.stdout.resume();
    // Cut it when the registry holds part of the upload.
    const startedAt = Date.now();
    let partial = 0;
    while (partial < 16 << 20) {
      if (Date.now() - startedAt > 60_000) throw new Error("the upload never got under way");
      const du = docker(
        "exec",
        d.names("registry"),
        "sh",
        "-c",
        "du -sb /var/lib/registry/docker/registry/v2/repositories/drill/big/_uploads 2>/dev/null | cut -f1",
      );
      partial = Number(du || "0");
      await sleep(100);
    }
    client(0, "pkill -KILL skopeo");
    await new Promise((r) => push.on("exit", r));
    const cutAt = Date.now();
    const servedMs = await untilServed(cutAt);
    expect(client(1, `skopeo inspect docker://${ENDPOINT}/drill/big:1`).status).not.toBe(0); // no half image is visible
    const retryStarted = Date.now();
    const retry = client(0, `skopeo copy --digestfile /tmp/d oci:/tmp/img-big:latest docker://${ENDPOINT}/drill/big:1 && cat /tmp/d`);
    expect({ ...retry, out: retry.out.trim().split("\n").pop() }).toEqual({ status: 0, out: digest });
    pushed.set("drill/big:1", digest);
    expect(pushed.size).toBe(before + 1);
    drills.push({
      drill: `push of a 384 MiB layer cut off (skopeo killed) with ${(partial / (1 << 20)).toFixed(0)} MiB uploaded`,
      result: `served throughout (${seconds(servedMs)} to confirm); no partial image visible; retried push done in ${seconds(Date.now() - retryStarted)}`,
      data: everyImagePulls(),
    });
  });

  test("the Docker engine killed (dockerd, containerd and every shim: SIGKILL) 20 times and stopped (SIGTERM) 20 times: each time the registry serves again by itself, and a new image pushes and pulls with its digest", async () => {
    const ROUNDS = 20;
    const servedMs: Record<string, number[]> = { SIGKILL: [], SIGTERM: [] };
    for (const signal of ["SIGKILL", "SIGTERM"] as const) {
      for (let round = 1; round <= ROUNDS; round++) {
        // SIGKILL as in a crash or a power cut: the engine, its containerd and every container's shim at once;
        // then the engine started again, as a boot would; nothing else is run (the fixture fails the test unless it starts).
        const stoppedAt = await d.restartEngine(signal);
        servedMs[signal].push(await untilServed(stoppedAt));
        // The client hosts are containers too (restart: always): wait for them, then a new image through it all.
        await d.clientsBack();
        const repo = `crash/${signal.toLowerCase()}-${round}:1`;
        const digest = pushNew(repo, 1, 64 << 10);
        pushed.delete(repo);
        const pull = client(
          1,
          `rm -rf /tmp/pc && skopeo copy --digestfile /tmp/pcd docker://${ENDPOINT}/${repo} oci:/tmp/pc:x >/dev/null && cat /tmp/pcd`,
        );
        expect({ signal, round, ...pull, out: pull.out.trim() }).toEqual({ signal, round, status: 0, out: digest });
      }
    }
    const stats = (xs: number[]) => {
      const s = [...xs].sort((a, b) => a - b);
      return `median ${seconds(s[Math.floor(s.length / 2)])}, max ${seconds(s[s.length - 1])}`;
    };
    await d.clientsBack({ ssh: true });
    drills.push({
      drill: `Docker engine killed (SIGKILL of dockerd, containerd and every container's shim) ${ROUNDS} times, and stopped (SIGTERM) ${ROUNDS} times, then started again with nothing else run`,
      result: `served again every time (${2 * ROUNDS} of ${2 * ROUNDS}) by itself: after SIGKILL ${stats(servedMs.SIGKILL)}, after SIGTERM ${stats(servedMs.SIGTERM)} from the stop`,
      data: `a new image pushed and pulled with its digest after each of the ${2 * ROUNDS}; ${everyImagePulls()}`,
    });
    // And then a no-change preview: the deployment is what the config says.
    const preview = await d.stack.preview({ expectNoChanges: true });
    expect(Object.keys(preview.changeSummary)).toEqual(["same"]);
  });

  test("a client host that goes down during `up`: the error names it, the other is set up, the next `up` converges", async () => {
    await d.setConfig({ "dnsNames[1]": EXTRA_NAME });
    let output = "";
    let stopped = false;
    const started = Date.now();
    // The host goes down after the pre-flight check has logged in to it: when the engine starts to change things.
    const up = d.stack
      .up({
        onOutput: (out) => {
          output += out;
          if (!stopped && /replac|creating/.test(output)) {
            stopped = true;
            docker("stop", "-t", "0", d.clients[1].name);
          }
        },
      })
      .then(
        () => "succeeded",
        (e: Error) => `${e.message}`,
      );
    const failure = await up;
    const failedMs = Date.now() - started;
    expect(stopped).toBe(true);
    expect(failure).not.toBe("succeeded");
    expect(output).toContain(CLIENT_IPS[1]);
    // The host that stayed up has the CA for the new name.
    expect(client(0, `test -s /etc/docker/certs.d/${EXTRA_NAME}:${PORT}/ca.crt && echo ok`).out).toBe("ok\n");
    docker("start", d.clients[1].name);
    waitForSsh(d.sshKeyFile, "root", CLIENT_IPS[1]);
    const rerunStarted = Date.now();
    const again = await d.up(); // the fixture fails the test unless it succeeds
    expect(client(1, `test -s /etc/docker/certs.d/${EXTRA_NAME}:${PORT}/ca.crt && echo ok`).out).toBe("ok\n");
    const preview = await d.stack.preview({ expectNoChanges: true });
    expect(Object.keys(preview.changeSummary)).toEqual(["same"]);
    expect(again.outputs.clientHosts.value).toEqual(CLIENT_IPS.map((ip) => `root@${ip}:22`));
    const line = output.split("\n").find((l) => l.includes(CLIENT_IPS[1]) && /error/i.test(l)) ?? "";
    drills.push({
      drill: "client host 2 stopped while `up` replaces the certificate",
      result: `\`up\` failed after ${seconds(failedMs)} naming ${CLIENT_IPS[1]} (${line.trim().slice(0, 160)}); client 1 set up; the next \`up\` converged in ${seconds(Date.now() - rerunStarted)}, then a no-change preview`,
      data: everyImagePulls(),
    });
  });

  test("a client check that fails on an `up` that adds an endpoint: a few lines per host, the new files in the state; the change taken back leaves nothing of the gone endpoint", async () => {
    const before = [clientFiles(0), clientFiles(1)];
    // The fixture fails the test if this `up` succeeds.
    const { output } = await d.failingUp({ "ipAddresses[1]": UNREACHABLE });
    const blocks = diagnostics(output);
    for (const ip of CLIENT_IPS) {
      const block = blocks.get(`registry-trust-${ip}-22-check`) ?? "";
      expect(block).toContain(
        `private-registry: https://${UNREACHABLE}:${PORT}/v2/ does not answer from this host over TLS verified by the installed CA: curl:`,
      );
      expect(block.length).toBeLessThan(2000);
      expect(block).not.toMatch(/for endpoint in|headers=\$\(curl/);
    }
    // The install for the new endpoint set ran and is recorded: its files are the state's to remove.
    for (const i of [0, 1]) expect(client(i, `test -s /etc/docker/certs.d/${UNREACHABLE}:${PORT}/ca.crt && echo ok`).out).toBe("ok\n");
    const recorded = (await d.stack.exportStack()).deployment.resources
      .filter((r: { urn: string }) => /::registry-trust-[\d.]+-22$/.test(r.urn))
      .map((r: { inputs: { stdin: unknown } }) => JSON.stringify(r.inputs.stdin));
    expect(recorded).toHaveLength(2);
    for (const stdin of recorded) expect(stdin).toContain(`'${UNREACHABLE}:${PORT}'`);
    await d.up({ "ipAddresses[1]": null }); // the fixture fails the test unless it succeeds
    expect([clientFiles(0), clientFiles(1)]).toEqual(before);
    const line =
      (blocks.get(`registry-trust-${CLIENT_IPS[0]}-22-check`) ?? "").split("\n").find((l) => l.includes("does not answer")) ?? "";
    drills.push({
      drill: "`up` adding an IP SAN that the client hosts cannot reach (their check fails)",
      result: `failed with ${[...blocks.values()].map((b) => b.length).join(" and ")} characters of diagnostics for the two hosts' checks (\`${line.trim().slice(0, 150)}\`); the new files recorded in the state; with the change taken back, \`up\` left each client's certs.d file for file as before`,
      data: everyImagePulls(),
    });
  });

  test("a check that fails on a first `up`, then `destroy`; an install that fails half way: each client is left file for file as it was", async () => {
    // Another stack of the program (the fixture's backend and project shell; destroyed and removed with the deployment) with client 1 only.
    const ORPHAN_PORT = freePort();
    const before = clientFiles(0);
    const other = await d.otherStack("o", {
      ...Object.fromEntries(Object.entries(d.baseConfig()).filter(([k]) => !/clients\[1\]|ipAddresses|dnsNames/.test(k))),
      "ipAddresses[0]": UNREACHABLE,
      "dnsNames[0]": ORPHAN_NAME,
      port: ORPHAN_PORT,
      namePrefix: `${d.id}o`,
    });
    const first = (await d.failingUp({}, other)).output;
    expect(first).toContain(`https://${UNREACHABLE}:${ORPHAN_PORT}/v2/ does not answer from this host`);
    expect(clientFiles(0)).not.toEqual(before);
    await d.destroy(other);
    expect(clientFiles(0)).toEqual(before);
    // Half way: the second endpoint's folder cannot be made (a file is in the way).
    expect(client(0, `touch '/etc/docker/certs.d/${ORPHAN_NAME}:${ORPHAN_PORT}'`).status).toBe(0);
    const withBlocker = clientFiles(0);
    const half = (await d.failingUp({}, other)).output;
    expect(half).toContain("private-registry: the install failed; what it had created on this host is removed again");
    expect(clientFiles(0)).toEqual(withBlocker);
    await d.destroy(other);
    expect(client(0, `rm '/etc/docker/certs.d/${ORPHAN_NAME}:${ORPHAN_PORT}'`).status).toBe(0);
    expect(clientFiles(0)).toEqual(before);
    drills.push({
      drill:
        "a first `up` whose client check fails, then `destroy`; an `up` whose install fails half way (a file where an endpoint's folder goes)",
      result:
        "the first left its files recorded and `destroy` removed them; the half-way install removed what it had made itself; the client's certs.d file for file as before both times",
      data: "-",
    });
  });

  test("the registry and nginx containers removed or stopped behind Pulumi's back: one `npm run deploy` serves again, with the images", async () => {
    docker("rm", "-f", d.names("registry"));
    docker("stop", d.names("nginx"));
    const started = Date.now();
    const deploy = d.npmRun("deploy", ["--stack", d.id], { timeout: 600_000 });
    expect({ status: deploy.status, tail: `${deploy.stdout}${deploy.stderr}`.slice(-1500) }).toEqual({
      status: 0,
      tail: expect.stringContaining("Registry endpoints:"),
    });
    const ms = await untilServed(started);
    drills.push({
      drill: "the registry container removed and nginx stopped behind Pulumi's back",
      result: `one \`npm run deploy\` (up --refresh) made them again; served ${seconds(ms)} after it started`,
      data: everyImagePulls(),
    });
  });

  test("with deleteEnabled false (the default), a delete by digest is refused as unsupported and the image still pulls", () => {
    const [repo, digest] = [...pushed.entries()][0];
    const name = repo.split(":")[0];
    const refused = client(0, `skopeo delete docker://${ENDPOINT}/${name}@${digest}`);
    expect(refused.status).not.toBe(0);
    expect(refused.out).toMatch(/unsupported|405/i);
    const pull = client(
      1,
      `rm -rf /tmp/pdel && skopeo copy --digestfile /tmp/pdeld docker://${ENDPOINT}/${name}@${digest} oci:/tmp/pdel:x >/dev/null && cat /tmp/pdeld`,
    );
    expect({ ...pull, out: pull.out.trim() }).toEqual({ status: 0, out: digest });
  });

  test("8 clients pushing and pulling distinct multi-layer images at once: no error, every digest verified", () => {
    const WORKERS = 8;
    const SECONDS = 45;
    // Each worker: make a new 3-layer image (3 x 512 KiB), push it, pull it back whole, compare digests; repeat.
    const worker = `${MAKE_IMAGE_SH}
w=$1; end=$(( $(date +%s) + ${SECONDS} )); n=0
while [ "$(date +%s)" -lt "$end" ]; do
  n=$((n + 1)); repo="load/w$w:$n"
  d=$(make_image /tmp/load-$w 3 524288)
  t0=$(date +%s%N)
  if skopeo copy --digestfile /tmp/load-$w.push oci:/tmp/load-$w:latest docker://${ENDPOINT}/$repo >/dev/null 2>/tmp/load-$w.err &&
     t1=$(date +%s%N) &&
     rm -rf /tmp/load-$w.pull && skopeo copy --digestfile /tmp/load-$w.pd docker://${ENDPOINT}/$repo oci:/tmp/load-$w.pull:x >/dev/null 2>>/tmp/load-$w.err &&
     [ "$(cat /tmp/load-$w.push)" = "$d" ] && [ "$(cat /tmp/load-$w.pd)" = "$d" ]; then
    t2=$(date +%s%N)
    echo "ok $(( (t1 - t0) / 1000000 )) $(( (t2 - t1) / 1000000 )) $(du -sb /tmp/load-$w/blobs | cut -f1)"
  else
    echo "error $repo $(tail -c 300 /tmp/load-$w.err | tr '\\n' ' ')"
  fi
done`;
    expect(client(0, "cat >/tmp/load-worker.sh", worker).status).toBe(0);
    expect(client(1, "cat >/tmp/load-worker.sh", worker).status).toBe(0);
    // Four workers on each client host, all at once.
    const run = (i: number) =>
      `for w in ${[0, 1, 2, 3].map((w) => w + i * 4).join(" ")}; do sh /tmp/load-worker.sh $w >/tmp/load-result-$w 2>&1 & done; wait; cat /tmp/load-result-*`;
    const started = Date.now();
    const results = spawnSync(
      "sh",
      ["-c", `docker exec ${d.clients[0].name} sh -c '${run(0)}' & docker exec ${d.clients[1].name} sh -c '${run(1)}' & wait`],
      { encoding: "utf8", timeout: (SECONDS + 120) * 1000 },
    );
    const wallMs = Date.now() - started;
    const lines = results.stdout.split("\n").filter(Boolean);
    const ok = lines.filter((l) => l.startsWith("ok ")).map((l) => l.split(" ").slice(1).map(Number));
    const errors = lines.filter((l) => !l.startsWith("ok "));
    const bytes = ok.reduce((sum, [, , b]) => sum + b, 0);
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
    loadReport = [
      `| Clients | Time | Images pushed and pulled back | Errors | Data moved (push + pull) | Images per second | Median push | Median pull |`,
      "|---|---|---|---|---|---|---|---|",
      `| ${WORKERS} (4 on each of 2 client hosts) | ${seconds(wallMs)} | ${ok.length} (3 layers of 512 KiB each, all new) | ${errors.length} | ` +
        `${((2 * bytes) / (1 << 20)).toFixed(0)} MiB, ${((2 * bytes) / (1 << 20) / (wallMs / 1000)).toFixed(1)} MiB/s | ` +
        `${(ok.length / (wallMs / 1000)).toFixed(2)} | ${median(ok.map(([p]) => p))} ms | ${median(ok.map(([, q]) => q))} ms |`,
    ].join("\n");
    expect(errors).toEqual([]);
    expect(ok.length).toBeGreaterThanOrEqual(WORKERS);
    drills.push({
      drill: `load: ${WORKERS} clients for ${SECONDS} s`,
      result: `${ok.length} distinct images pushed and pulled back, ${errors.length} errors`,
      data: everyImagePulls(),
    });
  });

  test("the data volume's disk full: the client gets a clear error, and pushes work again once space returns", async () => {
    // A second stack whose data volume is a 64 MiB tmpfs, adopted (so destroy never deletes what the test made).
    // (Another stack of the fixture's, without clients; destroyed and removed with the deployment.)
    const diskVolume = `${d.id}d-data`;
    const diskPort = freePort();
    const DISK_ENDPOINT = `${d.gateway}:${diskPort}`;
    docker("volume", "create", "--driver", "local", "--opt", "type=tmpfs", "--opt", "device=tmpfs", "--opt", "o=size=64m", diskVolume);
    try {
      const disk = await d.otherStack("d", {
        ...Object.fromEntries(Object.entries(d.baseConfig()).filter(([k]) => !k.includes("clients"))),
        port: diskPort,
        namePrefix: `${d.id}d`,
        adoptExistingVolume: true,
      });
      const up = await d.up({}, disk); // the fixture fails the test unless it succeeds
      const diskPassword = up.outputs.credentials.value.admin;
      // Client 1 trusts this stack's CA through a cert dir of its own.
      expect(client(0, "mkdir -p /tmp/disk-certs && cat >/tmp/disk-certs/ca.crt", up.outputs.caCertPem.value).status).toBe(0);
      const certDir = "--dest-cert-dir /tmp/disk-certs";
      expect(
        client(0, `skopeo login --cert-dir /tmp/disk-certs --username admin --password-stdin ${DISK_ENDPOINT}`, diskPassword).status,
      ).toBe(0);
      const kept = client(
        0,
        `${MAKE_IMAGE_SH}\nmake_image /tmp/img-kept 1 1048576 && skopeo copy ${certDir} oci:/tmp/img-kept:latest docker://${DISK_ENDPOINT}/disk/kept:1 >/dev/null`,
      );
      expect(kept.status).toBe(0);
      const keptDigest = kept.out.trim().split("\n")[0];
      // Fill the disk.
      docker(
        "exec",
        `${d.id}d-registry`,
        "sh",
        "-c",
        "dd if=/dev/zero of=/var/lib/registry/filler bs=1M 2>/dev/null; df -k /var/lib/registry | tail -1",
      );
      const full = client(
        0,
        `${MAKE_IMAGE_SH}\nmake_image /tmp/img-full 2 2097152 >/dev/null && skopeo copy ${certDir} --retry-times 0 oci:/tmp/img-full:latest docker://${DISK_ENDPOINT}/disk/full:1`,
      );
      expect(full.status).not.toBe(0);
      const clientError = full.out.trim().split("\n").pop() ?? "";
      expect(clientError).toMatch(/500|unknown|space/i);
      // The operator finds the cause in the registry's log.
      expect(spawnSync("docker", ["logs", `${d.id}d-registry`], { encoding: "utf8" }).stderr).toContain("no space left on device");
      // Still serving what it has while full.
      const whileFull = client(
        0,
        `skopeo inspect ${certDir.replace("dest-", "")} --format '{{.Digest}}' docker://${DISK_ENDPOINT}/disk/kept:1`,
      );
      expect(whileFull).toEqual({ status: 0, out: `${keptDigest}\n` });
      // Space returns.
      const freedAt = Date.now();
      docker("exec", `${d.id}d-registry`, "rm", "-f", "/var/lib/registry/filler");
      const retry = client(
        0,
        `skopeo copy ${certDir} --digestfile /tmp/d oci:/tmp/img-full:latest docker://${DISK_ENDPOINT}/disk/full:1 && cat /tmp/d`,
      );
      expect(retry.status).toBe(0);
      const pulledBack = client(
        0,
        `rm -rf /tmp/pk && skopeo copy --src-cert-dir /tmp/disk-certs --digestfile /tmp/pkd docker://${DISK_ENDPOINT}/disk/kept:1 oci:/tmp/pk:x >/dev/null && cat /tmp/pkd`,
      );
      expect({ ...pulledBack, out: pulledBack.out.trim() }).toEqual({ status: 0, out: keptDigest });
      drills.push({
        drill: "data volume's disk full (64 MiB tmpfs filled)",
        result: `the push fails at once; the client prints \`${clientError
          .replace(/`/g, "'")
          .replace(/^.*msg="/, "")
          .replace(/"$/, "")
          .slice(
            0,
            200,
          )}\`, the registry's log says \`no space left on device\`; pulls of stored images go on; the same push succeeded ${seconds(Date.now() - freedAt)} after space was freed`,
        data: "the image stored before the disk filled pulled whole, same digest",
      });
      // The stack never made the adopted volume: destroy (keepDataOnDestroy false) leaves it.
      // (Its contents cannot be checked after: a tmpfs volume is emptied when no container mounts it.)
      await d.destroy(disk);
      expect(docker("volume", "ls", "-q", "--filter", `name=^${diskVolume}$`)).toBe(diskVolume);
    } finally {
      // The test made it: the test removes it (after a failure, the teardown's destroy frees it first).
      dockerQuiet("volume", "rm", diskVolume);
    }
  });

  test("`destroy` with a client host gone for good: it names the host, the README's way out finishes it, nothing is left", async () => {
    docker("rm", "-f", d.clients[1].name);
    const started = Date.now();
    const failed = await d.stack.destroy().then(
      () => "succeeded",
      (e: Error) => e.message,
    );
    const failedMs = Date.now() - started;
    expect(failed).toContain(CLIENT_IPS[1]);
    // The README: find the command's URN, `npm run pulumi -- state delete` it, destroy again.
    const urns = d.npmRun("pulumi", ["stack", "--stack", d.id, "--show-urns"]).stdout;
    const urn = urns.split(/\s+/).find((w) => w.startsWith("urn:") && w.endsWith(`::registry-trust-${CLIENT_IPS[1]}-22`));
    expect(urn).toBeDefined();
    const forget = d.npmRun("pulumi", ["state", "delete", "--yes", "--stack", d.id, urn as string]);
    expect(forget.status).toBe(0);
    await d.destroy(); // the fixture fails the test unless it succeeds
    expect(docker("ps", "-a", "-q", "--filter", `name=^${d.id}-(registry|nginx|users-writer)$`)).toBe("");
    expect(docker("volume", "ls", "-q", "--filter", `name=^${d.id}-users$`)).toBe("");
    expect(docker("network", "ls", "-q", "--filter", `name=^${d.id}-net$`)).toBe("");
    expect(client(0, "ls /etc/docker/certs.d 2>/dev/null; true").out.trim()).toBe("");
    drills.push({
      drill: "`destroy` after client host 2 was removed for good",
      result: `failed after ${seconds(failedMs)} naming ${CLIENT_IPS[1]}; \`npm run pulumi -- state delete\` of its command, then \`destroy\` succeeded`,
      data: "no container, network or client file left (the volume: keepDataOnDestroy false, deleted)",
    });
  });
});

function writeReport(): void {
  const dir = process.env.RELIABILITY_REPORT_DIR;
  if (!dir) return;
  const cell = (t: string) => t.replace(/\|/g, "\\|").replace(/\n/g, " ");
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(
    path.join(dir, "fault-drills.md"),
    [
      "| Drill | What happened | Data check |",
      "|---|---|---|",
      ...drills.map((r) => `| ${cell(r.drill)} | ${cell(r.result)} | ${cell(r.data)} |`),
    ].join("\n") + "\n",
  );
  fs.writeFileSync(path.join(dir, "load.md"), `${loadReport}\n`);
}
