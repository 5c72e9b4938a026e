#!/usr/bin/env node
// How much nginx's bcrypt check of the htpasswd costs each registry request.
// nginx re-checks basic auth on every request (a push or pull makes several per
// layer), so the hash cost sets a floor under every registry call. Runs Debian's
// nginx with the program's rendered config on loopback in front of a trivial
// upstream, and times sequential keep-alive requests per bcrypt cost.
//   node benchmarks/auth-cost.js [requests=200]
// Needs: nginx, openssl, npm dependencies (run `npm test` once first).
"use strict";
const { execFileSync, spawn } = require("child_process");
const fs = require("fs");
const http = require("http");
const https = require("https");
const os = require("os");
const path = require("path");
const bcrypt = require("bcryptjs");
const crypto = require("crypto");

const requests = Number(process.argv[2] ?? 200);
const loadTs = require("./loadTs.js");
const { renderNginxConf } = loadTs("../lib/nginxConf.ts");

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "auth-bench-"));
  fs.chmodSync(dir, 0o755);
  const openssl = (...a) => execFileSync("openssl", a, { stdio: "ignore" });
  openssl(
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    `${dir}/key.pem`,
    "-out",
    `${dir}/cert.pem`,
    "-days",
    "1",
    "-subj",
    "/CN=127.0.0.1",
    "-addext",
    "subjectAltName=IP:127.0.0.1",
  );
  const upstream = http.createServer((req, res) => res.end("{}"));
  await new Promise((r) => upstream.listen(0, "127.0.0.1", r));
  const port = 21000 + (process.pid % 10000);
  const password = "a".repeat(32);
  const results = [];
  fs.mkdirSync(`${dir}/users`, { mode: 0o755 });
  // The hashes nginx can check: bcrypt at three costs, and, for comparison, salted SHA-1
  // ({SSHA}, nginx's own code) and no hash at all ({PLAIN}): the floor of the check.
  const salt = crypto.randomBytes(8);
  const hashes = [
    ...[4, 10, 12].map((cost) => [`bcrypt cost ${cost}`, bcrypt.hashSync(password, cost)]),
    [
      "{SSHA} (salted SHA-1)",
      `{SSHA}${Buffer.concat([crypto.createHash("sha1").update(password).update(salt).digest(), salt]).toString("base64")}`,
    ],
    ["{PLAIN} (no hash)", `{PLAIN}${password}`],
  ];
  for (const [hash, entry] of hashes) {
    fs.writeFileSync(`${dir}/users/htpasswd`, `admin:${entry}\n`, { mode: 0o644 });
    fs.writeFileSync(
      `${dir}/nginx.conf`,
      renderNginxConf({
        serverNames: ["127.0.0.1"],
        upstreamHost: "127.0.0.1",
        upstreamPort: upstream.address().port,
        listenPort: port,
        certificatePath: `${dir}/cert.pem`,
        privateKeyPath: `${dir}/key.pem`,
        usersDirectory: `${dir}/users`,
        pidPath: `${dir}/nginx.pid`,
        accessLogPath: "off",
      }),
    );
    const nginx = spawn("nginx", ["-p", dir, "-c", `${dir}/nginx.conf`, "-g", "daemon off;"], { stdio: "ignore" });
    await new Promise((r) => setTimeout(r, 500));
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: fs.readFileSync(`${dir}/cert.pem`) });
    const auth = `Basic ${Buffer.from(`admin:${password}`).toString("base64")}`;
    const get = () =>
      new Promise((resolve, reject) =>
        https
          .get({ host: "127.0.0.1", port, path: "/v2/", agent, headers: { Authorization: auth } }, (res) => {
            res.resume();
            res.on("end", () => (res.statusCode === 200 ? resolve() : reject(new Error(`status ${res.statusCode}`))));
          })
          .on("error", reject),
      );
    for (let i = 0; i < 10; i++) await get(); // warm-up
    const start = process.hrtime.bigint();
    for (let i = 0; i < requests; i++) await get();
    const ms = Number(process.hrtime.bigint() - start) / 1e6 / requests;
    results.push({ hash, msPerRequest: ms.toFixed(2), requestsPerSecond: Math.round(1000 / ms) });
    agent.destroy();
    nginx.kill("SIGQUIT");
    await new Promise((r) => nginx.on("exit", r));
  }
  upstream.close();
  fs.rmSync(dir, { recursive: true, force: true });
  console.table(results);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
