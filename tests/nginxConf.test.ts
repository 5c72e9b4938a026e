// The rendered nginx.conf, checked by reading it and by Debian's real nginx.
import { spawn, spawnSync, ChildProcess } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as https from "https";
import * as tls from "tls";
import * as http from "http";
import * as net from "net";
import { AddressInfo } from "net";
import * as bcrypt from "bcryptjs";
import {
  renderNginxConf,
  AUTH_FAILURE_BURST,
  AUTH_FAILURE_NO_DELAY,
  AUTH_FAILURE_RATE_PER_SECOND,
  UI_CONTENT_SECURITY_POLICY,
  uiSessionTemplate,
} from "../lib/nginxConf";
import { uiFiles, UI_FILE_NAMES } from "../lib/uiFiles";
import { basic, burstOfFailures, rawRequest, request, Target } from "./helpers/attack";
import { makeTestPki, TestPki } from "./helpers/pki";
import { scratchDir } from "./helpers/scratch";
import {
  USERS_DIRECTORY,
  ProjectRight,
  renderMayPushList,
  renderRightsList,
  renderUsersWriterScript,
  rightsFiles,
} from "../lib/usersDirectory";

const NGINX = ["/usr/sbin/nginx", "/usr/bin/nginx"].find((p) => fs.existsSync(p)) ?? "nginx";

const PASSWORD = "correct-horse-battery-staple";

const AUTH = `Basic ${Buffer.from(`admin:${PASSWORD}`).toString("base64")}`;

// Mozilla's "intermediate" TLS 1.2 ciphers, written out here rather than taken
// from lib/nginxConf.ts, so that a cipher slipped into the config is noticed.
const MOZILLA_INTERMEDIATE = [
  "ECDHE-ECDSA-AES128-GCM-SHA256",
  "ECDHE-RSA-AES128-GCM-SHA256",
  "ECDHE-ECDSA-AES256-GCM-SHA384",
  "ECDHE-RSA-AES256-GCM-SHA384",
  "ECDHE-ECDSA-CHACHA20-POLY1305",
  "ECDHE-RSA-CHACHA20-POLY1305",
  "DHE-RSA-AES128-GCM-SHA256",
  "DHE-RSA-AES256-GCM-SHA384",
  "DHE-RSA-CHACHA20-POLY1305",
];
// Every TLS 1.2 cipher this Node's OpenSSL can offer that is not in that list:
// CBC and SHA-1 suites, suites without forward secrecy, PSK and SRP.
const OTHER_TLS12_CIPHERS = tls
  .getCiphers()
  .map((c) => c.toUpperCase())
  .filter((c) => !c.startsWith("TLS_") && !MOZILLA_INTERMEDIATE.includes(c));

function render(pki: TestPki, dir: string, listenPort: number, upstream = { host: "127.0.0.1", port: 5000 }): string {
  // The users directory as the program's writer lays it out: its own script, run here.
  // A $2a$ cost-10 entry (the format of @pulumi/random's bcryptHash) and a cost-4 one.
  // re.ader may only pull: the dot in the name must not match another character.
  const usersDirectory = path.join(dir, "users");
  writeUsers(usersDirectory, `admin:${bcrypt.hashSync(PASSWORD, 10)}\nre.ader:${bcrypt.hashSync(PASSWORD, 4)}\n`, ["admin"]);
  return renderNginxConf({
    serverNames: ["registry.example.com", "127.0.0.1", "2001:db8::1"],
    upstream: `${upstream.host}:${upstream.port}`,
    listenPort,
    certificatePath: pki.chain,
    privateKeyPath: pki.key,
    usersDirectory,
    // The browser's files as the proxy uploads them, and a registry metrics file as the registry's health check copies it.
    ui: { directory: path.join(dir, "ui"), deleteEnabled: true, endpoints: ["192.0.2.10:5443", "registry.example.com:5443"] },
    metrics: { registryFile: path.join(dir, "metrics.prom") },
    // The test's stdio are sockets, which /dev/stdout cannot be opened on.
    pidPath: path.join(dir, "nginx.pid"),
    accessLogPath: path.join(dir, "access.log"),
  });
}

/**
 * Stages an htpasswd, a push list and the rights files as the program uploads them, and
 * runs the writer's script. The htpasswd's users not in pushUsers are pull-only.
 */
function writeUsers(
  usersDirectory: string,
  htpasswd: string,
  pushUsers: string[],
  rights: Record<string, Record<string, ProjectRight>> = {},
): void {
  const staging = path.join(usersDirectory, USERS_DIRECTORY.staging);
  fs.mkdirSync(staging, { recursive: true, mode: 0o755 });
  fs.chmodSync(usersDirectory, 0o755);
  fs.writeFileSync(path.join(staging, USERS_DIRECTORY.htpasswd), htpasswd, { mode: 0o600 });
  fs.writeFileSync(path.join(staging, USERS_DIRECTORY.mayPushList), renderMayPushList(pushUsers));
  const users = htpasswd
    .split("\n")
    .filter(Boolean)
    .map((line) => line.slice(0, line.indexOf(":")));
  const files = rightsFiles(
    users,
    users.filter((u) => !pushUsers.includes(u)),
    rights,
  );
  fs.writeFileSync(path.join(staging, USERS_DIRECTORY.rightsList), renderRightsList(files));
  const run = spawnSync("sh", ["-c", renderUsersWriterScript(usersDirectory)], { encoding: "utf8" });
  if (run.status !== 0) throw new Error(`users writer failed: ${run.stderr}`);
}

describe("renderNginxConf", () => {
  const conf = renderNginxConf({
    serverNames: ["registry.example.com", "192.0.2.10"],
    upstream: "unix:/run/registry/registry.sock",
    listenPort: 443,
    certificatePath: "/c.pem",
    privateKeyPath: "/k.pem",
    usersDirectory: "/u",
  });

  test.each([
    [
      "the API version header on every answer, 401 included",
      "add_header 'Docker-Distribution-Api-Version' $docker_distribution_api_version always;",
    ],
    ["the header default when the registry did not answer", "'' 'registry/2.0';"],
    ["no 413 on big layers", "client_max_body_size 0;"],
    ["no 411 on chunked uploads", "chunked_transfer_encoding on;"],
    ["basic auth from the users directory's htpasswd", "auth_basic_user_file /u/htpasswd;"],
    ["the client's Host", "proxy_set_header Host $http_host;"],
    ["the client's address", "proxy_set_header X-Real-IP $remote_addr;"],
    ["the scheme", "proxy_set_header X-Forwarded-Proto $scheme;"],
    ["long uploads", "proxy_read_timeout 900;"],
    ["uploads relayed in pieces of up to 1 MiB", "client_body_buffer_size 1m;"],
    ["HTTP/1.1 to the registry (HTTP/1.0 would make nginx buffer chunked uploads)", "proxy_http_version 1.1;"],
    ["no Connection: close to the registry", 'proxy_set_header Connection "";'],
    ["TLS 1.2 and 1.3 only", "ssl_protocols TLSv1.2 TLSv1.3;"],
    ["a session cache", "ssl_session_cache shared:RegistryTLS:10m;"],
    ["no version in answers", "server_tokens off;"],
    ["the registry at its one address", "server unix:/run/registry/registry.sock;"],
    ["kept-alive upstream connections", "keepalive 32;"],
    ["to the upstream, the request URI as the client sent it", "proxy_pass http://registry_upstream$request_uri;"],
    [
      "every request only for users with one of the rights files it needs, after the password",
      "try_files $registry_right_project $registry_right_all $registry_right_mount_all $registry_right_mount_any @registry_denied;",
    ],
    ["/v2/ itself needs only the password", '"pull:_base:_none" /htpasswd;'],
    ["the project read from the path as the client sent it", "map $request_uri $registry_project {"],
    ["no form body on a POST (the registry would read from= in it)", "proxy_set_header Content-Type $registry_content_type;"],
    ["old Docker and bare Go refused", 'if ($http_user_agent ~ "^(docker\\/1\\.(3|4|5(?!\\.[0-9]-dev))|Go ).*$") {'],
    ["the chain as the certificate", "ssl_certificate /c.pem;"],
    ["every server name", "server_name registry.example.com 192.0.2.10;"],
    ["failed logins counted per client address, only when credentials were sent", "map $http_authorization $auth_failure_key {"],
    ["nginx's own 401s sent to the failure limit", "error_page 401 = @auth_failed;"],
    ["the failure limit", `limit_req zone=auth_failures burst=${AUTH_FAILURE_BURST} delay=${AUTH_FAILURE_NO_DELAY};`],
    ["429 past the burst", "limit_req_status 429;"],
  ])("has %s", (_what, line) => {
    expect(conf).toContain(line);
  });

  test("without ui and metrics: no /ui/ and no /metrics/ locations (the catch-all refuses them)", () => {
    expect(conf).not.toMatch(/location[^{]*\/(ui|metrics)/);
    expect(conf).not.toContain("stub_status");
  });

  test("with mutual TLS, /ui/, its session and /metrics/ check the client certificate allow list too, as /v2/ does", () => {
    const mtls = renderNginxConf({
      serverNames: ["registry.example.com"],
      upstream: "unix:/run/registry/registry.sock",
      listenPort: 443,
      certificatePath: "/c.pem",
      privateKeyPath: "/k.pem",
      usersDirectory: "/u",
      clientCertificates: { caPath: "/ca.pem", allowedFingerprints: ["ab12"] },
      ui: { directory: "/ui", deleteEnabled: false, endpoints: ["registry.example.com"] },
      metrics: { registryFile: "/run/registry/metrics.prom" },
    });
    const locations = mtls.split(/\n    location /).slice(1);
    const guarded = locations.filter((l) => l.includes("if ($client_certificate_allowed = 0)")).map((l) => l.split(" {")[0]);
    expect(guarded).toEqual(["/v2/", "/ui/", "= /ui/session.json", "= /metrics/nginx", "= /metrics/registry"]);
  });

  test("the session template: nginx fills in the user and the push right; the rest is fixed JSON", () => {
    const text = uiSessionTemplate(true, ["192.0.2.10:5443", "[2001:db8::1]:5443"]);
    expect(JSON.parse(text.replace("$remote_user", "admin").replace("$ui_may_push", "false"))).toEqual({
      user: "admin",
      mayPush: false,
      deleteEnabled: true,
      endpoints: ["192.0.2.10:5443", "[2001:db8::1]:5443"],
    });
    expect(() => uiSessionTemplate(false, ["evil'$x"])).toThrow(/cannot be written into nginx.conf/);
  });

  test("is accepted by a real nginx -t with real certificate files", () => {
    const dir = scratchDir("nginx-t-");
    const pki = makeTestPki(dir, ["DNS:registry.example.com", "IP:127.0.0.1"]);
    fs.writeFileSync(path.join(dir, "nginx.conf"), render(pki, dir, 443));
    const result = spawnSync(NGINX, ["-t", "-p", dir, "-c", path.join(dir, "nginx.conf")], { encoding: "utf8" });
    expect(result.stderr).toContain("syntax is ok");
    expect(result.stderr).toContain("test is successful");
    expect(result.status).toBe(0);
  });

  test("is refused by nginx -t when the key does not exist (the check can fail)", () => {
    const dir = scratchDir("nginx-t-");
    const pki = makeTestPki(dir, ["DNS:registry.example.com"]);
    fs.writeFileSync(path.join(dir, "nginx.conf"), render({ ...pki, key: path.join(dir, "missing.key") }, dir, 443));
    const result = spawnSync(NGINX, ["-t", "-p", dir, "-c", path.join(dir, "nginx.conf")], { encoding: "utf8" });
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain("missing.key");
  });
});

describe("a real nginx serving the rendered config on loopback", () => {
  let dir: string;
  let pki: TestPki;
  let nginx: ChildProcess;
  let port: number;
  // Stands in for the registry behind nginx: records what nginx forwards.
  let upstream: http.Server;
  const forwarded: http.IncomingHttpHeaders[] = [];
  // Blob uploads (PATCH/PUT under /v2/<name>/blobs/uploads/) the stand-in is receiving, by path.
  const uploads = new Map<string, UploadSeen>();

  beforeAll(async () => {
    upstream = http.createServer((req, res) => {
      forwarded.push(req.headers);
      if (/^\/v2\/[^/]+\/blobs\/uploads\//.test(req.url ?? "") && (req.method === "PATCH" || req.method === "PUT")) {
        const seen = uploadSeen();
        uploads.set(req.url ?? "", seen);
        req.on("data", (chunk: Buffer) => seen.data(chunk));
        req.on("end", () => {
          const body = seen.end();
          // As the registry answers: with its own API version header.
          res.writeHead(req.method === "PATCH" ? 202 : 201, {
            "Docker-Distribution-Api-Version": "registry/2.0",
            "X-Received-Bytes": String(body.length),
            "Content-Length": "0",
          });
          res.end();
        });
        return;
      }
      req.resume();
      res.setHeader("Content-Type", "application/json");
      res.end("{}");
    });
    await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r));
    dir = scratchDir("nginx-run-");
    fs.chmodSync(dir, 0o755); // workers run as nobody and read the htpasswd per request
    // nginx's default root is <prefix>/html: without the catch-all location this page would be served.
    fs.mkdirSync(path.join(dir, "html"), { mode: 0o755 });
    fs.writeFileSync(path.join(dir, "html", "index.html"), `<html>${DEFAULT_PAGE}</html>\n`, { mode: 0o644 });
    fs.mkdirSync(path.join(dir, "ui"), { mode: 0o755 });
    for (const f of uiFiles()) fs.writeFileSync(path.join(dir, "ui", f.name), f.content, { mode: 0o644 });
    fs.writeFileSync(path.join(dir, "metrics.prom"), REGISTRY_METRICS, { mode: 0o644 });
    pki = makeTestPki(dir, ["DNS:registry.example.com", "IP:127.0.0.1"]);
    port = 20000 + (process.pid % 20000);
    const upstreamPort = (upstream.address() as AddressInfo).port;
    fs.writeFileSync(path.join(dir, "nginx.conf"), render(pki, dir, port, { host: "127.0.0.1", port: upstreamPort }));
    nginx = spawn(NGINX, ["-p", dir, "-c", path.join(dir, "nginx.conf"), "-g", "daemon off;"], { stdio: "ignore" });
    for (let i = 0; i < 100; i++) {
      if (await canConnect(port)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error("nginx did not start");
  });
  afterAll(async () => {
    if (nginx && nginx.exitCode === null && nginx.signalCode === null) {
      const exited = new Promise((r) => nginx.once("exit", r));
      nginx.kill("SIGQUIT");
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        exited,
        new Promise((r) => {
          timer = setTimeout(r, 3000);
        }),
      ]);
      clearTimeout(timer);
    }
    upstream?.closeAllConnections();
    upstream?.close();
  });

  function get(pathName: string, headers: Record<string, string> = {}): Promise<Answer> {
    return new Promise((resolve, reject) => {
      https
        .get(
          { host: "127.0.0.1", port, path: pathName, ca: fs.readFileSync(pki.caCert), headers, servername: "registry.example.com" },
          (res) => readAnswer(res).then(resolve, reject),
        )
        .on("error", reject);
    });
  }

  /** Starts a request whose body the test writes itself (chunked unless a Content-Length is given). */
  function upload(method: "PATCH" | "PUT", pathName: string, headers: Record<string, string> = {}) {
    const request = https.request({
      host: "127.0.0.1",
      port,
      method,
      path: pathName,
      ca: fs.readFileSync(pki.caCert),
      servername: "registry.example.com",
      headers: { "Content-Type": "application/octet-stream", ...headers },
    });
    const answer = new Promise<Answer>((resolve, reject) => {
      request.on("response", (res) => readAnswer(res).then(resolve, reject));
      request.on("error", reject);
    });
    return { request, answer };
  }

  test("/v2/ without credentials: 401 with the API version header, no nginx version", async () => {
    const res = await get("/v2/");
    expect(res.status).toBe(401);
    expect(res.headers["docker-distribution-api-version"]).toBe("registry/2.0");
    expect(res.headers["www-authenticate"]).toBe('Basic realm="Registry realm"');
    expect(res.headers["server"]).toBe("nginx");
  });

  test("a pull-only user pulls, but a push or delete is refused with Docker's DENIED error and never reaches the registry", async () => {
    const reader = `Basic ${Buffer.from(`re.ader:${PASSWORD}`).toString("base64")}`;
    expect((await get("/v2/", { Authorization: reader })).status).toBe(200);
    const before = forwarded.length;
    for (const method of ["POST", "PUT", "PATCH", "DELETE"]) {
      const res = await new Promise<Answer>((resolve, reject) => {
        https
          .request(
            {
              host: "127.0.0.1",
              port,
              method,
              path: "/v2/team/app/blobs/uploads/",
              ca: fs.readFileSync(pki.caCert),
              servername: "registry.example.com",
              headers: { Authorization: reader, "Content-Length": "0" },
            },
            (r) => readAnswer(r).then(resolve, reject),
          )
          .on("error", reject)
          .end();
      });
      expect({ method, status: res.status }).toEqual({ method, status: 403 });
      expect(JSON.parse(res.body)).toEqual({ errors: [{ code: "DENIED", message: "this user may only pull" }] });
      expect(res.headers["docker-distribution-api-version"]).toBe("registry/2.0");
    }
    expect(forwarded.length).toBe(before);
    // A name that only matches the pattern with the dot as a wildcard is not pull-only.
    const lookalike = `Basic ${Buffer.from(`reXader:${PASSWORD}`).toString("base64")}`;
    const { request, answer } = upload("PUT", "/v2/team/app/blobs/uploads/x", { Authorization: lookalike, "Content-Length": "0" });
    request.end();
    expect((await answer).status).toBe(401);
    // A user with push rights does push.
    const pusher = upload("PUT", "/v2/team/app/blobs/uploads/x", { Authorization: AUTH, "Content-Length": "0" });
    pusher.request.end();
    expect((await pusher.answer).status).toBeLessThan(300);
    expect(forwarded.length).toBe(before + 1);
  });

  test("a user change the writer makes takes effect on the next request, with no reload: removed users 401, new push rights, lost push rights", async () => {
    const reader = `Basic ${Buffer.from(`re.ader:${PASSWORD}`).toString("base64")}`;
    const newcomer = `Basic ${Buffer.from(`new-user:${PASSWORD}`).toString("base64")}`;
    const put = async (authorization: string) => {
      const { request, answer } = upload("PUT", "/v2/team/app/blobs/uploads/x", { Authorization: authorization, "Content-Length": "0" });
      request.end();
      return (await answer).status;
    };
    const original = fs.readFileSync(path.join(dir, "users", USERS_DIRECTORY.htpasswd), "utf8");
    const pid = fs.readFileSync(path.join(dir, "nginx.pid"), "utf8").trim();
    expect(await put(newcomer)).toBe(401);
    // admin removed; re.ader may push now; new-user added, pull only.
    writeUsers(path.join(dir, "users"), `re.ader:${bcrypt.hashSync(PASSWORD, 4)}\nnew-user:${bcrypt.hashSync(PASSWORD, 4)}\n`, ["re.ader"]);
    try {
      expect((await get("/v2/", { Authorization: AUTH })).status).toBe(401);
      expect(await put(reader)).toBeLessThan(300);
      expect((await get("/v2/", { Authorization: newcomer })).status).toBe(200);
      expect(await put(newcomer)).toBe(403);
      expect(fs.readdirSync(path.join(dir, "users", USERS_DIRECTORY.mayPush))).toEqual(["re.ader"]);
      // The same nginx: no restart, no reload.
      expect(fs.readFileSync(path.join(dir, "nginx.pid"), "utf8").trim()).toBe(pid);
    } finally {
      writeUsers(path.join(dir, "users"), original, ["admin"]);
    }
    expect((await get("/v2/", { Authorization: AUTH })).status).toBe(200);
    expect(await put(reader)).toBe(403);
  });

  test("/v2/ with a wrong password: 401", async () => {
    const res = await get("/v2/", { Authorization: `Basic ${Buffer.from("admin:wrong").toString("base64")}` });
    expect(res.status).toBe(401);
  });

  test("/v2/ with the right password (bcrypt checked by nginx): forwarded with the client's host and scheme", async () => {
    const res = await get("/v2/", { Authorization: `Basic ${Buffer.from(`admin:${PASSWORD}`).toString("base64")}` });
    expect(res.status).toBe(200);
    expect(res.headers["docker-distribution-api-version"]).toBe("registry/2.0");
    const last = forwarded[forwarded.length - 1];
    expect(last["x-forwarded-proto"]).toBe("https");
    expect(last["host"]).toBe(`127.0.0.1:${port}`);
    expect(last["x-real-ip"]).toBe("127.0.0.1");
  });

  test("a client-supplied X-Forwarded-For never reaches the registry: it gets the real client address only", async () => {
    const res = await get("/v2/", { Authorization: AUTH, "X-Forwarded-For": "203.0.113.7", "X-Real-IP": "203.0.113.8" });
    expect(res.status).toBe(200);
    const last = forwarded[forwarded.length - 1];
    expect(last["x-forwarded-for"]).toBe("127.0.0.1");
    expect(last["x-real-ip"]).toBe("127.0.0.1");
  });

  test("Docker 1.5 and bare Go user agents are refused", async () => {
    expect((await get("/v2/", { "User-Agent": "docker/1.5.0 go/go1.4" })).status).toBe(404);
    expect((await get("/v2/", { "User-Agent": "Go 1.1 package http" })).status).toBe(404);
  });

  test("paths outside /v2/ are not served, not even nginx's own index.html", async () => {
    for (const pathName of ["/", "/index.html"]) {
      const res = await get(pathName);
      expect({ pathName, status: res.status }).toEqual({ pathName, status: 404 });
      expect(res.body).not.toContain(DEFAULT_PAGE);
    }
  });

  /** A request of any method, with credentials when given. */
  function call(method: string, pathName: string, headers: Record<string, string> = {}): Promise<Answer> {
    return new Promise((resolve, reject) => {
      https
        .request(
          { host: "127.0.0.1", port, method, path: pathName, ca: fs.readFileSync(pki.caCert), servername: "registry.example.com", headers },
          (r) => readAnswer(r).then(resolve, reject),
        )
        .on("error", reject)
        .end();
    });
  }
  const READER = `Basic ${Buffer.from(`re.ader:${PASSWORD}`).toString("base64")}`;

  test("/ui/ and its files: 401 without credentials or with a wrong password, the page with the right one", async () => {
    for (const pathName of ["/ui/", "/ui/index.html", "/ui/app.js", "/ui/session.json"]) {
      const none = await get(pathName);
      expect({ pathName, status: none.status }).toEqual({ pathName, status: 401 });
      expect(none.headers["www-authenticate"]).toBe('Basic realm="Registry realm"');
      expect(none.body).not.toMatch(/app\.js|mayPush/);
      const wrong = await get(pathName, { Authorization: `Basic ${Buffer.from("admin:wrong").toString("base64")}` });
      expect({ pathName, status: wrong.status }).toEqual({ pathName, status: 401 });
    }
    const page = await get("/ui/", { Authorization: AUTH });
    expect(page.status).toBe(200);
    expect(page.body).toBe(fs.readFileSync(path.join(__dirname, "..", "ui", "index.html"), "utf8"));
    expect(page.headers["content-type"]).toBe("text/html; charset=utf-8");
  });

  test("/ui/ files: their own types, and the strict headers on every answer", async () => {
    const types: Record<string, string> = {
      "index.html": "text/html; charset=utf-8",
      "app.js": "application/javascript; charset=utf-8",
      "style.css": "text/css; charset=utf-8",
    };
    for (const name of UI_FILE_NAMES) {
      const res = await get(`/ui/${name}`, { Authorization: READER });
      expect({ name, status: res.status, type: res.headers["content-type"] }).toEqual({ name, status: 200, type: types[name] });
      expect(res.headers["content-security-policy"]).toBe(UI_CONTENT_SECURITY_POLICY);
      expect(res.headers["x-content-type-options"]).toBe("nosniff");
      expect(res.headers["referrer-policy"]).toBe("no-referrer");
      expect(res.headers["cache-control"]).toBe("no-store");
      expect(res.headers["x-frame-options"]).toBe("DENY");
    }
    expect(UI_CONTENT_SECURITY_POLICY).toContain("default-src 'none'");
    expect(UI_CONTENT_SECURITY_POLICY).toContain("frame-ancestors 'none'");
    // Nothing else in the folder, and nothing outside it.
    for (const pathName of ["/ui/missing.js", "/ui/../users/htpasswd", "/ui/..%2fusers/htpasswd", "/ui/%2e%2e/metrics.prom"]) {
      const res = await get(pathName, { Authorization: AUTH });
      expect({ pathName, ok: res.status < 300 }).toEqual({ pathName, ok: false });
      expect(res.body).not.toContain("$2");
    }
    // /ui without the slash: to /ui/, on whatever host and port the client dialled (a relative Location).
    const bare = await get("/ui");
    expect(bare.status).toBe(301);
    expect(bare.headers["location"]).toBe("/ui/");
  });

  test("/ui/session.json: the user, whether they may push (the may-push file), delete on, the endpoints", async () => {
    const admin = await get("/ui/session.json", { Authorization: AUTH });
    expect(admin.status).toBe(200);
    expect(admin.headers["content-type"]).toBe("application/json");
    expect(admin.headers["content-security-policy"]).toBe(UI_CONTENT_SECURITY_POLICY);
    expect(admin.headers["cache-control"]).toBe("no-store");
    expect(JSON.parse(admin.body)).toEqual({
      user: "admin",
      mayPush: true,
      deleteEnabled: true,
      endpoints: ["192.0.2.10:5443", "registry.example.com:5443"],
    });
    const reader = await get("/ui/session.json", { Authorization: READER });
    expect(JSON.parse(reader.body)).toMatchObject({ user: "re.ader", mayPush: false });
  });

  test("/ui/ and /metrics/ are read only: other methods 405 after the password, 401 before", async () => {
    const before = forwarded.length;
    for (const pathName of ["/ui/", "/ui/index.html", "/ui/session.json", "/metrics/nginx", "/metrics/registry"]) {
      for (const method of ["POST", "PUT", "DELETE"]) {
        expect({ pathName, method, status: (await call(method, pathName, { Authorization: AUTH })).status }).toEqual({
          pathName,
          method,
          status: 405,
        });
        expect({ pathName, method, status: (await call(method, pathName)).status }).toEqual({ pathName, method, status: 401 });
      }
    }
    expect(forwarded.length).toBe(before);
  });

  test("/metrics/nginx (stub_status) and /metrics/registry (the copied file): 401 without credentials, served with them", async () => {
    for (const pathName of ["/metrics/nginx", "/metrics/registry"]) {
      const res = await get(pathName);
      expect({ pathName, status: res.status }).toEqual({ pathName, status: 401 });
    }
    const status = await get("/metrics/nginx", { Authorization: READER });
    expect(status.status).toBe(200);
    expect(status.body).toMatch(
      /^Active connections: \d+ \nserver accepts handled requests\n \d+ \d+ \d+ \nReading: \d+ Writing: \d+ Waiting: \d+ \n$/,
    );
    const registry = await get("/metrics/registry", { Authorization: READER });
    expect(registry.status).toBe(200);
    expect(registry.headers["content-type"]).toBe("text/plain; version=0.0.4; charset=utf-8");
    expect(registry.body).toBe(REGISTRY_METRICS);
    expect((await get("/metrics/", { Authorization: AUTH })).status).toBe(404);
  });

  test("an upload is streamed to the registry as it arrives, not buffered by nginx first", async () => {
    const pathName = "/v2/it/blobs/uploads/streamed";
    const { request, answer } = upload("PATCH", pathName, { Authorization: AUTH });
    answer.catch(() => undefined); // awaited below; a request destroyed on failure must not go unhandled
    const first = Buffer.alloc(64 * 1024, "f");
    request.write(first);
    try {
      // The client has not finished: only if nginx passes bytes on as they come does the registry see any yet.
      await waitFor(
        () => (uploads.get(pathName)?.received ?? 0) > 0,
        5000,
        "the registry got no byte of the upload while the client was still sending: nginx buffers request bodies",
      );
    } catch (e) {
      request.destroy();
      throw e;
    }
    expect(uploads.get(pathName)?.ended).toBe(false);
    // More than nginx's default 1 MiB limit, chunked: no 413 either.
    const rest = Buffer.alloc(2 * 1024 * 1024, "r");
    request.end(rest);
    const res = await answer;
    expect(res.status).toBe(202);
    expect(res.headers["x-received-bytes"]).toBe(String(first.length + rest.length));
    expect(Buffer.concat([first, rest]).equals(uploads.get(pathName)!.body())).toBe(true);
  });

  test("a 2 MiB upload with a Content-Length is passed on, not refused with 413", async () => {
    const size = 2 * 1024 * 1024;
    const { request, answer } = upload("PUT", "/v2/it/blobs/uploads/big?digest=sha256:0", {
      Authorization: AUTH,
      "Content-Length": String(size),
    });
    request.end(Buffer.alloc(size, "b"));
    const res = await answer;
    expect(res.status).toBe(201);
    expect(res.headers["x-received-bytes"]).toBe(String(size));
  });

  test("an upload without credentials is refused with 401 and the API version header, and never reaches the registry", async () => {
    const pathName = "/v2/it/blobs/uploads/anonymous";
    const { request, answer } = upload("PATCH", pathName);
    request.end(Buffer.alloc(1024, "a"));
    const res = await answer;
    expect(res.status).toBe(401);
    expect(res.headers["docker-distribution-api-version"]).toBe("registry/2.0");
    expect(uploads.has(pathName)).toBe(false);
  });

  test("the registry's own API version header is passed on once, not doubled", async () => {
    const { request, answer } = upload("PATCH", "/v2/it/blobs/uploads/header", { Authorization: AUTH });
    request.end("x");
    const res = await answer;
    expect(res.status).toBe(202);
    const names = res.rawHeaders.filter((_v, i) => i % 2 === 0).map((n) => n.toLowerCase());
    expect(names.filter((n) => n === "docker-distribution-api-version")).toHaveLength(1);
    expect(res.headers["docker-distribution-api-version"]).toBe("registry/2.0");
  });

  // Failed logins are limited per client address: each test dials from its own 127.0.0.x.
  const from = (localAddress: string): Target => ({
    host: "127.0.0.1",
    port,
    ca: fs.readFileSync(pki.caCert, "utf8"),
    servername: "registry.example.com",
    localAddress,
  });

  test("failed logins from one address are slowed to the rate, each still a 401 with one WWW-Authenticate and the API header", async () => {
    const target = from("127.0.0.2");
    const n = 25;
    const started = Date.now();
    const answers = [];
    // A guesser that waits for each answer: an unknown user, so that no bcrypt time mixes in.
    for (let i = 0; i < n; i++) answers.push(await request(target, "GET", "/v2/", { Authorization: basic("guesser", `guess-${i}`) }));
    const seconds = (Date.now() - started) / 1000;
    for (const a of answers) {
      expect(a.status).toBe(401);
      expect(a.rawHeaders.filter((_v, i) => i % 2 === 0 && /^www-authenticate$/i.test(a.rawHeaders[i]))).toHaveLength(1);
      expect(a.headers["www-authenticate"]).toBe('Basic realm="Registry realm"');
      expect(a.headers["docker-distribution-api-version"]).toBe("registry/2.0");
    }
    // The first ones at once, the rest at the rate: without the limit 25 answers take well under a second.
    const limited = (n - 1 - AUTH_FAILURE_NO_DELAY) / AUTH_FAILURE_RATE_PER_SECOND;
    expect(seconds).toBeGreaterThan(limited * 0.8);
    expect(seconds).toBeLessThan(limited + 10);
    // A wrong password of a known user: refused the same way.
    const known = await request(target, "GET", "/v2/", { Authorization: basic("admin", "wrong") });
    expect(known.status).toBe(401);
    expect(known.headers["www-authenticate"]).toBe('Basic realm="Registry realm"');
  });

  test("past the burst, failed logins are refused with 429 (with the API header) and never a 200 or a 5xx", async () => {
    const target = from("127.0.0.3");
    const { answers, statuses, held } = await burstOfFailures(target, AUTH_FAILURE_BURST + 30, 2000);
    // Answered at once: the first ones (401) and those past the burst (429); the rest are held back to the rate.
    expect([...new Set(statuses)].sort()).toEqual([401, 429]);
    expect(statuses.filter((st) => st === 429).length).toBeGreaterThanOrEqual(20);
    expect(held).toBeGreaterThan(AUTH_FAILURE_BURST / 2);
    const refused = answers.find((a) => a.status === 429)!;
    expect(refused.headers["docker-distribution-api-version"]).toBe("registry/2.0");
    // Its body shows no nginx version either.
    expect(refused.body).not.toMatch(/nginx\/\d/);
  });

  test("valid users are never limited, even from an address whose failed logins are being limited (a push's ~265 requests, 32 at a time)", async () => {
    const target = from("127.0.0.4");
    // Put this address over the limit first (it stays there for about burst/rate seconds).
    expect((await burstOfFailures(target, AUTH_FAILURE_BURST + 20, 1000)).statuses).toContain(429);
    const reader = basic("re.ader", PASSWORD); // cost 4, the program's default
    const statuses: number[] = [];
    const started = Date.now();
    const agent = new https.Agent({ keepAlive: true, maxSockets: 32 });
    try {
      await Promise.all(
        Array.from({ length: 32 }, async (_v, worker) => {
          for (let i = worker; i < 288; i += 32)
            statuses.push((await request(target, "GET", "/v2/", { Authorization: reader }, agent)).status);
        }),
      );
    } finally {
      agent.destroy();
    }
    expect(statuses).toHaveLength(288);
    expect(statuses.filter((st) => st !== 200)).toEqual([]);
    // Not held back to the failure rate either (that would take about a minute).
    expect(Date.now() - started).toBeLessThan(20_000);
  });

  test("requests without credentials (Docker's first probe) are never limited: all 401, no 429", async () => {
    const target = from("127.0.0.5");
    const answers = await Promise.all(Array.from({ length: AUTH_FAILURE_BURST + 30 }, () => request(target, "GET", "/v2/")));
    expect([...new Set(answers.map((a) => a.status))]).toEqual([401]);
  });

  test("another address is not slowed by one that is being limited", async () => {
    // 127.0.0.6 goes over the limit (and stays there for about burst/rate seconds).
    expect((await burstOfFailures(from("127.0.0.6"), AUTH_FAILURE_BURST + 20, 500)).statuses).toContain(429);
    // On a kept-alive connection whose handshake is done, so that only the answer itself is timed.
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      expect((await request(from("127.0.0.7"), "GET", "/v2/", {}, agent)).status).toBe(401);
      const other = await request(from("127.0.0.7"), "GET", "/v2/", { Authorization: basic("guesser", "first try") }, agent);
      expect(other.status).toBe(401);
      // At once: a delayed answer would take at least 1/rate seconds.
      expect(other.ms).toBeLessThan(1000 / AUTH_FAILURE_RATE_PER_SECOND);
    } finally {
      agent.destroy();
    }
  });

  test("an unknown user and a known user with a wrong password get the same answer, byte for byte apart from the date", async () => {
    const target = from("127.0.0.8");
    const strip = (a: { status: number; rawHeaders: string[]; body: string }) =>
      JSON.stringify([a.status, a.rawHeaders.filter((_v, i, all) => i % 2 === 1 && !/^date$/i.test(all[i - 1])), a.body]);
    const known = await request(target, "GET", "/v2/", { Authorization: basic("admin", "wrong") });
    const unknown = await request(target, "GET", "/v2/", { Authorization: basic("nobody", "wrong") });
    expect(known.status).toBe(401);
    expect(strip(unknown)).toBe(strip(known));
  });

  test("an upload with a wrong password is refused with 401 and none of its body reaches the registry", async () => {
    const pathName = "/v2/it/blobs/uploads/wrong-password";
    const { request: req, answer } = upload("PATCH", pathName, { Authorization: basic("admin", "wrong") });
    req.end(Buffer.alloc(64 * 1024, "w"));
    const res = await answer;
    expect(res.status).toBe(401);
    expect(res.headers["docker-distribution-api-version"]).toBe("registry/2.0");
    expect(uploads.has(pathName)).toBe(false);
  });

  test("TLS 1.2 ciphers outside Mozilla's intermediate list are refused (CBC, SHA-1, no forward secrecy)", async () => {
    expect(OTHER_TLS12_CIPHERS).toEqual(
      expect.arrayContaining(["AES128-SHA", "ECDHE-RSA-AES128-SHA", "AES256-SHA256", "AES128-GCM-SHA256"]),
    );
    // All of them offered at once: the server must find none it accepts (a handshake failure alert from nginx).
    const offered = `${OTHER_TLS12_CIPHERS.join(":")}:@SECLEVEL=0`;
    await expect(
      handshake({ minVersion: "TLSv1.2", maxVersion: "TLSv1.2", ciphers: offered }).then((h) => `accepted ${h.cipher}`),
    ).rejects.toThrow(/alert handshake failure/);
    for (const weak of ["AES128-SHA", "ECDHE-RSA-AES128-SHA", "AES256-SHA256"]) {
      await expect(handshake({ minVersion: "TLSv1.2", maxVersion: "TLSv1.2", ciphers: `${weak}:@SECLEVEL=0` })).rejects.toThrow(
        /alert handshake failure/,
      );
    }
  });

  test("the AEAD ciphers with forward secrecy are accepted over TLS 1.2", async () => {
    for (const cipher of ["ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-CHACHA20-POLY1305"]) {
      const h = await handshake({ minVersion: "TLSv1.2", maxVersion: "TLSv1.2", ciphers: cipher });
      expect({ protocol: h.protocol, cipher: h.cipher }).toEqual({ protocol: "TLSv1.2", cipher });
    }
  });

  test("the certificate verifies against the CA for the names it carries", async () => {
    const ok = await handshake({ servername: "registry.example.com" });
    expect(ok.authorized).toBe(true);
  });

  test("TLS 1.1 is refused; TLS 1.2 and 1.3 are accepted", async () => {
    await expect(handshake({ minVersion: "TLSv1.1", maxVersion: "TLSv1.1" })).rejects.toThrow();
    expect((await handshake({ minVersion: "TLSv1.2", maxVersion: "TLSv1.2" })).protocol).toBe("TLSv1.2");
    expect((await handshake({ minVersion: "TLSv1.3", maxVersion: "TLSv1.3" })).protocol).toBe("TLSv1.3");
  });

  function handshake(options: tls.ConnectionOptions): Promise<{ authorized: boolean; protocol: string | null; cipher: string }> {
    return new Promise((resolve, reject) => {
      const socket = tls.connect({ host: "127.0.0.1", port, ca: fs.readFileSync(pki.caCert), ...options }, () => {
        resolve({ authorized: socket.authorized, protocol: socket.getProtocol(), cipher: socket.getCipher().name });
        socket.end();
      });
      socket.on("error", reject);
    });
  }
});

describe("rights per project on a real nginx (stand-in registry on loopback)", () => {
  let dir: string;
  let pki: TestPki;
  let nginx: ChildProcess;
  let port: number;
  let upstream: http.Server;
  // What reached the stand-in registry: method, URI as received, Content-Type.
  const seen: { method: string; url: string; contentType?: string }[] = [];
  const HEX = "a".repeat(64);
  // admin: every project (users); reader: pull-only (pullOnlyUsers); the others: rights per project.
  const RIGHTS: Record<string, Record<string, ProjectRight>> = {
    "ci-a": { "team-a": "push" },
    "pull-a": { "team-a": "pull" },
    "ci-ab": { "team-a": "push", "team-b": "pull" },
    mixed: { "*": "pull", "team-a": "push" },
  };
  const USERS = ["admin", "reader", ...Object.keys(RIGHTS)];
  const usersDir = () => path.join(dir, "users");
  const htpasswd = USERS.map((u) => `${u}:${bcrypt.hashSync(PASSWORD, 4)}\n`).join("");

  beforeAll(async () => {
    upstream = http.createServer((req, res) => {
      seen.push({ method: req.method ?? "", url: req.url ?? "", contentType: req.headers["content-type"] });
      req.resume();
      req.on("end", () => {
        res.setHeader("Content-Type", "application/json");
        res.end("{}");
      });
    });
    await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r));
    dir = scratchDir("nginx-rights-");
    fs.chmodSync(dir, 0o755);
    pki = makeTestPki(dir, ["DNS:registry.example.com", "IP:127.0.0.1"]);
    port = 20000 + ((process.pid + 7919) % 20000);
    writeUsers(
      usersDir(),
      htpasswd,
      USERS.filter((u) => u !== "reader"),
      RIGHTS,
    );
    const conf = renderNginxConf({
      serverNames: ["registry.example.com", "127.0.0.1"],
      upstream: `127.0.0.1:${(upstream.address() as AddressInfo).port}`,
      listenPort: port,
      certificatePath: pki.chain,
      privateKeyPath: pki.key,
      usersDirectory: usersDir(),
      pidPath: path.join(dir, "nginx.pid"),
      accessLogPath: path.join(dir, "access.log"),
    });
    fs.writeFileSync(path.join(dir, "nginx.conf"), conf);
    nginx = spawn(NGINX, ["-p", dir, "-c", path.join(dir, "nginx.conf"), "-g", "daemon off;"], { stdio: "ignore" });
    for (let i = 0; i < 100; i++) {
      if (await canConnect(port)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error("nginx did not start");
  });
  afterAll(async () => {
    if (nginx && nginx.exitCode === null && nginx.signalCode === null) {
      const exited = new Promise((r) => nginx.once("exit", r));
      nginx.kill("SIGQUIT");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3000).unref())]);
    }
    upstream?.closeAllConnections();
    upstream?.close();
  });

  const target = (): Target => ({ host: "127.0.0.1", port, ca: fs.readFileSync(pki.caCert, "utf8"), servername: "registry.example.com" });
  /** One request as `user`; whether it reached the registry, and what nginx answered. */
  async function send(user: string, method: string, pathName: string, headers: Record<string, string> = {}, body?: string) {
    const before = seen.length;
    const a = await request(
      target(),
      method,
      pathName,
      {
        Authorization: basic(user, PASSWORD),
        ...(method === "GET" || method === "HEAD" ? {} : { "Content-Length": String((body ?? "").length) }),
        ...headers,
      },
      undefined,
      body,
    );
    const message =
      a.status === 403 && a.body ? (JSON.parse(a.body) as { errors: { code: string; message: string }[] }).errors[0] : undefined;
    return { status: a.status, forwarded: seen.length > before, last: seen[seen.length - 1], message, headers: a.headers };
  }

  const METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"];
  const repoPaths = (project: string) => [
    `/v2/${project}/app/manifests/latest`,
    `/v2/${project}/app/manifests/sha256:${HEX}`,
    `/v2/${project}/app/blobs/sha256:${HEX}`,
    `/v2/${project}/app/blobs/uploads/`,
    `/v2/${project}/app/blobs/uploads/0b8b5e7e-4c3a-4f63-9b56-3c7e5f0d2a11?_state=abc%3D`,
    `/v2/${project}/app/tags/list?n=10`,
    `/v2/${project}/sub/app/manifests/v1.2`,
    `/v2/${project}/manifests/latest`,
  ];
  /** What each user may do in a project, as the settings say. */
  const may = (user: string, project: string, need: "pull" | "push"): boolean => {
    if (user === "admin") return true;
    if (user === "reader") return need === "pull";
    const r = RIGHTS[user][project] ?? RIGHTS[user]["*"];
    return r === "push" || (r === "pull" && need === "pull");
  };

  test("every method on every repository path of two projects, for each user: through exactly when the user's right allows it; refused ones 403 DENIED, never at the registry", async () => {
    const wrong: string[] = [];
    for (const user of USERS) {
      for (const project of ["team-a", "team-b"]) {
        for (const p of repoPaths(project)) {
          for (const method of METHODS) {
            const need = method === "GET" || method === "HEAD" ? "pull" : "push";
            const expected = may(user, project, need);
            const r = await send(user, method, p);
            const ok = expected
              ? r.status === 200 && r.forwarded && r.last.url === p
              : r.status === 403 &&
                !r.forwarded &&
                r.headers["docker-distribution-api-version"] === "registry/2.0" &&
                (method === "HEAD" || r.message?.code === "DENIED");
            if (!ok)
              wrong.push(
                `${user} ${method} ${p}: expected ${expected ? "through" : "403"}, got ${r.status}${r.forwarded ? " (forwarded)" : ""}`,
              );
          }
        }
      }
    }
    expect(wrong).toEqual([]);
  });

  test("Docker's messages: a pull-only user's is unchanged; a user with rights per project is told which project", async () => {
    expect((await send("reader", "PUT", "/v2/team-a/app/manifests/x")).message).toEqual({
      code: "DENIED",
      message: "this user may only pull",
    });
    expect((await send("ci-a", "PUT", "/v2/team-b/app/manifests/x")).message?.message).toBe("this user may not push to project team-b");
    expect((await send("ci-a", "GET", "/v2/team-b/app/manifests/x")).message?.message).toBe("this user may not pull from project team-b");
    expect((await send("pull-a", "DELETE", "/v2/team-a/app/manifests/x")).message?.message).toBe(
      "this user may not push to project team-a",
    );
  });

  test("/v2/ answers every user; /v2/_catalog only users who may pull from every project, the others 403 with the reason", async () => {
    for (const user of USERS) expect({ user, status: (await send(user, "GET", "/v2/")).status }).toEqual({ user, status: 200 });
    for (const user of USERS) {
      const r = await send(user, "GET", "/v2/_catalog?n=100");
      const all = ["admin", "reader", "mixed"].includes(user);
      expect({ user, status: r.status, forwarded: r.forwarded }).toEqual({ user, status: all ? 200 : 403, forwarded: all });
      if (!all) expect(r.message?.message).toMatch(/^the catalog lists every project/);
    }
    // A write on /v2/ itself: as before, only users who may push everywhere.
    expect((await send("ci-a", "POST", "/v2/")).status).toBe(403);
    expect((await send("reader", "POST", "/v2/")).status).toBe(403);
    expect((await send("admin", "POST", "/v2/")).forwarded).toBe(true);
  });

  test("a blob mount reads its source: refused unless the user may pull from the from= project, however the query is spelled", async () => {
    const mount = (query: string) => `/v2/team-a/app/blobs/uploads/?${query}`;
    const digest = `mount=sha256%3A${HEX}`;
    // Through: the source is a project the user may read (the way Docker and skopeo spell it, and plainly).
    for (const [user, query] of [
      ["ci-a", `from=team-a%2Fother&${digest}`],
      ["ci-a", `${digest}&from=team-a/other/deeper`],
      ["ci-ab", `from=team-b%2Fbase&${digest}`],
      ["mixed", `from=team-b%2Fbase&${digest}`],
      ["admin", `from=team-b%2Fbase&${digest}`],
      ["ci-a", `digest=sha256%3A${HEX}`],
      ["ci-a", ""],
      ["ci-a", "n=1&_state=abc%3D"],
      // Keys are case-sensitive to the registry: no mount is read from these.
      ["ci-a", `FROM=team-b%2Fbase&${digest}`],
      ["ci-a", `From=team-b%2Fbase&${digest}`],
    ]) {
      const r = await send(user, "POST", mount(query));
      expect({ user, query, status: r.status, forwarded: r.forwarded }).toEqual({ user, query, status: 200, forwarded: true });
    }
    // Refused, and never at the registry: a source the user may not read, spelled every way Go would still read it.
    for (const query of [
      `from=team-b%2Fbase&${digest}`,
      `from=team-b/base&${digest}`,
      `from=team-b&${digest}`,
      `from=team-a%2Fx&from=team-b%2Fbase&${digest}`,
      `from=team-b%2Fbase&from=team-a%2Fx&${digest}`,
      `FROM=team-a%2Fx&from=team-b%2Fbase&${digest}`,
      `fr%6Fm=team-b%2Fbase&${digest}`,
      `%66rom=team-b%2Fbase&${digest}`,
      `fro%6d=team-b%2Fbase&${digest}`,
      `x=1;from=team-b%2Fbase&${digest}`,
      `from&from=team-b%2Fbase&${digest}`,
      `from=%74eam-b%2Fbase&${digest}`,
      `from=team-b%252Fbase&${digest}`,
      `from=Team-B%2Fbase&${digest}`,
      `from=team-b%2Fbase;x=1&${digest}`,
      `from=+team-b%2Fbase&${digest}`,
      `${digest}&from=team-b%2Fbase&`,
      `x=1&from=team-b%2Fbase&${digest}`,
    ]) {
      const r = await send("ci-a", "POST", mount(query));
      expect({ query, status: r.status, forwarded: r.forwarded }).toEqual({ query, status: 403, forwarded: false });
    }
    expect((await send("ci-a", "POST", mount(`from=team-b%2Fbase&${digest}`))).message?.message).toBe(
      "this user may not push to project team-a or may not pull from project team-b (the source of the blob mount)",
    );
    // The registry reads from= in a form body before the query: a POST reaches it as octet-stream, whatever the client said.
    const form = await send(
      "ci-a",
      "POST",
      mount(""),
      { "Content-Type": "application/x-www-form-urlencoded" },
      `from=team-b%2Fbase&${digest}`,
    );
    expect(form.forwarded).toBe(true);
    expect(form.last.contentType).toBe("application/octet-stream");
    // Other methods keep theirs (a manifest's media type).
    const put = await send(
      "ci-a",
      "PUT",
      "/v2/team-a/app/manifests/v1",
      { "Content-Type": "application/vnd.oci.image.manifest.v1+json" },
      "{}",
    );
    expect(put.last.contentType).toBe("application/vnd.oci.image.manifest.v1+json");
  });

  test("path tricks that could make the registry see another project are refused to users without rights on every project", async () => {
    const tricks = [
      "/v2/team-a%2F..%2Fteam-b/app/manifests/x",
      "/v2/team-a/../team-b/app/manifests/x",
      "/v2/team-a/app/../../team-b/app/manifests/x",
      "/v2/team-a/./../team-b/app/manifests/x",
      "/v2/team-a/%2e%2e/team-b/app/manifests/x",
      "/v2/%74eam-a/app/manifests/x",
      "/v2/team-a%2Fapp/manifests/x",
      "/v2/Team-A/app/manifests/x",
      "/v2//team-a/app/manifests/x",
      "/v2/team-a//app/manifests/x",
      "/v2/./team-a/app/manifests/x",
      "/x/../v2/team-a/app/manifests/x",
      "/v2/_catalog/../team-a/app/tags/list",
      "/v2/team-a;x/app/manifests/x",
      "/v2/team-a/app/manifests/x%00",
    ];
    const wrong: string[] = [];
    for (const p of tricks) {
      for (const method of ["GET", "PUT"]) {
        const r = await send("ci-a", method, p);
        if (r.status !== 403 && r.status !== 400 && r.status !== 404) wrong.push(`${method} ${p}: ${r.status}`);
        if (r.forwarded) wrong.push(`${method} ${p}: forwarded as ${r.last.url}`);
      }
    }
    // The absolute form of the request line: the project is still the path's.
    const absolute = async (user: string, project: string) => {
      const before = seen.length;
      const raw = await rawRequest(
        target(),
        `GET https://registry.example.com/v2/${project}/app/manifests/x HTTP/1.1\r\nHost: registry.example.com\r\n` +
          `Authorization: ${basic(user, PASSWORD)}\r\nConnection: close\r\n\r\n`,
      );
      return { status: raw.statuses[0], forwarded: seen.length > before ? seen[seen.length - 1].url : undefined };
    };
    expect(await absolute("ci-a", "team-b")).toEqual({ status: 403, forwarded: undefined });
    expect(await absolute("ci-a", "team-a")).toEqual({ status: 200, forwarded: "/v2/team-a/app/manifests/x" });
    expect(wrong).toEqual([]);
    // A user with rights on every project is not affected: its requests reach the registry as before.
    expect((await send("admin", "GET", "/v2/team-a%2F..%2Fteam-b/app/manifests/x")).forwarded).toBe(true);
  });

  test("a rights change the writer makes is in effect at the next request, with no reload", async () => {
    const pid = fs.readFileSync(path.join(dir, "nginx.pid"), "utf8").trim();
    expect((await send("ci-a", "GET", "/v2/team-b/app/manifests/x")).status).toBe(403);
    expect((await send("pull-a", "PUT", "/v2/team-a/app/manifests/x")).status).toBe(403);
    writeUsers(
      usersDir(),
      htpasswd,
      USERS.filter((u) => u !== "reader"),
      {
        ...RIGHTS,
        "ci-a": { "team-a": "push", "team-b": "pull" },
        "pull-a": { "team-a": "push" },
        mixed: { "team-b": "pull" },
      },
    );
    try {
      expect((await send("ci-a", "GET", "/v2/team-b/app/manifests/x")).status).toBe(200);
      expect((await send("ci-a", "PUT", "/v2/team-b/app/manifests/x")).status).toBe(403);
      expect((await send("pull-a", "PUT", "/v2/team-a/app/manifests/x")).status).toBe(200);
      // Rights taken away: from "*" to one project, the catalog with them.
      expect((await send("mixed", "GET", "/v2/team-a/app/manifests/x")).status).toBe(403);
      expect((await send("mixed", "GET", "/v2/_catalog")).status).toBe(403);
      expect(fs.readFileSync(path.join(dir, "nginx.pid"), "utf8").trim()).toBe(pid);
    } finally {
      writeUsers(
        usersDir(),
        htpasswd,
        USERS.filter((u) => u !== "reader"),
        RIGHTS,
      );
    }
    expect((await send("ci-a", "GET", "/v2/team-b/app/manifests/x")).status).toBe(403);
    expect((await send("mixed", "GET", "/v2/_catalog")).status).toBe(200);
  });

  test("a wrong password is still a 401 (counted as a failed login), whatever the rights", async () => {
    const a = await request(target(), "GET", "/v2/team-b/app/manifests/x", { Authorization: basic("ci-a", "wrong") });
    expect(a.status).toBe(401);
    expect(a.headers["www-authenticate"]).toBe('Basic realm="Registry realm"');
  });
});

const DEFAULT_PAGE = "nginx's default page, never to be served by the registry proxy";
const REGISTRY_METRICS = '# TYPE registry_http_requests_total counter\nregistry_http_requests_total{code="200",method="get"} 3\n';

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
  body: string;
}

function readAnswer(res: http.IncomingMessage): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on("data", (c: Buffer) => chunks.push(c));
    res.on("end", () =>
      resolve({
        status: res.statusCode ?? 0,
        headers: res.headers,
        rawHeaders: res.rawHeaders,
        body: Buffer.concat(chunks).toString("utf8"),
      }),
    );
    res.on("error", reject);
  });
}

/** What the stand-in registry has received of one upload so far. */
interface UploadSeen {
  received: number;
  ended: boolean;
  data(chunk: Buffer): void;
  end(): Buffer;
  body(): Buffer;
}

function uploadSeen(): UploadSeen {
  const chunks: Buffer[] = [];
  return {
    received: 0,
    ended: false,
    data(chunk) {
      chunks.push(chunk);
      this.received += chunk.length;
    },
    end() {
      this.ended = true;
      return this.body();
    },
    body: () => Buffer.concat(chunks),
  };
}

async function waitFor(condition: () => boolean, timeoutMs: number, message: string): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > until) throw new Error(message);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1");
    s.on("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.on("error", () => resolve(false));
  });
}
