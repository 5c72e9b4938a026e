// The registry browser (/ui/) and the metrics, on a real deployment, in a real browser:
// Debian's chromium driven by playwright-core, trusting the deployment's CA through an NSS
// database of its own (real certificate verification, no exception for the server). Images
// pushed by a client host with skopeo; what the page shows is compared with what the
// registry's API says. Screenshots go to test-artifacts/ui/ (gitignored); with
// UI_SCREENSHOT_FOR_DOCS=1 the tags view is also written to docs/ui.png, with the test
// network's address replaced by a documentation one.
import * as fs from "fs";
import * as net from "net";
import * as path from "path";
import { execFileSync } from "child_process";
import { chromium, Browser, BrowserContext, Page } from "playwright-core";
import { deployment } from "./helpers/deployment";
import { MAKE_IMAGE_SH } from "./helpers/ociImage";
import {
  AttemptLog,
  attemptArea,
  basic,
  checkCredentialsRefused,
  checkEveryPathNeedsCredentials,
  lookAlikeCredentials,
  PAGE_PATHS,
  request,
  Target,
} from "./helpers/attack";
import { UI_CONTENT_SECURITY_POLICY } from "../lib/nginxConf";

jest.setTimeout(300_000);

const CHROMIUM = "/usr/bin/chromium";
const ARTIFACTS = path.join(__dirname, "..", "test-artifacts", "ui");
const DNS_NAME = "registry.ui.example.com";
const CREATED = "2026-11-30T08:00:00Z";

const d = deployment({
  tag: "ui",
  dnsName: DNS_NAME,
  clients: [{}],
  // ui is left at its default (on); a pull-only user; deletes and metrics on.
  config: { deleteEnabled: true, metrics: true, "users[1]": "reader", "pullOnlyUsers[0]": "reader" },
});

const target = (): Target => ({ host: d.gateway, port: d.port, ca: d.caPem, servername: DNS_NAME });
const origin = () => `https://${d.gateway}:${d.port}`;
const auth = (user: string) => ({ Authorization: basic(user, d.passwords[user]) });
const ACCEPT = [
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.v2+json",
].join(", ");

/** What the registry's API says of a tag: its digest, and the compressed size (the layers' sizes) of each image. */
async function fromApi(repo: string, reference: string): Promise<{ digest: string; sizes: number[]; body: any }> {
  const r = await request(target(), "GET", `/v2/${repo}/manifests/${reference}`, { ...auth("admin"), Accept: ACCEPT });
  expect(r.status).toBe(200);
  const body = JSON.parse(r.body);
  const layers = (m: any) => (m.layers as { size: number }[]).reduce((s, l) => s + l.size, 0);
  if (Array.isArray(body.manifests)) {
    const sizes: number[] = [];
    for (const child of body.manifests) sizes.push((await fromApi(repo, child.digest)).sizes[0]);
    return { digest: String(r.headers["docker-content-digest"]), sizes, body };
  }
  return { digest: String(r.headers["docker-content-digest"]), sizes: [layers(body)], body };
}

// An OCI index of two single-layer images, linux/amd64 and linux/arm64 (the platforms as the index says them).
const MAKE_INDEX_SH = String.raw`
make_index() {
  idx_dir=$1
  make_image /tmp/idx-a 1 32768 "$2" >/dev/null; make_image /tmp/idx-b 1 49152 "$2" >/dev/null
  rm -rf "$idx_dir"; mkdir -p "$idx_dir/blobs/sha256"
  cp /tmp/idx-a/blobs/sha256/* /tmp/idx-b/blobs/sha256/* "$idx_dir/blobs/sha256/"
  entry() {
    dg=$(sed -n 's/.*"digest":"\(sha256:[0-9a-f]*\)".*/\1/p' "$1/index.json"); sz=$(sed -n 's/.*"size":\([0-9]*\).*/\1/p' "$1/index.json")
    printf '{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"platform":{"architecture":"%s","os":"linux"}}' "$dg" "$sz" "$2"
  }
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[%s,%s]}' "$(entry /tmp/idx-a amd64)" "$(entry /tmp/idx-b arm64)" >/tmp/idx
  h=$(sha256sum /tmp/idx | cut -d' ' -f1); s=$(stat -c %s /tmp/idx); mv /tmp/idx "$idx_dir/blobs/sha256/$h"
  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"latest"}}]}' "$h" "$s" >"$idx_dir/index.json"
  printf '{"imageLayoutVersion":"1.0.0"}' >"$idx_dir/oci-layout"
  echo "sha256:$h"
}
`;

/** Pushes the OCI layout at `dir` (tag latest) as repo:tag from the client host; returns the digest. */
function pushLayout(dir: string, ref: string, all = false): string {
  const r = d.clients[0].sh(
    `skopeo copy ${all ? "--all " : ""}--digestfile /tmp/pushed-digest oci:${dir}:latest docker://${d.endpoint}/${ref} >/dev/null && cat /tmp/pushed-digest`,
  );
  expect({ ...r, out: r.out.trim() }).toEqual({ status: 0, out: expect.stringMatching(/^sha256:[0-9a-f]{64}$/) });
  return r.out.trim();
}

/** A HOME whose NSS database trusts `caPem` (how chromium on Linux takes a local CA), or none at all. */
function browserHome(name: string, caPem?: string): string {
  const home = path.join(d.workDir, name);
  const db = path.join(home, ".pki", "nssdb");
  fs.mkdirSync(db, { recursive: true });
  execFileSync("certutil", ["-d", `sql:${db}`, "-N", "--empty-password"]);
  if (caPem) {
    fs.writeFileSync(path.join(home, "ca.pem"), caPem);
    execFileSync("certutil", ["-d", `sql:${db}`, "-A", "-t", "C,,", "-n", "private-registry-ui-test", "-i", path.join(home, "ca.pem")]);
  }
  return home;
}

let browser: Browser;
const digests: Record<string, string> = {};
/** Every request the browser made, in every context, and every console message. */
const requests: { url: string; headers: Record<string, string> }[] = [];
/** Requests that failed, with the browser's reason ("csp" for those the policy stopped: playwright names the blocked reason). */
const failed: { url: string; reason: string }[] = [];
const BLOCKED_BY_CSP = "csp";
const consoleLines: string[] = [];
const contexts: BrowserContext[] = [];

async function newContext(user: string, password = d.passwords[user]): Promise<BrowserContext> {
  const context = await browser.newContext({ httpCredentials: { username: user, password }, ignoreHTTPSErrors: false });
  context.on("request", (r) => requests.push({ url: r.url(), headers: r.headers() }));
  context.on("requestfailed", (r) => failed.push({ url: r.url(), reason: r.failure()?.errorText ?? "" }));
  context.on("console", (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
  contexts.push(context);
  return context;
}

async function openRepository(context: BrowserContext, repo: string, query = ""): Promise<Page> {
  const page = await context.newPage();
  const res = await page.goto(`${origin()}/ui/${query}#repository=${encodeURIComponent(repo)}`);
  expect(res?.status()).toBe(200);
  await page.waitForSelector(`body[data-tags-loaded="${repo}"]`);
  return page;
}

const shot = (page: Page, name: string) => page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });

beforeAll(async () => {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const c = d.clients[0];
  expect(c.login("admin").status).toBe(0);
  const made = c.sh(`${MAKE_IMAGE_SH}\n${MAKE_INDEX_SH}\nmake_image /tmp/app-1 2 65536 ${CREATED} && make_index /tmp/multi ${CREATED}`);
  expect(made.status).toBe(0);
  digests["team/app:1.0"] = pushLayout("/tmp/app-1", "team/app:1.0");
  digests["team/app:latest"] = c.push("team/app");
  digests["base/multi:latest"] = pushLayout("/tmp/multi", "base/multi:latest", true);
  digests["hello:latest"] = c.push("hello", 1, 4096);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    env: { ...process.env, HOME: browserHome("browser-home", d.caPem) } as Record<string, string>,
  });
});

afterAll(async () => {
  for (const c of contexts) await c.close().catch(() => undefined);
  await browser?.close();
});

test("the browser verifies the server with the deployment's CA: without it in its trust store the page does not load", async () => {
  const untrusting = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    env: { ...process.env, HOME: browserHome("browser-home-no-ca") } as Record<string, string>,
  });
  try {
    const page = await (await untrusting.newContext({ httpCredentials: { username: "admin", password: d.passwords.admin } })).newPage();
    await expect(page.goto(`${origin()}/ui/`)).rejects.toThrow(/ERR_CERT_AUTHORITY_INVALID/);
  } finally {
    await untrusting.close();
  }
});

test("a wrong password is refused: 401, and nothing of the page", async () => {
  const page = await (await newContext("admin", "wrong-password")).newPage();
  const res = await page.goto(`${origin()}/ui/`);
  expect(res?.status()).toBe(401);
  expect(await page.content()).not.toContain("app.js");
  await shot(page, "wrong-password");
});

test("the repositories, paged as the API pages them (/v2/_catalog?n=&last=)", async () => {
  const all = JSON.parse((await request(target(), "GET", "/v2/_catalog", auth("admin"))).body).repositories as string[];
  expect(all).toEqual(["base/multi", "hello", "team/app"]);
  const page = await (await newContext("admin")).newPage();
  await page.goto(`${origin()}/ui/?n=2`);
  await page.waitForSelector("body[data-ready=true]");
  const shown = () => page.$$eval("#repositories li", (items) => items.map((i) => i.getAttribute("data-repository")));
  expect(await shown()).toEqual(all.slice(0, 2));
  await page.click("#repositories-next");
  await page.waitForSelector('#repositories li[data-repository="team/app"]');
  expect(await shown()).toEqual(all.slice(2));
  expect(await page.isHidden("#repositories-next")).toBe(true);
  await page.click("#repositories-first");
  await page.waitForSelector('#repositories li[data-repository="base/multi"]');
  expect(await shown()).toEqual(all.slice(0, 2));
  expect(await page.textContent("#session")).toBe("Signed in as admin · may push · deleting enabled");
});

test("each tag with the API's digest, its platforms, compressed size, created time and a docker pull line per endpoint", async () => {
  const page = await openRepository(await newContext("admin"), "team/app");
  const rows = await page.$$eval("#tags tbody tr", (trs) =>
    trs.map((tr) => ({
      tag: tr.getAttribute("data-tag"),
      digest: tr.getAttribute("data-digest"),
      size: Number(tr.getAttribute("data-size")),
      platforms: tr.getAttribute("data-platforms"),
      created: tr.querySelector("td.created")?.textContent,
      pull: [...tr.querySelectorAll(".pull-line")].map((p) => p.textContent),
      deletable: tr.querySelector("button.delete") !== null,
    })),
  );
  const endpoints = d.outputs.endpoints.value as string[];
  expect(endpoints).toEqual([d.endpoint, d.nameEndpoint]);
  const expected = [];
  for (const tag of ["1.0", "latest"]) {
    const api = await fromApi("team/app", tag);
    expect(api.digest).toBe(digests[`team/app:${tag}`]);
    expected.push({
      tag,
      digest: api.digest,
      size: api.sizes[0],
      platforms: "linux/amd64",
      created: tag === "1.0" ? "2026-11-30 08:00:00 UTC" : "—",
      pull: endpoints.map((e) => `docker pull ${e}/team/app:${tag}`),
      deletable: true,
    });
  }
  // In the API's order (distribution 2.8 lists tags in directory order): compared by tag.
  const byTag = (a: { tag: string | null }, b: { tag: string | null }) => String(a.tag).localeCompare(String(b.tag));
  expect(rows.sort(byTag)).toEqual(expected.sort(byTag));
  // The short digest shown, the full one in its title.
  expect(await page.getAttribute('tr[data-tag="1.0"] td.digest code', "title")).toBe(digests["team/app:1.0"]);
  expect(await page.textContent('tr[data-tag="1.0"] td.size')).toMatch(/^\d+\.\d+ KiB$/);
  await shot(page, "tags");
  if (process.env.UI_SCREENSHOT_FOR_DOCS === "1") {
    // The test network's address and port replaced by documentation ones, for the README.
    await page.evaluate(
      ([from, to]) => {
        for (const n of document.querySelectorAll(".pull-line")) n.textContent = (n.textContent ?? "").split(from).join(to);
      },
      [d.endpoint, "192.0.2.10"],
    );
    await page.evaluate(
      ([from, to]) => {
        for (const n of document.querySelectorAll(".pull-line")) n.textContent = (n.textContent ?? "").split(from).join(to);
      },
      [d.nameEndpoint, "registry.example.com"],
    );
    const box = await page.locator("#tags-section").boundingBox();
    const height = Math.ceil((box?.y ?? 0) + (box?.height ?? 680) + 24);
    await page.screenshot({ path: path.join(__dirname, "..", "docs", "ui.png"), clip: { x: 0, y: 0, width: 1280, height } });
  }
});

test("an index: one line per platform, each with its own size, as the API's child manifests say", async () => {
  const page = await openRepository(await newContext("reader"), "base/multi");
  const api = await fromApi("base/multi", "latest");
  expect(api.digest).toBe(digests["base/multi:latest"]);
  const row = 'tr[data-tag="latest"]';
  expect(await page.getAttribute(row, "data-digest")).toBe(api.digest);
  expect(await page.getAttribute(row, "data-platforms")).toBe("linux/amd64,linux/arm64");
  expect(Number(await page.getAttribute(row, "data-size"))).toBe(api.sizes[0] + api.sizes[1]);
  expect(await page.$$eval(`${row} td.size div`, (ds) => ds.map((x) => x.getAttribute("title")))).toEqual(
    api.sizes.map((s) => `${s} bytes`),
  );
  expect(await page.textContent(`${row} td.created`)).toBe("2026-11-30 08:00:00 UTC");
  await shot(page, "index");
});

test("a pull-only user is offered no delete, and nginx refuses the DELETE should the page be bypassed (403)", async () => {
  const page = await openRepository(await newContext("reader"), "team/app");
  expect(await page.textContent("#session")).toBe("Signed in as reader · pull only · deleting enabled");
  expect(await page.$$eval("#tags tbody tr", (trs) => trs.length)).toBe(2);
  expect(await page.locator("button.delete").count()).toBe(0);
  const status = await page.evaluate(
    async (digest) => (await fetch(`/v2/team/app/manifests/${digest}`, { method: "DELETE" })).status,
    digests["team/app:latest"],
  );
  expect(status).toBe(403);
  expect((await fromApi("team/app", "latest")).digest).toBe(digests["team/app:latest"]);
  await shot(page, "pull-only");
});

test("delete for a push user: a confirmation naming the digest and npm run gc; Cancel keeps it, Delete removes it from the API", async () => {
  const page = await openRepository(await newContext("admin"), "team/app");
  const digest = digests["team/app:latest"];
  await page.click('tr[data-tag="latest"] button.delete');
  await page.waitForSelector("#confirm-delete[open]");
  expect(await page.textContent("#delete-digest")).toBe(digest);
  expect(await page.textContent("#confirm-delete")).toContain("npm run gc");
  await shot(page, "delete-confirmation");
  await page.click("#delete-cancel");
  expect(await page.isVisible("#confirm-delete")).toBe(false);
  expect((await fromApi("team/app", "latest")).digest).toBe(digest);

  await page.click('tr[data-tag="latest"] button.delete');
  await page.click("#delete-confirm");
  await page.waitForSelector('tr[data-tag="latest"]', { state: "detached" });
  await page.waitForSelector('body[data-tags-loaded="team/app"]');
  expect(await page.isHidden("#error")).toBe(true);
  const tags = JSON.parse((await request(target(), "GET", "/v2/team/app/tags/list", auth("admin"))).body).tags;
  expect(tags).toEqual(["1.0"]);
  expect((await request(target(), "GET", `/v2/team/app/manifests/${digest}`, { ...auth("admin"), Accept: ACCEPT })).status).toBe(404);
  // The other tag is untouched, and still pulls whole.
  expect(d.clients[0].pull("team/app:1.0")).toBe(digests["team/app:1.0"]);
  await shot(page, "after-delete");
});

test("the metrics: nginx's stub_status and the registry's Prometheus page, for registry users only", async () => {
  const nginx = await request(target(), "GET", "/metrics/nginx", auth("reader"));
  expect(nginx.status).toBe(200);
  expect(nginx.body).toMatch(/^Active connections: \d+ \nserver accepts handled requests\n \d+ \d+ \d+ \n/);
  // The health check copies the page every 3 s: the pushes above are counted by then.
  await new Promise((r) => setTimeout(r, 4000));
  const registry = await request(target(), "GET", "/metrics/registry", auth("reader"));
  expect(registry.status).toBe(200);
  expect(registry.headers["content-type"]).toBe("text/plain; version=0.0.4; charset=utf-8");
  expect(registry.body).toMatch(/^registry_http_requests_total\{.*handler="manifest".*\} [1-9]\d*$/m);
  expect(registry.body).toMatch(/^go_goroutines \d+$/m);
  for (const p of ["/metrics/nginx", "/metrics/registry"]) expect((await request(target(), "GET", p)).status).toBe(401);
});

describe("attacks on /ui/ and /metrics/", () => {
  const log = new AttemptLog();

  test("every path and method needs credentials; look-alike credentials are refused", async () => {
    const a = attemptArea(log, "pages");
    await checkEveryPathNeedsCredentials(a, target(), PAGE_PATHS);
    for (const p of ["/ui/", "/ui/session.json", "/metrics/registry"])
      await checkCredentialsRefused(a, target(), lookAlikeCredentials(d.passwords.admin), p);
    a.done();
  });

  test("every answer of the page carries the strict headers", async () => {
    const page = await (await newContext("admin")).newPage();
    const seen: { url: string; headers: Record<string, string> }[] = [];
    page.on("response", async (r) => {
      if (new URL(r.url()).pathname.startsWith("/ui/")) seen.push({ url: r.url(), headers: await r.allHeaders() });
    });
    await page.goto(`${origin()}/ui/#repository=team%2Fapp`);
    await page.waitForSelector('body[data-tags-loaded="team/app"]');
    expect(seen.map((s) => new URL(s.url).pathname).sort()).toEqual(["/ui/", "/ui/app.js", "/ui/session.json", "/ui/style.css"]);
    for (const { url, headers } of seen) {
      expect({ url, csp: headers["content-security-policy"] }).toEqual({ url, csp: UI_CONTENT_SECURITY_POLICY });
      expect({
        url,
        nosniff: headers["x-content-type-options"],
        referrer: headers["referrer-policy"],
        cache: headers["cache-control"],
      }).toEqual({
        url,
        nosniff: "nosniff",
        referrer: "no-referrer",
        cache: "no-store",
      });
    }
  });

  test("the CSP holds in the browser: a script and an image from another origin and an inline script are blocked, nothing reaches that origin", async () => {
    // The other origin: a listener on loopback that counts every connection made to it.
    let connections = 0;
    const other = net.createServer((socket) => {
      connections++;
      socket.destroy();
    });
    await new Promise<void>((r) => other.listen(0, "127.0.0.1", r));
    const otherOrigin = `https://127.0.0.1:${(other.address() as net.AddressInfo).port}`;
    const page = await (await newContext("admin")).newPage();
    await page.goto(`${origin()}/ui/`);
    await page.waitForSelector("body[data-ready=true]");
    const before = requests.length;
    const violations = await page.evaluate(async (otherOrigin) => {
      const seen: string[] = [];
      document.addEventListener("securitypolicyviolation", (e) => seen.push(`${e.violatedDirective} ${e.blockedURI}`));
      const remote = document.createElement("script");
      remote.src = `${otherOrigin}/evil.js`;
      document.body.append(remote);
      const inline = document.createElement("script");
      inline.textContent = "window.inlineRan = true";
      document.body.append(inline);
      const img = document.createElement("img");
      img.src = `${otherOrigin}/pixel.png`;
      document.body.append(img);
      await new Promise((r) => setTimeout(r, 500));
      return { seen, inlineRan: (window as unknown as { inlineRan?: boolean }).inlineRan === true };
    }, otherOrigin);
    other.close();
    expect(violations.inlineRan).toBe(false);
    expect(violations.seen.sort()).toEqual([
      `img-src ${otherOrigin}/pixel.png`,
      `script-src-elem ${otherOrigin}/evil.js`,
      "script-src-elem inline",
    ]);
    expect(connections).toBe(0);
    // The browser's own account: the two were attempted and stopped by the policy, not by the network.
    const elsewhere = requests
      .slice(before)
      .filter((r) => !r.url.startsWith(origin()))
      .map((r) => r.url);
    expect(elsewhere.sort()).toEqual([`${otherOrigin}/evil.js`, `${otherOrigin}/pixel.png`]);
    for (const url of elsewhere) expect(failed.filter((f) => f.url === url).map((f) => f.reason)).toEqual([BLOCKED_BY_CSP]);
  });

  test("over every page opened: no request to another origin, no credentials in a URL, nothing in storage or cookies", async () => {
    expect(requests.length).toBeGreaterThan(20);
    const secrets = Object.values(d.passwords);
    // Apart from what the CSP test tried to load and the policy blocked.
    const blocked = new Set(failed.filter((f) => f.reason === BLOCKED_BY_CSP).map((f) => f.url));
    expect(blocked.size).toBe(2);
    for (const r of requests) {
      if (blocked.has(r.url)) continue;
      expect({ url: r.url, sameOrigin: r.url.startsWith(`${origin()}/`) }).toEqual({ url: r.url, sameOrigin: true });
      expect({ url: r.url, secret: secrets.some((s) => r.url.includes(s) || r.url.includes(encodeURIComponent(s))) }).toEqual({
        url: r.url,
        secret: false,
      });
      expect(new URL(r.url).username + new URL(r.url).password).toBe("");
    }
    for (const context of contexts) {
      expect(await context.cookies()).toEqual([]);
      for (const page of context.pages()) {
        if (!page.url().startsWith(`${origin()}/ui/`)) continue;
        const stored = await page.evaluate(() => ({ local: localStorage.length, session: sessionStorage.length, url: location.href }));
        expect(stored).toEqual({ local: 0, session: 0, url: expect.not.stringMatching(/password|@/) });
      }
    }
    expect(
      consoleLines.filter((l) => /Content Security Policy|Refused to/.test(l) && !/127\.0\.0\.1:\d+\/(evil|pixel)|inline/.test(l)),
    ).toEqual([]);
  });
});

test("ui: false and metrics: false take both away at the next up: 404 like any path outside /v2/, and the registry's health check as before", async () => {
  const inspectHealth = () =>
    execFileSync("docker", ["inspect", "-f", "{{json .Config.Healthcheck.Test}}", d.names("registry")], { encoding: "utf8" });
  expect(inspectHealth()).toContain("/metrics");
  await d.up({ ui: false, metrics: false });
  for (const p of ["/ui/", "/ui/session.json", "/ui/app.js", "/metrics/nginx", "/metrics/registry"]) {
    const r = await request(target(), "GET", p, auth("admin"));
    expect({ p, status: r.status }).toEqual({ p, status: 404 });
  }
  expect(inspectHealth()).not.toContain("/metrics");
  expect(d.clients[0].pull("team/app:1.0")).toBe(digests["team/app:1.0"]);
  await d.expectNoChanges();
});
