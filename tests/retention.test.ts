// Retention on a real deployment (`npm run gc -- --stack NAME --retention`): regctl built
// from its Go module (scripts/ensure-regctl.sh, cached), talking to the registry through
// nginx with the stack's CA and an admin's password, the registry's own collector after.
// 12 tags over time in team-a/app, 3 in team-b/app, a policy keeping 5 in team-a: the dry
// run lists exactly the 7 oldest and deletes nothing; the run deletes exactly them, the
// kept ones pull by digest, the data volume shrinks by their unshared layers only (a
// layer every image has and one a deleted image shares with a kept one stay), and team-b
// is untouched. Then two newer tags and a second run while a client pushes all along:
// every push either succeeded and pulls intact by digest afterwards, or failed and
// succeeded on retry. Last, deleteUntagged: an untagged manifest stored for over an
// hour goes, a fresh one stays. The refusal with deleteEnabled false comes first.
import { spawn, spawnSync } from "child_process";
import { containerSh } from "./helpers/e2e";
import { deployment } from "./helpers/deployment";
import { MAKE_IMAGE_SH } from "./helpers/ociImage";

jest.setTimeout(600_000);

const d = deployment({
  tag: "retention",
  dnsName: "registry.retention.example",
  clients: [{}],
  config: { deleteEnabled: true, "retention.team-a.keepLast": 5 },
});

const MiB = 1 << 20;
// t01 is the oldest: created 2026-01-01, one day apart; pushed in another order.
const created = (i: number) => new Date(Date.UTC(2026, 0, i)).toISOString();
const tag = (i: number) => `t${String(i).padStart(2, "0")}`;
const PUSH_ORDER = [7, 3, 12, 1, 9, 5, 11, 2, 8, 4, 10, 6];

const registry = () => (d.outputs.containers.value as { registry: string }).registry;
const sh = (script: string) => d.clients[0].sh(script);

/** Makes an image on the client (one random layer of `bytes`, after the shared layers) and pushes it as repo:tag; its digest. */
function pushImage(ref: string, createdAt: string, bytes: number, shared: string[] = []): string {
  const dir = `/tmp/img-${ref.replace(/\W/g, "_")}`;
  const made = sh(`${MAKE_IMAGE_SH}\nmake_image ${dir} 1 ${bytes} ${createdAt} ${shared.join(" ")}`);
  expect(made.status).toBe(0);
  const digest = made.out.trim();
  const push = sh(
    `skopeo copy --digestfile /tmp/pushed-digest oci:${dir}:latest docker://${d.endpoint}/${ref} >/dev/null && cat /tmp/pushed-digest`,
  );
  expect({ ...push, out: push.out.trim() }).toEqual({ status: 0, out: digest });
  return digest;
}

/** Pulls repo@digest whole on the client (skopeo checks every blob's digest); the digest pulled, or the error. */
function pullByDigest(repo: string, digest: string): string {
  const r = sh(
    `rm -rf /tmp/pulled && skopeo copy --digestfile /tmp/pulled-digest docker://${d.endpoint}/${repo}@${digest} oci:/tmp/pulled:x >/dev/null && cat /tmp/pulled-digest`,
  );
  return r.status === 0 ? r.out.trim() : `failed: ${r.out.trim().split("\n").pop()}`;
}

const tags = (repo: string) => JSON.parse(sh(`skopeo list-tags docker://${d.endpoint}/${repo}`).out).Tags.sort() as string[];

/** Every blob in the registry's storage: digest -> size in bytes. */
function blobs(): Map<string, number> {
  const out = containerSh(registry(), "find /var/lib/registry/docker/registry/v2/blobs -name data -type f -exec stat -c '%s %n' {} +").out;
  return new Map(
    out
      .split("\n")
      .filter(Boolean)
      .map((line) => {
        const [size, file] = line.split(" ");
        return [`sha256:${file.split("/").slice(-2)[0]}`, Number(size)];
      }),
  );
}
const volumeBytes = () => Number(containerSh(registry(), "du -sb /var/lib/registry").out.split(/\s/)[0]);

/** The layer and config digests of a pushed image (its OCI layout on the client). */
function imageBlobs(ref: string, manifest: string): string[] {
  const dir = `/tmp/img-${ref.replace(/\W/g, "_")}`;
  const m = JSON.parse(sh(`cat ${dir}/blobs/sha256/${manifest.slice(7)}`).out) as {
    config: { digest: string };
    layers: { digest: string }[];
  };
  return [m.config.digest, ...m.layers.map((l) => l.digest)];
}

const digests: Record<string, string> = {};
const other: Record<string, string> = {};
let sharedBase = "";
let sharedMid = "";

describe("npm run gc -- --retention", () => {
  beforeAll(() => {
    expect(d.clients[0].login().status).toBe(0);
    // Two gzipped tars for shared layers: `base` in every team-a image, `mid` in t07 (deleted) and t08 (kept).
    const made = sh(
      `${MAKE_IMAGE_SH}\nfor n in base mid; do make_image /tmp/$n 1 ${MiB} >/dev/null && ` +
        `for f in /tmp/$n/blobs/sha256/*; do if gzip -t "$f" 2>/dev/null; then cp "$f" /tmp/$n.tar.gz; echo "sha256:$(basename "$f")"; fi; done; done`,
    );
    expect(made.status).toBe(0);
    [sharedBase, sharedMid] = made.out.trim().split("\n");
    for (const i of PUSH_ORDER) {
      const shared = i === 7 || i === 8 ? ["/tmp/base.tar.gz", "/tmp/mid.tar.gz"] : ["/tmp/base.tar.gz"];
      digests[tag(i)] = pushImage(`team-a/app:${tag(i)}`, created(i), MiB, shared);
    }
    // Older than every team-a image: a policy applied to the wrong project would take them first.
    for (const i of [1, 2, 3]) other[`b${i}`] = pushImage(`team-b/app:b${i}`, new Date(Date.UTC(2025, 0, i)).toISOString(), 256 << 10);
  });

  test("refused, naming the setting, while deleteEnabled is false", async () => {
    await d.setConfig({ deleteEnabled: false });
    const r = d.npmRun("gc", ["--stack", d.id, "--retention"], { timeout: 600_000 });
    await d.setConfig({ deleteEnabled: true });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain(`[retention] error: deleteEnabled is false on stack ${d.id}`);
    expect(tags("team-a/app")).toHaveLength(12);
  });

  test("--dry-run lists exactly the 7 oldest as deleted, with why, and deletes nothing", () => {
    const before = blobs();
    const r = d.npmRun("gc", ["--stack", d.id, "--retention", "--dry-run"], { timeout: 600_000 });
    expect(r.stderr).toContain("dry run: no tag deleted, nothing collected");
    expect(r.status).toBe(0);
    const wouldDelete = r.stdout.split("\n").filter((l) => l.includes(" would delete: "));
    expect(wouldDelete.map((l) => l.split(" ")[0]).sort()).toEqual([1, 2, 3, 4, 5, 6, 7].map((i) => `team-a/app:${tag(i)}`));
    expect(wouldDelete.find((l) => l.startsWith("team-a/app:t01 "))).toMatch(
      /would delete: not among the newest 5 \(number 12\) \(created 2026-01-01T00:00:00.000Z\)$/,
    );
    expect(r.stdout).toContain("team-a/app:t12 ");
    expect(r.stdout).toMatch(/team-a\/app:t12 sha256:\S+ keep: newest 1 of 5 kept tags \(keepLast\)/);
    expect(r.stderr).toContain("team-b/app: no policy for its project, untouched");
    expect(tags("team-a/app")).toHaveLength(12);
    expect(blobs()).toEqual(before);
  });

  test("deletes exactly the 7 oldest; the kept pull by digest; the volume shrinks by their unshared layers only; team-b untouched", () => {
    const beforeBlobs = blobs();
    const beforeBytes = volumeBytes();
    const r = d.npmRun("gc", ["--stack", d.id, "--retention"], { timeout: 600_000 });
    expect(r.stderr).toContain("the registry is serving again");
    expect(r.status).toBe(0);
    expect(r.stderr).toContain("[retention] deleted 7 tags (7 manifests, 0 untagged manifests) in 1 repositories with a policy");

    expect(tags("team-a/app")).toEqual([8, 9, 10, 11, 12].map(tag));
    for (const i of [8, 9, 10, 11, 12]) expect(pullByDigest("team-a/app", digests[tag(i)])).toBe(digests[tag(i)]);
    for (const i of [1, 2, 3, 4, 5, 6, 7]) expect(pullByDigest("team-a/app", digests[tag(i)])).toMatch(/^failed: .*manifest unknown/i);
    expect(tags("team-b/app")).toEqual(["b1", "b2", "b3"]);
    for (const [t, digest] of Object.entries(other)) expect([t, pullByDigest("team-b/app", digest)]).toEqual([t, digest]);

    // The blobs that went: exactly the deleted images' manifests, configs and own layers.
    const afterBlobs = blobs();
    const gone = [...beforeBlobs.keys()].filter((b) => !afterBlobs.has(b)).sort();
    const expected = [1, 2, 3, 4, 5, 6, 7]
      .flatMap((i) => [digests[tag(i)], ...imageBlobs(`team-a/app:${tag(i)}`, digests[tag(i)])])
      .filter((b) => b !== sharedBase && b !== sharedMid);
    expect(gone).toEqual([...new Set(expected)].sort());
    expect(afterBlobs.has(sharedBase) && afterBlobs.has(sharedMid)).toBe(true);
    expect([...afterBlobs.keys()].filter((b) => !beforeBlobs.has(b))).toEqual([]);
    // The volume: down by those blobs' bytes, plus the folders and link files that held them (a few KiB each).
    const goneBytes = gone.reduce((sum, b) => sum + (beforeBlobs.get(b) ?? 0), 0);
    const shrink = beforeBytes - volumeBytes();
    expect(goneBytes).toBeGreaterThan(7 * MiB);
    expect(goneBytes).toBeLessThan(7 * MiB + 64 * 1024);
    expect(shrink).toBeGreaterThanOrEqual(goneBytes);
    // Less than a shared layer: had the base or the mid layer gone, this would fail too.
    expect(shrink - goneBytes).toBeLessThan(512 * 1024);
    console.log(`volume ${beforeBytes} -> ${beforeBytes - shrink} bytes: -${shrink} (blobs of the 7 deleted images: ${goneBytes})`);
  });

  test("a second run while a client pushes all along: the next 2 oldest go, and every push is intact or fails and succeeds on retry", async () => {
    digests.t13 = pushImage("team-a/app:t13", created(13), 256 << 10, ["/tmp/base.tar.gz"]);
    digests.t14 = pushImage("team-a/app:t14", created(14), 256 << 10, ["/tmp/base.tar.gz"]);
    // live/app has no policy; a push every moment, each to a new tag, until told to stop.
    const loop = spawn(
      "docker",
      [
        "exec",
        d.clients[0].name,
        "sh",
        "-c",
        `${MAKE_IMAGE_SH}\nrm -f /tmp/stop-pushing; i=0\nwhile [ ! -e /tmp/stop-pushing ]; do\n  i=$((i + 1))\n` +
          `  dg=$(make_image /tmp/live$i 2 ${128 << 10} "$(date -u +%Y-%m-%dT%H:%M:%SZ)")\n` +
          `  start=$(date +%s.%N)\n` +
          `  if skopeo copy oci:/tmp/live$i:latest docker://${d.endpoint}/live/app:p$i >/dev/null 2>/tmp/live$i.err; then s=ok; else s=failed; fi\n` +
          `  echo "$s p$i $dg $start $(date +%s.%N)"\n` +
          `done`,
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    let output = "";
    loop.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const finished = new Promise<void>((resolve) => loop.on("close", () => resolve()));
    await new Promise((resolve) => setTimeout(resolve, 3000)); // pushes before the run, too

    const runStart = Math.floor(Date.now() / 1000);
    const r = d.npmRun("gc", ["--stack", d.id, "--retention"], { timeout: 600_000 });
    await new Promise((resolve) => setTimeout(resolve, 3000)); // and after it
    sh("touch /tmp/stop-pushing");
    await finished;
    expect(r.stderr).toContain("the registry is serving again");
    expect(r.status).toBe(0);
    expect(tags("team-a/app")).toEqual([10, 11, 12, 13, 14].map(tag));
    expect(
      r.stdout
        .split("\n")
        .filter((l) => / delete: /.test(l))
        .map((l) => l.split(" ")[0]),
    ).toEqual(["team-a/app:t09", "team-a/app:t08"]);

    const pushes = output
      .trim()
      .split("\n")
      .map((l) => l.split(" ") as [string, string, string, string, string]);
    // The deletions, from nginx's access log (to the second): a push that succeeded was under way then.
    const proxy = (d.outputs.containers.value as { proxy: string }).proxy;
    const deletes = spawnSync("docker", ["logs", "--since", String(runStart), proxy], { encoding: "utf8" })
      .stdout.split("\n")
      .filter((l) => /"DELETE \/v2\/team-a\/app\/manifests\/sha256:\w+ HTTP\/[\d.]+" 202 /.test(l)) // each after a 401 asking for credentials
      .map((l) => {
        const [, day, month, year, time] = /\[(\d+)\/(\w+)\/(\d+):(\d+:\d+:\d+) \+0000\]/.exec(l) ?? [];
        return Date.parse(`${day} ${month} ${year} ${time} UTC`) / 1000;
      });
    expect(deletes).toHaveLength(2);
    const [from, to] = [Math.min(...deletes), Math.max(...deletes) + 1];
    const duringDeletion = pushes.filter(([s, , , start, end]) => s === "ok" && Number(start) < to && Number(end) >= from);
    console.log(
      `deletions between ${from} and ${to} (epoch seconds); pushes that succeeded under way then: ${duringDeletion.map(([, t]) => t).join(" ")}`,
    );
    expect(duringDeletion.length).toBeGreaterThanOrEqual(1);
    const failed = pushes.filter(([s]) => s === "failed").map(([, t]) => t);
    console.log(`pushes during the run: ${pushes.length}, ${failed.length} failed (${failed.join(" ") || "none"}), retried below`);
    expect(pushes.length).toBeGreaterThanOrEqual(5);
    expect(pushes.filter(([s]) => s === "ok").length).toBeGreaterThanOrEqual(3);
    for (const t of failed) {
      const retry = sh(`skopeo copy oci:/tmp/live${t.slice(1)}:latest docker://${d.endpoint}/live/app:${t} >/dev/null`);
      expect([t, retry.status, retry.out]).toEqual([t, 0, ""]);
    }
    expect(tags("live/app")).toEqual(pushes.map(([, t]) => t).sort());
    for (const [, t, digest] of pushes) expect([t, pullByDigest("live/app", digest)]).toEqual([t, digest]);
    // The collection stopped the proxy: pushes in that window failed (and succeeded on retry above).
    expect(failed.length).toBeGreaterThanOrEqual(1);
    for (const i of [10, 11, 12, 13, 14]) expect(pullByDigest("team-a/app", digests[tag(i)])).toBe(digests[tag(i)]);
    for (const [t, digest] of Object.entries(other)) expect([t, pullByDigest("team-b/app", digest)]).toEqual([t, digest]);
  });

  test("deleteUntagged: an untagged manifest stored for over an hour goes, a fresh one stays, every tag stays", async () => {
    await d.setConfig({ "retention.team-a.deleteUntagged": true });
    // t13 and t14 pushed again: their old manifests are untagged now; the old t14's is made two hours old.
    const old13 = digests.t13;
    const old14 = digests.t14;
    digests.t13 = pushImage("team-a/app:t13", created(13), 64 << 10, ["/tmp/base.tar.gz"]);
    digests.t14 = pushImage("team-a/app:t14", created(14), 64 << 10, ["/tmp/base.tar.gz"]);
    const link = `/var/lib/registry/docker/registry/v2/repositories/team-a/app/_manifests/revisions/sha256/${old14.slice(7)}/link`;
    expect(containerSh(registry(), `touch -d '2 hours ago' ${link}`).status).toBe(0);

    const r = d.npmRun("gc", ["--stack", d.id, "--retention"], { timeout: 600_000 });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`team-a/app@${old14.slice(0, 19)} delete: untagged, stored for more than 60 minutes`);
    expect(r.stderr).toContain("[retention] deleted 0 tags (0 manifests, 1 untagged manifests) in 1 repositories with a policy");
    expect(pullByDigest("team-a/app", old14)).toMatch(/^failed: .*manifest unknown/i);
    expect(pullByDigest("team-a/app", old13)).toBe(old13);
    expect(tags("team-a/app")).toEqual([10, 11, 12, 13, 14].map(tag));
    for (const i of [10, 11, 12, 13, 14]) expect(pullByDigest("team-a/app", digests[tag(i)])).toBe(digests[tag(i)]);
  });
});
