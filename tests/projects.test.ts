// Rights per project on a real deployment (the shared fixture, tests/helpers/deployment.ts:
// the real Pulumi engine, the local registry and nginx images, one SSH client host with
// skopeo that got the CA): users with push, pull or nothing on two projects, every method
// on every path, real pushes and pulls, the blob-mount trick, the catalog, and a rights
// change during a running pull loop (no container replaced, no request failed).
// Traffic goes only to this test's network's host side and to its containers.
import * as https from "https";
import { docker } from "./helpers/e2e";
import { deployment } from "./helpers/deployment";
import { MAKE_IMAGE_SH } from "./helpers/ociImage";
import { Answer, basic, request, Target } from "./helpers/attack";

jest.setTimeout(600_000);

const DNS_NAME = "registry.projects.test";
// admin: every project (users); reader: every project, pull only (pullOnlyUsers); the others: rights per project.
const RIGHTS: Record<string, Record<string, "pull" | "push">> = {
  "ci-a": { "team-a": "push" },
  "ci-b": { "team-b": "push" },
  "pull-a": { "team-a": "pull" },
  mixed: { "*": "pull", "team-a": "push" },
};
const USERS = ["admin", "reader", ...Object.keys(RIGHTS)];
const PROJECTS = ["team-a", "team-b"];

const rightsConfig = (rights: Record<string, Record<string, string>>) =>
  Object.fromEntries(
    Object.entries(rights).flatMap(([user, projects]) => Object.entries(projects).map(([p, r]) => [`rights["${user}"]["${p}"]`, r])),
  );

const d = deployment({
  tag: "proj",
  dnsName: DNS_NAME,
  clients: [{}],
  config: {
    ...Object.fromEntries(USERS.map((u, i) => [`users[${i}]`, u])),
    "pullOnlyUsers[0]": "reader",
    ...rightsConfig(RIGHTS),
    deleteEnabled: true,
  },
});

const target = (): Target => ({ host: d.gateway, port: d.port, ca: d.caPem, servername: DNS_NAME });
const as = (user: string) => ({ Authorization: basic(user, d.passwords[user]) });
/** What the settings say each user may do in a project. */
function may(user: string, project: string, need: "pull" | "push", rights = RIGHTS): boolean {
  if (user === "admin") return true;
  if (user === "reader") return need === "pull";
  const r = rights[user][project] ?? rights[user]["*"];
  return r === "push" || (r === "pull" && need === "pull");
}
/** nginx's refusal: 403 with Docker's DENIED error (HEAD: no body). */
const deniedByProxy = (a: Answer, method: string) =>
  a.status === 403 &&
  a.headers["docker-distribution-api-version"] === "registry/2.0" &&
  (method === "HEAD" || /"code":"DENIED"/.test(a.body));

// skopeo on the client host, one auth file per user (passwords on stdin, never on a command line).
const sh = (script: string, stdin = "") => d.clients[0].sh(script, stdin);
function login(user: string): void {
  const r = sh(`skopeo login --authfile /tmp/auth-${user}.json --username ${user} --password-stdin ${d.endpoint}`, d.passwords[user]);
  expect({ user, status: r.status }).toEqual({ user, status: 0 });
}
/** Pushes a new image of random layers as `user`: its digest, or what skopeo said. */
function push(user: string, repo: string): { ok: boolean; out: string } {
  const dir = `/tmp/img-${repo.replace(/\W/g, "_")}`;
  const r = sh(
    `${MAKE_IMAGE_SH}\nmake_image ${dir} 2 65536 >/dev/null && ` +
      `skopeo copy --dest-authfile /tmp/auth-${user}.json --digestfile /tmp/pushed oci:${dir}:latest docker://${d.endpoint}/${repo} >/dev/null && cat /tmp/pushed`,
  );
  return { ok: r.status === 0, out: r.out.trim() };
}
/** Pulls `repo` whole as `user` (skopeo checks every blob's digest): its digest, or what skopeo said. */
function pull(user: string, repo: string): { ok: boolean; out: string } {
  const r = sh(
    `rm -rf /tmp/pulled && skopeo copy --src-authfile /tmp/auth-${user}.json --digestfile /tmp/pulled-digest docker://${d.endpoint}/${repo} oci:/tmp/pulled:x >/dev/null && cat /tmp/pulled-digest`,
  );
  return { ok: r.status === 0, out: r.out.trim() };
}

const pushed: Record<string, string> = {};

beforeAll(() => {
  for (const user of USERS) login(user);
  // The admin fills both projects, one repository with two components in each.
  for (const project of PROJECTS) {
    for (const repo of [`${project}/app`, `${project}/tools/cli`]) {
      const r = push("admin", repo);
      expect({ repo, ok: r.ok }).toEqual({ repo, ok: true });
      pushed[repo] = r.out;
    }
  }
});

describe("rights per project, enforced by nginx in front of the real registry", () => {
  test("each user pushes and pulls with skopeo exactly where its rights allow; refusals name the project", () => {
    const wrong: string[] = [];
    for (const user of USERS) {
      for (const project of PROJECTS) {
        const repo = `${project}/tools/cli`;
        const pulled = pull(user, repo);
        if (pulled.ok !== may(user, project, "pull") || (pulled.ok && pulled.out !== pushed[repo]))
          wrong.push(`${user} pull ${repo}: ${pulled.ok ? pulled.out : pulled.out.split("\n").pop()}`);
        if (!pulled.ok && !/denied: this user may not pull from project/.test(pulled.out))
          wrong.push(`${user} pull ${repo} failed without nginx's reason: ${pulled.out}`);
        const own = push(user, `${project}/by-${user}`);
        if (own.ok !== may(user, project, "push")) wrong.push(`${user} push ${project}/by-${user}: ${own.out.split("\n").pop()}`);
        // skopeo first asks whether the blobs exist (HEAD, a read: a bare 403 where the user may not read), then uploads.
        if (!own.ok && !/denied: this user may (not push to project|only pull)|403 \(Forbidden\)/.test(own.out))
          wrong.push(`${user} push ${project} failed without a refusal: ${own.out}`);
      }
    }
    expect(wrong).toEqual([]);
    // What the user reads in skopeo's (and Docker's) error.
    expect(push("pull-a", "team-a/nope").out).toContain("denied: this user may not push to project team-a");
    expect(pull("pull-a", "team-b/app").out).toContain("denied: this user may not pull from project team-b");
    expect(push("reader", "team-a/nope").out).toContain("this user may only pull");
  });

  test("every method on every registry path of both projects, for each user: 403 DENIED from nginx exactly where the rights say no", async () => {
    const digest = pushed["team-a/app"];
    const paths = (project: string) => [
      `/v2/${project}/scratch/manifests/latest`,
      `/v2/${project}/scratch/manifests/${digest}`,
      `/v2/${project}/scratch/blobs/${digest}`,
      `/v2/${project}/scratch/blobs/uploads/`,
      `/v2/${project}/scratch/blobs/uploads/7e0c4a0e-3b1a-4a63-9b56-3c7e5f0d2a11?_state=x`,
      `/v2/${project}/scratch/tags/list`,
      `/v2/${project}/deep/er/scratch/tags/list?n=5`,
    ];
    const wrong: string[] = [];
    let count = 0;
    for (const user of USERS) {
      for (const project of PROJECTS) {
        for (const p of paths(project)) {
          for (const method of ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]) {
            const need = method === "GET" || method === "HEAD" ? "pull" : "push";
            const headers = { ...as(user), ...(need === "push" ? { "Content-Length": "0" } : {}) };
            const a = await request(target(), method, p, headers);
            count++;
            // The registry itself never answers 403 here (it has no auth of its own behind the proxy).
            const ok = may(user, project, need) ? !deniedByProxy(a, method) && a.status !== 401 : deniedByProxy(a, method);
            if (!ok) wrong.push(`${user} ${method} ${p}: ${a.status} ${a.body.slice(0, 120)}`);
          }
        }
      }
    }
    expect(count).toBe(USERS.length * 2 * 7 * 6);
    expect(wrong).toEqual([]);
  });

  test("/v2/ answers every user; /v2/_catalog lists both projects to users who may pull from every project and refuses the others", async () => {
    for (const user of USERS)
      expect({ user, status: (await request(target(), "GET", "/v2/", as(user))).status }).toEqual({ user, status: 200 });
    for (const user of USERS) {
      const a = await request(target(), "GET", "/v2/_catalog", as(user));
      if (["admin", "reader", "mixed"].includes(user)) {
        expect({ user, status: a.status }).toEqual({ user, status: 200 });
        expect(JSON.parse(a.body).repositories).toEqual(
          expect.arrayContaining(["team-a/app", "team-a/tools/cli", "team-b/app", "team-b/tools/cli"]),
        );
      } else {
        expect({ user, status: a.status }).toEqual({ user, status: 403 });
        expect(JSON.parse(a.body).errors[0]).toEqual({
          code: "DENIED",
          message: "the catalog lists every project: only a user who may pull from every project may read it",
        });
      }
    }
  });

  test("the blob-mount trick: a layer of team-b is mounted into team-a only by users who may read team-b, however the source is spelled", async () => {
    const manifest = await request(target(), "GET", "/v2/team-b/app/manifests/latest", {
      ...as("admin"),
      Accept: "application/vnd.oci.image.manifest.v1+json",
    });
    expect(manifest.status).toBe(200);
    const layer: string = JSON.parse(manifest.body).layers[0].digest;
    const inTeamA = async (repo: string) => (await request(target(), "HEAD", `/v2/${repo}/blobs/${layer}`, as("admin"))).status;
    expect(await inTeamA("team-a/app")).toBe(404);
    const mount = (query: string) => `/v2/team-a/app/blobs/uploads/?${query}`;
    const m = `mount=${encodeURIComponent(layer)}`;
    // ci-a may push to team-a but not read team-b: every spelling refused, the layer never reaches team-a.
    for (const query of [
      `from=team-b%2Fapp&${m}`,
      `${m}&from=team-b/app`,
      `from=team-a%2Fapp&from=team-b%2Fapp&${m}`,
      `fr%6Fm=team-b%2Fapp&${m}`,
      `from=%74eam-b%2Fapp&${m}`,
    ]) {
      const a = await request(target(), "POST", mount(query), { ...as("ci-a"), "Content-Length": "0" });
      expect({ query, status: a.status }).toEqual({ query, status: 403 });
    }
    // The same through a form body (the registry reads from= there first): nginx makes it octet-stream, so no mount.
    const form = await request(
      target(),
      "POST",
      mount(""),
      { ...as("ci-a"), "Content-Type": "application/x-www-form-urlencoded" },
      undefined,
      `from=team-b%2Fapp&${m}`,
    );
    expect(form.status).toBe(202);
    expect(await inTeamA("team-a/app")).toBe(404);
    // A user who may read team-b and push to team-a mounts it: 201, and the layer is in team-a.
    const mixed = await request(target(), "POST", mount(`from=team-b%2Fapp&${m}`), { ...as("mixed"), "Content-Length": "0" });
    expect(mixed.status).toBe(201);
    expect(await inTeamA("team-a/app")).toBe(200);
    // ci-a mounts within its own project.
    const own = await request(target(), "POST", `/v2/team-a/copy/blobs/uploads/?from=team-a%2Fapp&${m}`, {
      ...as("ci-a"),
      "Content-Length": "0",
    });
    expect(own.status).toBe(201);
  });

  test("path tricks towards another project are refused to a user with rights on one project", async () => {
    const wrong: string[] = [];
    for (const p of [
      "/v2/team-a%2F..%2Fteam-b/app/manifests/latest",
      "/v2/team-a/../team-b/app/manifests/latest",
      "/v2/team-a/%2e%2e/team-b/app/manifests/latest",
      "/v2/%74eam-b/app/manifests/latest",
      "/v2/team-b%2Fapp/manifests/latest",
      "/v2/Team-B/app/manifests/latest",
      "/v2//team-b/app/manifests/latest",
      "/x/../v2/team-b/app/manifests/latest",
    ]) {
      const a = await request(target(), "GET", p, { ...as("ci-a"), Accept: "application/vnd.oci.image.manifest.v1+json" });
      if (a.status === 200 || a.body.includes(pushed["team-b/app"].slice(7))) wrong.push(`${p}: ${a.status}`);
    }
    expect(wrong).toEqual([]);
  });

  test('tlsTermination "registry" with rights is refused before anything changes', async () => {
    const { output, plan } = await d.failingUp({ tlsTermination: "registry" });
    expect(output).toContain('Invalid config "private-registry:rights"');
    expect(output).toContain('cannot be enforced with tlsTermination "registry"');
    expect(plan).toEqual({ created: [], updated: [], replaced: [], deleted: [] });
    await d.setConfig({ tlsTermination: null });
    await d.expectNoChanges();
  });

  test("a rights change during a running pull loop: only the users writer is replaced, no request fails, the new rights hold at once", async () => {
    const servingContainers = () => docker("inspect", "--format", "{{.Id}} {{.State.StartedAt}}", `${d.id}-registry`, `${d.id}-nginx`);
    const before = servingContainers();
    // pull-a pulls team-a/app with skopeo in a loop on the client host...
    sh("rm -f /tmp/loop.log && touch /tmp/loop.run");
    sh(
      `setsid sh -c 'while [ -f /tmp/loop.run ]; do ` +
        `if skopeo copy --src-authfile /tmp/auth-pull-a.json docker://${d.endpoint}/team-a/app oci:/tmp/loop:x >/dev/null 2>/tmp/loop.err; ` +
        `then echo ok >>/tmp/loop.log; else echo "failed: $(tr "\\n" " " </tmp/loop.err)" >>/tmp/loop.log; fi; rm -rf /tmp/loop; done; ` +
        `echo stopped >>/tmp/loop.log' </dev/null >/dev/null 2>&1 &`,
    );
    // ...and mixed reads team-a's manifest from here every 50 ms on one kept-alive connection.
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
    const statuses: number[] = [];
    let done = false;
    const poller = (async () => {
      while (!done) {
        const a = await request(
          target(),
          "GET",
          "/v2/team-a/app/manifests/latest",
          { ...as("mixed"), Accept: "application/vnd.oci.image.manifest.v1+json" },
          agent,
        ).catch(() => ({ status: 0 }));
        statuses.push(a.status);
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const waitForLoop = async (n: number) => {
      for (let i = 0; i < 300 && Number(sh("grep -c . /tmp/loop.log").out.trim() || "0") < n; i++)
        await new Promise((r) => setTimeout(r, 200));
    };
    let plan;
    try {
      await waitForLoop(2);
      // pull-a may now read team-b too; ci-a may push to team-b; mixed loses "*" (keeps team-a push).
      const changed = {
        ...RIGHTS,
        "pull-a": { "team-a": "pull" as const, "team-b": "pull" as const },
        "ci-a": { "team-a": "push" as const, "team-b": "push" as const },
        mixed: { "team-a": "push" as const },
      };
      await d.setConfig({ 'rights["mixed"]["*"]': null });
      ({ plan } = await d.up(rightsConfig(changed)));
    } finally {
      done = true;
      await poller;
      agent.destroy();
      sh("rm -f /tmp/loop.run");
      for (let i = 0; i < 150 && !sh("cat /tmp/loop.log").out.includes("stopped"); i++) await new Promise((r) => setTimeout(r, 200));
    }
    expect(plan).toEqual({ created: [], updated: [], deleted: [], replaced: ["registry-proxy-users-writer"] });
    expect(servingContainers()).toBe(before);
    const loop = sh("cat /tmp/loop.log").out.trim().split("\n");
    expect(loop[loop.length - 1]).toBe("stopped");
    expect(loop.filter((l) => l !== "ok" && l !== "stopped")).toEqual([]);
    expect(loop.filter((l) => l === "ok").length).toBeGreaterThanOrEqual(3);
    expect(statuses.length).toBeGreaterThan(20);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    // In effect at once, with the same nginx.
    expect(pull("pull-a", "team-b/app")).toEqual({ ok: true, out: pushed["team-b/app"] });
    expect(push("ci-a", "team-b/by-ci-a").ok).toBe(true);
    expect((await request(target(), "GET", "/v2/_catalog", as("mixed"))).status).toBe(403);
    expect((await request(target(), "GET", "/v2/team-b/app/tags/list", as("mixed"))).status).toBe(403);
    expect(push("mixed", "team-a/still").ok).toBe(true);
    await d.expectNoChanges();
  });
});
