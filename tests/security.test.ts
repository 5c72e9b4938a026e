// Attacks on a real deployment: the program deployed by the real `pulumi up` (the
// shared fixture, tests/helpers/deployment.ts: Automation API, a file backend in a
// temporary folder, its own stack), the local Debian registry and nginx images, one SSH
// client host (a container) that gets the CA. Every attempt is recorded (area, attempt,
// expected, got); with SECURITY_AUDIT_TABLE=<file> the table is written there as Markdown
// (scripts/security-audit.sh puts it into docs/security.md).
// Traffic goes only to loopback, to this test's network's host side and to its containers.
import * as crypto from "crypto";
import * as fs from "fs";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import * as tls from "tls";
import { execFileSync, spawnSync } from "child_process";
import { docker, containerSh, sshOptions } from "./helpers/e2e";
import { deployment, IMAGES, revealed } from "./helpers/deployment";
import { startSampling } from "./helpers/processSampler";
import {
  AttemptLog,
  attemptArea,
  checkCredentialsRefused,
  checkEveryPathNeedsCredentials,
  PAGE_PATHS,
  lookAlikeCredentials,
  Target,
  basic,
  rawRequest,
  request,
  flood,
  idleLatency,
  failedLoginTiming,
  median,
  percentile,
} from "./helpers/attack";
import { AUTH_FAILURE_BURST, AUTH_FAILURE_RATE_PER_SECOND } from "../lib/nginxConf";

jest.setTimeout(240_000);

const DNS_NAME = "registry.sec.test";
const CLIENT_IMAGE = IMAGES["ssh-client-host"];

// Security-relevant keys at their defaults (rsaBits 4096, bcryptCost 4, passwordLength 32).
// Listening on every address: the flood test dials the published port on loopback.
// The first `up` runs below, inside the sampling.
const d = deployment({
  tag: "sec",
  dnsName: DNS_NAME,
  // restart: a Docker engine restarted by someone else mid-run brings the client host back.
  clients: [{ restartAlways: true }],
  config: { listenAddress: "0.0.0.0", rsaBits: null, "users[1]": "ci", "users[2]": "gone" },
  up: false,
});
const { id } = d;
let client = "";
let probe = "";
let registryContainer = "";
let nginxContainer = "";
let stateDir = "";

const log = new AttemptLog();
const started = Date.now();
// The timings below move with the machine's load: the table says what it was.
const loadAtStart = os.loadavg()[0];
let passwords: Record<string, string>;
let caPem: string;
let upOutput = "";
let clientPs = "";
let hostPs = "";

/** The proxy as clients on the test network dial it: certificate verified against the deployed CA. */
const target = (): Target => ({ host: d.gateway, port: d.port, ca: caPem, servername: DNS_NAME });
let hostHeader = "";

/** Collects the attempts of one test; `done` fails the test listing every attempt that was not refused. */
const area = (name: string) => attemptArea(log, name);

/** Every secret the deployment holds, in clear, from the backend (decrypted by Pulumi itself). */
function deployedSecrets(): [string, string][] {
  const resources = d.exportedResources();
  const secrets: [string, string][] = [];
  for (const r of resources) {
    const name = r.urn.split("::").pop();
    if (r.type === "random:index/randomPassword:RandomPassword") {
      secrets.push([`password ${name}`, String(revealed(r.outputs.result))]);
    }
    if (r.type === "tls:index/privateKey:PrivateKey") {
      // Lines of the key's body (JSON escapes a whole PEM's newlines, so a line is what a leak would show),
      // from the private part: the first lines hold the public modulus or a fixed header.
      const lines = String(revealed(r.outputs.privateKeyPem))
        .split("\n")
        .filter((l) => l && !l.startsWith("-----"));
      secrets.push(
        [`private key ${name} (a middle line)`, lines[Math.floor(lines.length / 2)]],
        [`private key ${name} (last full line)`, lines[lines.length - 2]],
      );
    }
  }
  // The htpasswd as the users writer uploads it into the users volume.
  const writer = resources.find((r) => r.urn.endsWith("::registry-proxy-users-writer"));
  const uploads = revealed(writer?.outputs.uploads) as { file: string; content: string }[];
  const htpasswd = uploads.find((u) => u.file.endsWith("/htpasswd"))?.content ?? "";
  for (const line of htpasswd.split("\n").filter(Boolean)) secrets.push([`bcrypt hash of ${line.split(":")[0]}`, line.split(":")[1]]);
  const sshLines = fs
    .readFileSync(d.sshKeyFile, "utf8")
    .split("\n")
    .filter((l) => l && !l.startsWith("-----"));
  // Not the first lines: those are the same in every unencrypted ed25519 key (a fixed header, the public key).
  secrets.push(["SSH private key (third line)", sshLines[2]], ["SSH private key (fourth line)", sshLines[3]]);
  // The base64 a client sends: a leak of the Authorization header would show this, not the password.
  for (const [user, password] of Object.entries(passwords))
    secrets.push([`Authorization header of ${user}`, basic(user, password).slice(6)]);
  secrets.push(["the stack's passphrase", d.env.PULUMI_CONFIG_PASSPHRASE]);
  return secrets;
}

beforeAll(async () => {
  hostHeader = d.endpoint;
  client = d.clients[0].name;
  probe = d.names("probe");
  registryContainer = d.names("registry");
  nginxContainer = d.names("nginx");
  stateDir = path.join(d.workDir, "state");
  const stopSampling = startSampling(d.workDir, [client]);
  try {
    const up = await d.up();
    upOutput = up.output;
    passwords = up.outputs.credentials.value;
    caPem = up.outputs.caCertPem.value;
    // A control for the sampler: a command sshd runs for a whole second, as it runs the
    // install (which is often over between two samples). Two commands, so that the shell
    // stays (with a single one bash execs it, and the marker vanishes from ps at once).
    spawnSync("ssh", [...sshOptions(d.sshKeyFile), `root@${d.clients[0].ip}`, "sleep 1; : sampler-control"]);
  } finally {
    const samples = await stopSampling();
    clientPs = samples.clients[client];
    hostPs = samples.host;
  }
}, 900_000);

afterAll(() => {
  log.measure("test file run time (deploy, attacks, second up, destroy)", `${Math.round((Date.now() - started) / 1000)} s`);
  log.writeIfAsked(
    `Produced by \`scripts/security-audit.sh\` (tests/security.test.ts against a real \`pulumi up\`) on ${new Date().toISOString().slice(0, 10)}, ${os.cpus().length} CPU cores, load average ${loadAtStart.toFixed(1)} at the start (timings grow with it).`,
  );
});

describe("secrets", () => {
  test("none in clear in the backend's files, the stack config, docker inspect, `pulumi up` output or either machine's process list during `up`", () => {
    const secrets = deployedSecrets();
    // admin, ci, gone and the registry's HTTP secret; the CA and server keys (2 lines each); 3 hashes; the SSH key.
    expect(secrets.filter(([n]) => n.startsWith("password "))).toHaveLength(4);
    expect(secrets.filter(([n]) => n.startsWith("private key "))).toHaveLength(4);
    expect(secrets.filter(([n]) => n.startsWith("bcrypt hash "))).toHaveLength(3);
    for (const [name, value] of secrets) expect({ name, long: value.length >= 20 }).toEqual({ name, long: true });

    const stateFiles = execFileSync("find", [stateDir, "-type", "f"], { encoding: "utf8" }).split("\n").filter(Boolean);
    expect(stateFiles.some((f) => f.endsWith(`${id}.json`))).toBe(true);
    // The secrets are in the state, encrypted: the search below looks where they are.
    const stored = stateFiles.map((f) => fs.readFileSync(f, "utf8")).join("\n");
    expect(stored).toContain('"ciphertext"');
    // The sampling sees what sshd runs on the client host (the control); whether it also caught
    // the brief install itself is recorded, not required.
    expect(clientPs).toContain("sampler-control");
    log.measure(
      "client host samples that caught the CA install itself",
      String(clientPs.split("\n").filter((l) => l.includes("certs.d")).length),
    );
    expect(hostPs.length).toBeGreaterThan(0);
    const places: [string, string][] = [
      ["state backend files", stored],
      ["stack config file", fs.readFileSync(path.join(d.shellDir, `Pulumi.${id}.yaml`), "utf8")],
      ["docker inspect of both containers", docker("inspect", registryContainer, nginxContainer)],
      ["pulumi up output", upOutput],
      ["client host process list during up", clientPs],
      ["this machine's process list during up", hostPs],
    ];
    const a = area("secrets in clear");
    for (const [where, text] of places) {
      for (const [name, value] of secrets)
        a.check(`${name} in ${where}`, "absent", text.includes(value) ? "FOUND" : "absent", !text.includes(value));
    }
    a.check(
      "BEGIN ... PRIVATE KEY in the client host's process list",
      "absent",
      /PRIVATE KEY/.test(clientPs) ? "FOUND" : "absent",
      !/PRIVATE KEY/.test(clientPs),
    );
    for (const [what, container, file] of [
      ["registry HTTP secret file", registryContainer, "/etc/docker/registry/config.yml"],
      ["server key file in the proxy", nginxContainer, "/etc/nginx/registry/key.pem"],
    ]) {
      const mode = docker("exec", container, "stat", "-c", "%a %U", file);
      a.check(`${what} mode`, "600 root", mode, mode === "600 root");
    }
    a.done();
  });

  test("the CA on the client host is root's, mode 0644, in root-owned 0755 folders, with nothing else written beside it", () => {
    const a = area("client host files");
    for (const endpoint of [`${d.gateway}:${d.port}`, `${DNS_NAME}:${d.port}`]) {
      const dir = `/etc/docker/certs.d/${endpoint}`;
      const got = containerSh(client, `stat -c '%a %U %G' ${dir}/ca.crt`).out.trim();
      a.check(`${dir}/ca.crt owner and mode`, "644 root root", got, got === "644 root root");
      const dirMode = containerSh(client, `stat -c '%a %U %G' ${dir} /etc/docker/certs.d /etc/docker`).out.trim().split("\n");
      a.check(
        `${dir} and its parents`,
        "755 root root (each)",
        dirMode.join(", "),
        dirMode.length === 3 && dirMode.every((m) => m === "755 root root"),
      );
      const files = containerSh(client, `ls -A ${dir}`).out.trim();
      a.check(`files in ${dir}`, "ca.crt only", files, files === "ca.crt");
      const same = containerSh(client, `cat ${dir}/ca.crt`).out === caPem;
      a.check(`${dir}/ca.crt content`, "the CA certificate", same ? "the CA certificate" : "other", same);
    }
    const writable = containerSh(client, "find /etc/docker -perm -o+w").out.trim();
    a.check("world-writable files under /etc/docker", "none", writable || "none", writable === "");
    a.done();
  });
});

describe("TLS", () => {
  const sClient = (args: string[]) =>
    spawnSync("openssl", ["s_client", "-connect", `${d.gateway}:${d.port}`, "-servername", DNS_NAME, ...args], {
      input: "",
      encoding: "utf8",
      timeout: 20_000,
    });

  test("only TLS 1.2 and 1.3 are offered: TLS 1.0 and 1.1 are refused by the server, even with a client that allows them", () => {
    const caFile = path.join(d.workDir, "ca.crt");
    fs.writeFileSync(caFile, caPem);
    const a = area("TLS protocol versions");
    for (const [flag, name] of [
      ["-tls1", "TLS 1.0"],
      ["-tls1_1", "TLS 1.1"],
    ]) {
      // SECLEVEL=0 lets this OpenSSL offer them at all; the server's alert is what refuses.
      const r = sClient([flag, "-cipher", "DEFAULT:@SECLEVEL=0", "-CAfile", caFile]);
      const alert = /alert protocol version|unsupported protocol|wrong version number/.exec(r.stdout + r.stderr)?.[0] ?? `exit ${r.status}`;
      a.check(
        `handshake with ${name} only`,
        "refused (protocol version alert)",
        alert,
        r.status !== 0 && /alert protocol version|unsupported protocol/.test(r.stdout + r.stderr),
      );
    }
    for (const [flag, name] of [
      ["-tls1_2", "TLSv1.2"],
      ["-tls1_3", "TLSv1.3"],
    ]) {
      const r = sClient([flag, "-brief", "-CAfile", caFile, "-verify_return_error", "-verify_hostname", DNS_NAME]);
      const version = /Protocol version: (\S+)/.exec(r.stderr)?.[1] ?? `failed ${r.stderr.split("\n")[0]}`;
      // A control, not an attack: the versions that must work do.
      expect({ name, version, verified: /Verification: OK/.test(r.stderr) }).toEqual({ name, version: name, verified: true });
    }
    a.done();
  });

  test("only AEAD suites with forward secrecy are accepted (every other TLS 1.2 suite this OpenSSL knows is tried)", async () => {
    const suites = tls
      .getCiphers()
      .map((c) => c.toUpperCase())
      .filter((c) => !c.startsWith("TLS_"));
    expect(suites.length).toBeGreaterThan(30);
    const a = area("TLS 1.2 cipher suites");
    const accepted: string[] = [];
    let tried = 0;
    for (const suite of suites) {
      const got = await new Promise<string>((resolve) => {
        const socket = tls.connect(
          {
            host: d.gateway,
            port: d.port,
            ca: caPem,
            servername: DNS_NAME,
            minVersion: "TLSv1.2",
            maxVersion: "TLSv1.2",
            ciphers: `${suite}:@SECLEVEL=0`,
          },
          () => {
            resolve(socket.getCipher().name);
            socket.end();
          },
        );
        socket.on("error", (e) =>
          resolve(
            /alert [a-z ]+/.exec(e.message)?.[0]
              ? `refused (${/alert [a-z ]+/.exec(e.message)?.[0]})`
              : `not offered: ${e.message.slice(0, 80)}`,
          ),
        );
      });
      // Suites this client cannot offer at all (PSK, SRP: no callbacks) are no attempt: the server never saw them.
      if (got.startsWith("not offered")) continue;
      tried++;
      const aeadWithFs = /^(ECDHE|DHE)-(RSA|ECDSA)-(AES(128|256)-GCM-SHA(256|384)|CHACHA20-POLY1305)$/.test(suite);
      if (!got.startsWith("refused")) accepted.push(got);
      if (!aeadWithFs) a.check(`TLS 1.2 with ${suite} only`, "refused by the server", got, got.startsWith("refused"));
    }
    expect(tried).toBeGreaterThan(15);
    // The good ones do work (an ECDSA server key, the default: the ECDSA ones).
    expect(accepted).toEqual(
      expect.arrayContaining(["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305"]),
    );
    a.done();
  });

  test("the chain served is the server certificate and the CA; SANs, usages and key sizes are right", () => {
    const r = sClient(["-showcerts", "-tls1_2"]);
    const served = [...r.stdout.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/g)].map((m) => m[0]);
    const a = area("certificates");
    a.check("certificates in the served chain", "2 (server, CA)", String(served.length), served.length === 2);
    a.check("second certificate served", "the deployed CA", served[1] === caPem ? "the deployed CA" : "other", served[1] === caPem);
    const leaf = new crypto.X509Certificate(served[0]);
    const ca = new crypto.X509Certificate(caPem);
    a.check(
      "server certificate signed by the CA",
      "verifies",
      leaf.verify(ca.publicKey) ? "verifies" : "does not",
      leaf.verify(ca.publicKey),
    );
    a.check(
      "server certificate SANs",
      `DNS:${DNS_NAME}, IP Address:${d.gateway}`,
      leaf.subjectAltName ?? "none",
      leaf.subjectAltName === `DNS:${DNS_NAME}, IP Address:${d.gateway}`,
    );
    const text = (pem: string) => execFileSync("openssl", ["x509", "-noout", "-text"], { input: pem, encoding: "utf8" });
    const [leafText, caText] = [text(served[0]), text(caPem)];
    const ext = (t: string, name: string) => new RegExp(`${name}:.*\\n\\s+(.+)`).exec(t)?.[1].trim() ?? "absent";
    a.check(
      "CA basic constraints",
      "critical CA:TRUE",
      ext(caText, "X509v3 Basic Constraints"),
      /X509v3 Basic Constraints: critical/.test(caText) && ext(caText, "X509v3 Basic Constraints").startsWith("CA:TRUE"),
    );
    a.check(
      "CA key usage",
      "includes Certificate Sign",
      ext(caText, "X509v3 Key Usage"),
      ext(caText, "X509v3 Key Usage").includes("Certificate Sign"),
    );
    a.check(
      "server basic constraints",
      "CA:FALSE",
      ext(leafText, "X509v3 Basic Constraints"),
      ext(leafText, "X509v3 Basic Constraints") === "CA:FALSE",
    );
    a.check(
      "server key usage",
      "no Certificate Sign",
      ext(leafText, "X509v3 Key Usage"),
      !ext(leafText, "X509v3 Key Usage").includes("Certificate Sign"),
    );
    a.check(
      "server extended key usage",
      "TLS Web Server Authentication",
      ext(leafText, "X509v3 Extended Key Usage"),
      ext(leafText, "X509v3 Extended Key Usage").includes("TLS Web Server Authentication"),
    );
    const keyOf = (t: string) =>
      `${/rsaEncryption/.test(t) ? "RSA" : /id-ecPublicKey/.test(t) ? "EC" : "?"} ${/Public-Key: \((\d+) bit\)/.exec(t)?.[1] ?? "?"}` +
      (/NIST CURVE: (\S+)/.exec(t) ? ` ${/NIST CURVE: (\S+)/.exec(t)?.[1]}` : "");
    a.check("CA key", "RSA 4096 (keyAlgorithm's default)", keyOf(caText), keyOf(caText) === "RSA 4096");
    a.check("server key", "EC 256 P-256 (serverKeyAlgorithm's default)", keyOf(leafText), keyOf(leafText) === "EC 256 P-256");
    a.done();
  });
});

describe("authentication", () => {
  test("every path under /v2/ needs credentials, for every method: 401 with the challenge Docker needs", async () => {
    const a = area("no credentials");
    await checkEveryPathNeedsCredentials(a, target());
    // Control: the same request with valid credentials gets through.
    expect((await request(target(), "GET", "/v2/_catalog", { Authorization: basic("admin", passwords.admin) })).status).toBe(200);
    a.done();
  });

  test("the registry browser (/ui/, on by default) needs the same credentials on every path and method; /metrics/ is not served unless asked", async () => {
    const a = area("browser and metrics");
    await checkEveryPathNeedsCredentials(
      a,
      target(),
      PAGE_PATHS.filter((p) => p.startsWith("/ui/")),
    );
    await checkCredentialsRefused(a, target(), lookAlikeCredentials(passwords.admin), "/ui/");
    for (const p of PAGE_PATHS.filter((p) => p.startsWith("/metrics/"))) {
      const r = await request(target(), "GET", p, { Authorization: basic("admin", passwords.admin) });
      a.check(`GET ${p} with valid credentials (metrics off, the default)`, "404", String(r.status), r.status === 404);
    }
    // Control: the page itself with valid credentials.
    expect((await request(target(), "GET", "/ui/", { Authorization: basic("admin", passwords.admin) })).status).toBe(200);
    a.done();
  });

  test("wrong, empty, swapped and look-alike credentials are refused with 401", async () => {
    const a = area("wrong credentials");
    const cases = lookAlikeCredentials(passwords.admin);
    cases.splice(5, 0, ["admin's password with a trailing newline", basic("admin", `${passwords.admin}\n`)]);
    await checkCredentialsRefused(a, target(), cases);
    // What a Docker-style client makes of it (the challenge and the API header must be right for
    // it to log in at all): skopeo on the client host, password on stdin, TLS verified with certs.d.
    const wrong = containerSh(client, `skopeo login --username admin --password-stdin ${d.gateway}:${d.port}`, "wrong-password\n");
    a.check(
      "skopeo login with a wrong password",
      "refused (unauthorized)",
      wrong.out.trim().split("\n").pop() ?? "",
      wrong.status !== 0 && /unauthorized|invalid username\/password/i.test(wrong.out),
    );
    const right = containerSh(client, `skopeo login --username admin --password-stdin ${d.gateway}:${d.port}`, `${passwords.admin}\n`);
    expect(right).toEqual({ status: 0, out: "Login Succeeded!\n" });
    a.done();
  });

  test("malformed and oversized Authorization headers get 400 or 401, never a 200 or a 5xx, and nginx keeps serving", async () => {
    const a = area("malformed Authorization");
    const valid = basic("admin", passwords.admin);
    const cases: [string, string][] = [
      ["'Basic' with nothing after it", "Authorization: Basic"],
      ["'Basic ' and spaces", "Authorization: Basic    "],
      ["invalid base64", "Authorization: Basic !!!!****"],
      ["base64 without a colon", `Authorization: Basic ${Buffer.from("adminnocolon").toString("base64")}`],
      ["a Bearer token", "Authorization: Bearer eyJhbGciOiJub25lIn0.e30."],
      ["a NUL byte in the credentials", "Authorization: Basic YWRt\u0000aW46eA=="],
      ["a 4 KiB user name", `Authorization: ${basic("u".repeat(4096), "x")}`],
      ["a 12 KiB header line", `Authorization: ${basic("admin", "p".repeat(9000))}`],
      ["a 64 KiB header line", `Authorization: Basic ${"A".repeat(65536)}`],
      [
        "200 extra 200-byte headers (40 KiB)",
        Array.from({ length: 200 }, (_v, i) => `X-Filler-${i}: ${"f".repeat(200)}`).join("\r\n") + "\r\nAuthorization: Basic eA==",
      ],
      ["a valid Authorization, then a wrong one", `Authorization: ${valid}\r\nAuthorization: ${basic("admin", "wrong")}`],
      ["a wrong Authorization, then a valid one", `Authorization: ${basic("admin", "wrong")}\r\nAuthorization: ${valid}`],
      ["a header folded onto the next line (obs-fold)", `Authorization: Basic\r\n ${valid.slice(6)}`],
    ];
    for (const [name, header] of cases) {
      const r = await rawRequest(target(), `GET /v2/_catalog HTTP/1.1\r\nHost: ${hostHeader}\r\n${header}\r\nConnection: close\r\n\r\n`);
      const status = r.statuses[0];
      a.check(name, "400/401/431/494 (not 200, not 5xx)", status ? String(status) : "no answer", [400, 401, 431, 494].includes(status));
    }
    expect((await request(target(), "GET", "/v2/", { Authorization: valid })).status).toBe(200);
    a.done();
  });

  test("path tricks without credentials never get past nginx: 400, 401 or 404, and /v2/../ does not leave /v2/", async () => {
    const a = area("path tricks");
    const paths = [
      "/v2/../",
      "/v2/../v2/_catalog",
      "/v2/%2e%2e/",
      "/v2/%2E%2E/index.html",
      "//v2/",
      "//v2/_catalog",
      "/V2/",
      "/V2/_catalog",
      "/v2%2f_catalog",
      "/v2/..%2f..%2fetc/passwd",
      "/v2/x%2f..%2f..%2f_catalog",
      "/../../etc/passwd",
      "/v2/%00",
      "/v2/_catalog;x=y",
      "/v2/_catalog?n=1&last=../..",
      "/./v2/_catalog",
      "/v2/./_catalog",
      `https://${DNS_NAME}/v2/_catalog`,
    ];
    for (const p of paths) {
      const r = await rawRequest(target(), `GET ${p} HTTP/1.1\r\nHost: ${hostHeader}\r\nConnection: close\r\n\r\n`);
      const status = r.statuses[0];
      a.check(`GET ${p}`, "400/401/404", status ? String(status) : "no answer", [400, 401, 404].includes(status));
    }
    // With valid credentials, a path that climbs out of /v2/ still reaches nothing but the 404 for "/".
    for (const p of ["/v2/../", "/v2/%2e%2e/index.html"]) {
      const r = await rawRequest(
        target(),
        `GET ${p} HTTP/1.1\r\nHost: ${hostHeader}\r\nAuthorization: ${basic("admin", passwords.admin)}\r\nConnection: close\r\n\r\n`,
      );
      a.check(`GET ${p} with valid credentials`, "404", String(r.statuses[0]), r.statuses[0] === 404);
    }
    // A wrong Host is no way around either.
    const r = await rawRequest(target(), `GET /v2/_catalog HTTP/1.1\r\nHost: other.example.com\r\nConnection: close\r\n\r\n`);
    a.check("GET /v2/_catalog with Host: other.example.com", "401", String(r.statuses[0]), r.statuses[0] === 401);
    a.done();
  });

  test("TRACE, CONNECT, OPTIONS and odd methods are refused, and TRACE echoes nothing", async () => {
    const a = area("methods");
    const valid = basic("admin", passwords.admin);
    const cases: [string, string, number[]][] = [
      ["TRACE /v2/", `TRACE /v2/ HTTP/1.1\r\nHost: ${hostHeader}\r\nConnection: close\r\n\r\n`, [405]],
      [
        "TRACE /v2/ with valid credentials",
        `TRACE /v2/ HTTP/1.1\r\nHost: ${hostHeader}\r\nAuthorization: ${valid}\r\nConnection: close\r\n\r\n`,
        [405],
      ],
      ["CONNECT to another host", `CONNECT 127.0.0.1:5000 HTTP/1.1\r\nHost: 127.0.0.1:5000\r\nConnection: close\r\n\r\n`, [400, 405]],
      ["OPTIONS /v2/", `OPTIONS /v2/ HTTP/1.1\r\nHost: ${hostHeader}\r\nConnection: close\r\n\r\n`, [401]],
      ["OPTIONS *", `OPTIONS * HTTP/1.1\r\nHost: ${hostHeader}\r\nConnection: close\r\n\r\n`, [400, 404]],
      ["PROPFIND /v2/", `PROPFIND /v2/ HTTP/1.1\r\nHost: ${hostHeader}\r\nConnection: close\r\n\r\n`, [401]],
      ["lower-case get /v2/", `get /v2/ HTTP/1.1\r\nHost: ${hostHeader}\r\nConnection: close\r\n\r\n`, [400]],
      ["HTTP/0.9 style GET /v2/_catalog", "GET /v2/_catalog\r\n", [400, 401]],
      ["HTTP/1.0 without Host", "GET /v2/_catalog HTTP/1.0\r\n\r\n", [401]],
    ];
    for (const [name, raw, expected] of cases) {
      const r = await rawRequest(target(), raw);
      // HTTP/0.9 answers carry no status line: only the body tells.
      const status = r.statuses[0] ?? (/<title>(\d{3}) /.exec(r.text)?.[1] ? Number(/<title>(\d{3}) /.exec(r.text)?.[1]) : 0);
      a.check(
        name,
        expected.join("/"),
        status ? String(status) : "no answer",
        expected.includes(status) && !r.text.includes(valid.slice(6)),
      );
    }
    a.done();
  });

  test("request smuggling shapes (CL+TE, obfuscated TE, duplicate CL) never get a request to the registry unauthenticated", async () => {
    const a = area("request smuggling");
    const marker = `smuggled${crypto.randomBytes(4).toString("hex")}`;
    const inner = `GET /v2/${marker}/tags/list HTTP/1.1\r\nHost: ${hostHeader}\r\n\r\n`;
    const chunkedThenInner = `0\r\n\r\n${inner}`;
    const valid = `Authorization: ${basic("admin", passwords.admin)}\r\n`;
    const shapes: [string, string][] = [
      ["CL+TE", `Content-Length: ${chunkedThenInner.length}\r\nTransfer-Encoding: chunked\r\n\r\n${chunkedThenInner}`],
      ["TE+CL, CL covering the inner request", `Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n${chunkedThenInner}`],
      ["TE: xchunked", `Transfer-Encoding: xchunked\r\nContent-Length: ${chunkedThenInner.length}\r\n\r\n${chunkedThenInner}`],
      ["TE with a leading tab", `Transfer-Encoding:\tchunked\r\nContent-Length: 4\r\n\r\n${chunkedThenInner}`],
      ["TE: chunked, identity", `Transfer-Encoding: chunked, identity\r\n\r\n${chunkedThenInner}`],
      ["two TE headers", `Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n${chunkedThenInner}`],
      ["space before the colon", `Transfer-Encoding : chunked\r\nContent-Length: 4\r\n\r\n${chunkedThenInner}`],
      ["duplicate Content-Length", `Content-Length: 0\r\nContent-Length: ${inner.length}\r\n\r\n${inner}`],
      ["Content-Length with a sign", `Content-Length: +${inner.length}\r\n\r\n${inner}`],
    ];
    for (const [name, rest] of shapes) {
      for (const [who, auth] of [
        ["anonymous", ""],
        ["authenticated outer request", valid],
      ]) {
        const r = await rawRequest(target(), `POST /v2/x/blobs/uploads/ HTTP/1.1\r\nHost: ${hostHeader}\r\n${auth}${rest}`);
        // Refusals nginx makes itself (501: a Transfer-Encoding it does not implement). The outer request
        // may reach the registry only with valid credentials (202: an upload started); a second answer,
        // if any, is to the smuggled request, which nginx must have checked itself: 400 or 401.
        const refusals = [400, 401, 411, 413, 501];
        const ok =
          r.statuses.length > 0 &&
          r.statuses.every((st, i) => (i === 0 ? refusals.includes(st) || (auth !== "" && st === 202) : st === 400 || st === 401));
        a.check(
          `${name}, ${who}`,
          auth ? "400/401/501, or 202 for the outer request and 401 for the inner" : "400/401/411/413/501",
          r.statuses.join(", ") || "no answer",
          ok,
        );
      }
    }
    // The registry's log shows the paths it serves (the control) and never the smuggled one.
    const control = `control${crypto.randomBytes(4).toString("hex")}`;
    expect((await request(target(), "GET", `/v2/${control}/tags/list`, { Authorization: basic("admin", passwords.admin) })).status).toBe(
      404,
    );
    const registryLog = spawnSync("docker", ["logs", registryContainer], { encoding: "utf8" });
    expect(`${registryLog.stdout}${registryLog.stderr}`).toContain(control);
    const leaked = `${registryLog.stdout}${registryLog.stderr}`.includes(marker);
    a.check("smuggled request path in the registry's log", "absent", leaked ? "FOUND" : "absent", !leaked);
    a.done();
  });

  test("no answer names a version: Server is a bare 'nginx', error pages carry no version", async () => {
    const a = area("version disclosure");
    const samples: [string, Promise<{ status: number; headers: string; body: string }>][] = [
      ["401", rawRequest(target(), `GET /v2/ HTTP/1.1\r\nHost: ${hostHeader}\r\nConnection: close\r\n\r\n`).then(split)],
      ["404", rawRequest(target(), `GET /index.html HTTP/1.1\r\nHost: ${hostHeader}\r\nConnection: close\r\n\r\n`).then(split)],
      [
        "400",
        rawRequest(target(), `GET /v2/ HTTP/1.1\r\nHost: ${hostHeader}\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n`).then(split),
      ],
      ["405", rawRequest(target(), `TRACE /v2/ HTTP/1.1\r\nHost: ${hostHeader}\r\nConnection: close\r\n\r\n`).then(split)],
      [
        "200 (the registry's answer through nginx)",
        rawRequest(
          target(),
          `GET /v2/ HTTP/1.1\r\nHost: ${hostHeader}\r\nAuthorization: ${basic("admin", passwords.admin)}\r\nConnection: close\r\n\r\n`,
        ).then(split),
      ],
      [
        "plain HTTP on the TLS port",
        new Promise((resolve, reject) => {
          const s = net.connect(d.port, d.gateway, () => s.end(`GET /v2/ HTTP/1.1\r\nHost: ${hostHeader}\r\n\r\n`));
          const chunks: Buffer[] = [];
          s.on("data", (c: Buffer) => chunks.push(c));
          s.on("close", () => resolve(split({ statuses: [], text: Buffer.concat(chunks).toString("latin1") })));
          s.on("error", reject);
        }),
      ],
    ];
    for (const [name, pending] of samples) {
      const r = await pending;
      const server = /\r\nServer: ([^\r]*)/i.exec(r.headers)?.[1] ?? "none";
      // The API version header names the protocol Docker speaks, not software: it must be there, and is left out here.
      const headers = r.headers.replace(/\r\nDocker-Distribution-Api-Version: registry\/2\.0/i, "");
      const versions = `${headers}\n${r.body}`.match(/(nginx|registry|distribution|go|openssl|debian)[/ ]v?\d+(\.\d+)+/gi) ?? [];
      a.check(`${name}: Server header`, "nginx (no version)", server, server === "nginx");
      a.check(`${name}: versions in headers or body`, "none", versions.join(", ") || "none", versions.length === 0);
    }
    a.done();
  });

  test("the timing of a failed login tells known from unknown user names by about one bcrypt check (measured, not equalized)", async () => {
    // Paced below the failure limit, so that its delays do not mix in.
    const t = await failedLoginTiming(target(), "admin", "nosuchuser", 20, Math.ceil(1000 / AUTH_FAILURE_RATE_PER_SECOND) + 40);
    expect([...new Set(t.statuses)]).toEqual([401]);
    const [known, unknown] = [median(t.knownMs), median(t.unknownMs)];
    log.measure("failed login, known user (median of 20)", `${known.toFixed(2)} ms`);
    log.measure("failed login, unknown user (median of 20)", `${unknown.toFixed(2)} ms`);
    log.measure("timing gap known - unknown user (bcrypt cost 4)", `${(known - unknown).toFixed(2)} ms`);
    // With the default cost 4 the gap is one cheap bcrypt: small, but there (nginx skips the hash for unknown names).
    expect(known - unknown).toBeLessThan(20);
  });
});

describe("the registry's own port", () => {
  test("the registry has no network, and its socket is reachable from no other container and no unprivileged host user; nothing on port 5000", () => {
    const a = area("the registry itself (no network; a unix socket for nginx)");
    a.check(
      "the registry container's network",
      "none, no address",
      docker("inspect", "-f", "{{.HostConfig.NetworkMode}} [{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}]", registryContainer),
      docker(
        "inspect",
        "-f",
        "{{.HostConfig.NetworkMode}} [{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}]",
        registryContainer,
      ) === "none []",
    );
    // The socket's volume is mounted by the registry and nginx only.
    const mounters = docker("ps", "-a", "--filter", `volume=${id}-socket`, "--format", "{{.Names}}").split("\n").sort();
    a.check(
      "containers that mount the socket volume",
      `${id}-nginx, ${id}-registry`,
      mounters.join(", "),
      mounters.join(",") === `${id}-nginx,${id}-registry`,
    );
    const socketPath = `/var/lib/docker/volumes/${id}-socket/_data/registry.sock`;
    const asNobody = spawnSync(
      "setpriv",
      [
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "curl",
        "-sS",
        "-m",
        "5",
        "-o",
        "/dev/null",
        "--unix-socket",
        socketPath,
        "http://registry/v2/",
      ],
      { encoding: "utf8" },
    );
    a.check(
      "nobody on the Docker host through the socket file",
      "no connection",
      asNobody.stderr.trim() || `exit ${asNobody.status}`,
      asNobody.status !== 0 && /Permission denied|Failed to connect|Couldn't connect/.test(asNobody.stderr),
    );
    // nginx's address on the private network: the proxy answers on 443 only.
    const registryIp = docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", `${id}-nginx`);
    expect(registryIp).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    // Refused (nothing listens there) or dropped (Docker isolates other networks): either way no connection.
    const refused = (r: { status: number | null; out: string }) =>
      r.status !== 0 && /Connection refused|Failed to connect|Could not connect|timed out/.test(r.out);
    for (const to of [registryIp, d.gateway]) {
      const r = containerSh(client, `curl -sS -m 5 -o /dev/null http://${to}:5000/v2/`);
      a.check(
        `from the client host container to ${to === d.gateway ? "the host side" : "the registry container"}:5000`,
        "no connection",
        r.out.trim() || `exit ${r.status}`,
        refused(r),
      );
    }
    // A container on the registry's own network, where the registry container has its address.
    const onNet = spawnSync(
      "docker",
      [
        "run",
        "--rm",
        "--name",
        probe,
        "--network",
        `${id}-net`,
        "--entrypoint",
        "curl",
        CLIENT_IMAGE,
        "-sS",
        "-m",
        "5",
        "-o",
        "/dev/null",
        `http://${registryIp}:5000/v2/`,
      ],
      { encoding: "utf8", timeout: 60_000 },
    );
    a.check(
      "from a container on the private network to nginx:5000",
      "connection refused",
      onNet.stderr.trim() || `exit ${onNet.status}`,
      refused({ status: onNet.status, out: onNet.stderr }),
    );
    // An unprivileged user on the Docker host (nobody), and root, to every address the registry could listen on.
    for (const [who, prefix] of [
      ["nobody", ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]],
      ["root", []],
    ] as const) {
      for (const to of ["127.0.0.1", registryIp, d.gateway]) {
        const r = spawnSync(
          prefix[0] ?? "curl",
          [...prefix.slice(1), ...(prefix.length ? ["curl"] : []), "-sS", "-m", "5", "-o", "/dev/null", `http://${to}:5000/v2/`],
          { encoding: "utf8" },
        );
        a.check(
          `${who} on the Docker host to ${to}:5000`,
          "connection refused",
          r.stderr.trim() || `exit ${r.status}`,
          refused({ status: r.status, out: r.stderr }),
        );
      }
    }
    a.check(
      "ports published",
      `nginx: 443/tcp -> 0.0.0.0:${d.port} only; the registry: none`,
      `${docker("port", `${id}-nginx`).replace(/\n/g, "; ")}; registry: ${docker("port", registryContainer) || "none"}`,
      docker("port", `${id}-nginx`) === `443/tcp -> 0.0.0.0:${d.port}` && docker("port", registryContainer) === "",
    );
    a.done();
  });
});

describe("a flood of wrong passwords", () => {
  test("is slowed to the failure rate, and a valid user's GET /v2/ meanwhile stays fast (16 connections, 10 s, loopback)", async () => {
    // Loopback: the published port on 127.0.0.1, the certificate checked against the DNS name.
    const loopback: Target = { host: "127.0.0.1", port: d.port, ca: caPem, servername: DNS_NAME };
    const validAuth = basic("admin", passwords.admin);
    // Let the failure counter of earlier tests drain.
    await new Promise((r) => setTimeout(r, 3000));
    const idle = await idleLatency(loopback, validAuth, 30);
    const seconds = 10;
    const result = await flood(loopback, {
      badAuth: basic("admin", "wrong-password"),
      validAuth,
      connections: 16,
      durationMs: seconds * 1000,
      maxRequests: 5000,
      probeEveryMs: 100,
    });
    log.measure("valid GET /v2/, idle (median / p95 of 30)", `${median(idle).toFixed(1)} / ${percentile(idle, 95).toFixed(1)} ms`);
    log.measure(
      `valid GET /v2/ during the flood (median / p95 / max of ${result.validMs.length})`,
      `${median(result.validMs).toFixed(1)} / ${percentile(result.validMs, 95).toFixed(1)} / ${Math.max(...result.validMs).toFixed(1)} ms`,
    );
    log.measure(
      "flood: wrong-password requests answered in 10 s (16 connections)",
      `${result.attackRequests} (${JSON.stringify(result.attackStatuses)})`,
    );
    const a = area("flood");
    const statuses = Object.keys(result.attackStatuses);
    a.check(
      "16 connections of wrong passwords for 10 s: answers",
      "401/429 only",
      statuses.join(", "),
      statuses.every((s) => s === "401" || s === "429"),
    );
    // Held to the rate: the first burst, then AUTH_FAILURE_RATE_PER_SECOND a second (without the limit: thousands).
    const bound = AUTH_FAILURE_RATE_PER_SECOND * seconds + AUTH_FAILURE_BURST;
    a.check("wrong passwords nginx checked in 10 s", `at most ${bound}`, String(result.attackRequests), result.attackRequests <= bound);
    a.check(
      "valid requests during the flood",
      "all 200",
      JSON.stringify(result.validStatuses),
      Object.keys(result.validStatuses).join() === "200" && result.validMs.length >= 20,
    );
    a.check(
      "valid GET /v2/ p95 during the flood",
      "under 500 ms",
      `${percentile(result.validMs, 95).toFixed(1)} ms`,
      percentile(result.validMs, 95) < 500,
    );
    a.done();
  });
});

describe("a removed user", () => {
  test("is refused at once after the `up` that removes it; the others still get in", async () => {
    const gonePassword = passwords.gone;
    const { output } = await d.up({ "users[2]": null });
    upOutput += output;
    const a = area("removed user");
    const gone = await request(target(), "GET", "/v2/_catalog", { Authorization: basic("gone", gonePassword) });
    a.check("gone's password after its removal", "401", String(gone.status), gone.status === 401);
    expect((await request(target(), "GET", "/v2/_catalog", { Authorization: basic("admin", passwords.admin) })).status).toBe(200);
    for (const [name, value] of [
      ["gone's password", gonePassword],
      ["admin's password", passwords.admin],
    ]) {
      a.check(`${name} in the second up's output`, "absent", output.includes(value) ? "FOUND" : "absent", !output.includes(value));
    }
    a.done();
  });
});

describe("logs", () => {
  test("no secret in the registry's or nginx's container logs after all of the above", () => {
    const secrets = deployedSecrets();
    const a = area("secrets in logs");
    for (const container of [registryContainer, nginxContainer]) {
      const r = spawnSync("docker", ["logs", container], { encoding: "utf8", maxBuffer: 64 << 20 });
      const text = `${r.stdout}${r.stderr}`;
      // Not empty: nginx logs every request here, the registry too.
      expect(text.length).toBeGreaterThan(100);
      for (const [name, value] of secrets)
        a.check(
          `${name} in docker logs ${container.replace(id, "<prefix>")}`,
          "absent",
          text.includes(value) ? "FOUND" : "absent",
          !text.includes(value),
        );
    }
    a.done();
  });
});

test("destroy succeeds and leaves no container, network or volume of the test's stack", async () => {
  await d.destroy();
  expect(docker("ps", "-a", "--filter", `name=^${id}-(registry|nginx|users-writer)$`, "-q")).toBe("");
  expect(docker("network", "ls", "--filter", `name=^${id}-net$`, "-q")).toBe("");
  expect(docker("volume", "ls", "--filter", `name=^${id}-(data|users)$`, "-q")).toBe("");
  expect(containerSh(client, `ls /etc/docker/certs.d/${d.gateway}:${d.port} 2>&1; true`).out).toMatch(/No such file/);
});

function split(r: { statuses: number[]; text: string }): { status: number; headers: string; body: string } {
  const at = r.text.indexOf("\r\n\r\n");
  return { status: r.statuses[0] ?? 0, headers: at < 0 ? r.text : r.text.slice(0, at), body: at < 0 ? "" : r.text.slice(at + 4) };
}
