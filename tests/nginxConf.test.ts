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
import { renderNginxConf } from "../lib/nginxConf";
import { makeTestPki, TestPki } from "./helpers/pki";

const NGINX = ["/usr/sbin/nginx", "/usr/bin/nginx"].find((p) => fs.existsSync(p)) ?? "nginx";

const PASSWORD = "correct-horse-battery-staple";

function render(pki: TestPki, dir: string, listenPort: number, upstream = { host: "registry", port: 5000 }): string {
  const htpasswd = path.join(dir, "htpasswd");
  // A $2a$ cost-10 entry, the format of @pulumi/random's bcryptHash.
  fs.writeFileSync(htpasswd, `admin:${bcrypt.hashSync(PASSWORD, 10)}\n`);
  return renderNginxConf({
    serverNames: ["registry.example.com", "127.0.0.1", "2001:db8::1"],
    upstreamHost: upstream.host, upstreamPort: upstream.port, listenPort,
    certificatePath: pki.chain, privateKeyPath: pki.key, htpasswdPath: htpasswd,
    // The test's stdio are sockets, which /dev/stdout cannot be opened on.
    pidPath: path.join(dir, "nginx.pid"), accessLogPath: path.join(dir, "access.log"),
  });
}

describe("renderNginxConf", () => {
  const conf = renderNginxConf({
    serverNames: ["registry.example.com", "192.0.2.10"], upstreamHost: "registry", upstreamPort: 5000, listenPort: 443,
    certificatePath: "/c.pem", privateKeyPath: "/k.pem", htpasswdPath: "/h",
  });

  test.each([
    ["the API version header on every answer, 401 included", "add_header 'Docker-Distribution-Api-Version' $docker_distribution_api_version always;"],
    ["the header default when the registry did not answer", "'' 'registry/2.0';"],
    ["no 413 on big layers", "client_max_body_size 0;"],
    ["no 411 on chunked uploads", "chunked_transfer_encoding on;"],
    ["basic auth from the htpasswd", "auth_basic_user_file /h;"],
    ["the client's Host", "proxy_set_header Host $http_host;"],
    ["the client's address", "proxy_set_header X-Real-IP $remote_addr;"],
    ["the forwarding chain", "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;"],
    ["the scheme", "proxy_set_header X-Forwarded-Proto $scheme;"],
    ["long uploads", "proxy_read_timeout 900;"],
    ["TLS 1.2 and 1.3 only", "ssl_protocols TLSv1.2 TLSv1.3;"],
    ["a session cache", "ssl_session_cache shared:RegistryTLS:10m;"],
    ["no version in answers", "server_tokens off;"],
    ["the registry by name on the private network", "set $registry_upstream http://registry:5000;"],
    ["Docker's embedded DNS", "resolver 127.0.0.11 valid=10s ipv6=off;"],
    ["old Docker and bare Go refused", 'if ($http_user_agent ~ "^(docker\\/1\\.(3|4|5(?!\\.[0-9]-dev))|Go ).*$") {'],
    ["the chain as the certificate", "ssl_certificate /c.pem;"],
    ["every server name", "server_name registry.example.com 192.0.2.10;"],
  ])("has %s", (_what, line) => {
    expect(conf).toContain(line);
  });

  test("is accepted by a real nginx -t with real certificate files", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nginx-t-"));
    const pki = makeTestPki(dir, ["DNS:registry.example.com", "IP:127.0.0.1"]);
    fs.writeFileSync(path.join(dir, "nginx.conf"), render(pki, dir, 443));
    const result = spawnSync(NGINX, ["-t", "-p", dir, "-c", path.join(dir, "nginx.conf")], { encoding: "utf8" });
    expect(result.stderr).toContain("syntax is ok");
    expect(result.stderr).toContain("test is successful");
    expect(result.status).toBe(0);
  });

  test("is refused by nginx -t when the key does not exist (the check can fail)", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nginx-t-"));
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

  beforeAll(async () => {
    upstream = http.createServer((req, res) => {
      forwarded.push(req.headers);
      res.setHeader("Content-Type", "application/json");
      res.end("{}");
    });
    await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r));
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "nginx-run-"));
    fs.chmodSync(dir, 0o755); // workers run as nobody and read the htpasswd per request
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
  afterAll(() => {
    nginx?.kill("SIGQUIT");
    upstream?.close();
  });

  function get(pathName: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, unknown> }> {
    return new Promise((resolve, reject) => {
      https.get({ host: "127.0.0.1", port, path: pathName, ca: fs.readFileSync(pki.caCert), headers, servername: "registry.example.com" }, (res) => {
        res.resume();
        resolve({ status: res.statusCode ?? 0, headers: res.headers });
      }).on("error", reject);
    });
  }

  test("/v2/ without credentials: 401 with the API version header, no nginx version", async () => {
    const res = await get("/v2/");
    expect(res.status).toBe(401);
    expect(res.headers["docker-distribution-api-version"]).toBe("registry/2.0");
    expect(res.headers["www-authenticate"]).toBe('Basic realm="Registry realm"');
    expect(res.headers["server"]).toBe("nginx");
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

  test("Docker 1.5 and bare Go user agents are refused", async () => {
    expect((await get("/v2/", { "User-Agent": "docker/1.5.0 go/go1.4" })).status).toBe(404);
    expect((await get("/v2/", { "User-Agent": "Go 1.1 package http" })).status).toBe(404);
  });

  test("paths outside /v2/ are not served", async () => {
    expect((await get("/"))).toMatchObject({ status: 404 });
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

  function handshake(options: tls.ConnectionOptions): Promise<{ authorized: boolean; protocol: string | null }> {
    return new Promise((resolve, reject) => {
      const socket = tls.connect({ host: "127.0.0.1", port, ca: fs.readFileSync(pki.caCert), ...options }, () => {
        resolve({ authorized: socket.authorized, protocol: socket.getProtocol() });
        socket.end();
      });
      socket.on("error", reject);
    });
  }
});

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1");
    s.on("connect", () => { s.destroy(); resolve(true); });
    s.on("error", () => resolve(false));
  });
}

