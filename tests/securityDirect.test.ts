// The attack suite's second layout: tlsTermination "registry", where distribution
// itself terminates TLS and checks the htpasswd (no nginx). A real `pulumi up` (the
// shared fixture, tests/helpers/deployment.ts: Automation API, a file backend in a
// temporary folder, its own stack), the same attacks as tests/security.test.ts where they
// apply, each recorded; what differs from the proxy layout is asserted as it is and said
// in docs/security.md (no failure rate limit; "/" answers 200 empty; the registry's
// port is its TLS port on every interface of its container).
// Traffic goes only to this test's own network and containers.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as tls from "tls";
import { spawnSync } from "child_process";
import { containerSh, docker, dockerQuiet } from "./helpers/e2e";
import { deployment, IMAGES, revealed } from "./helpers/deployment";
import {
  AttemptLog,
  Target,
  attemptArea,
  basic,
  checkCredentialsRefused,
  checkEveryPathNeedsCredentials,
  flood,
  lookAlikeCredentials,
  median,
  percentile,
  rawRequest,
  request,
} from "./helpers/attack";

jest.setTimeout(900_000);

const DNS_NAME = "registry.secd.test";
// No client host: this machine dials the network's host side. rsaBits at its default (4096).
const d = deployment({
  tag: "secd",
  dnsName: DNS_NAME,
  config: { tlsTermination: "registry", rsaBits: null, "users[1]": "ci" },
});
const { id } = d;
let probe = "";
let registryContainer = "";

const log = new AttemptLog();
const started = Date.now();
const loadAtStart = os.loadavg()[0];
let passwords: Record<string, string>;
let caPem = "";
let upOutput = "";
const target = (): Target => ({ host: d.gateway, port: d.port, ca: caPem, servername: DNS_NAME });
let hostHeader = "";

const area = (name: string) => attemptArea(log, name);

beforeAll(() => {
  hostHeader = d.endpoint;
  probe = d.names("probe");
  registryContainer = d.names("registry");
  upOutput = d.first.output;
  passwords = d.first.outputs.credentials.value;
  caPem = d.first.outputs.caCertPem.value;
});

afterAll(() => {
  log.measure("test file run time", `${Math.round((Date.now() - started) / 1000)} s`);
  log.writeIfAsked(
    `Produced by \`scripts/security-audit.sh\` (tests/securityDirect.test.ts: \`tlsTermination: registry\`, against a real \`pulumi up\`) on ` +
      `${new Date().toISOString().slice(0, 10)}, ${os.cpus().length} CPU cores, load average ${loadAtStart.toFixed(1)} at the start.`,
    "SECURITY_AUDIT_TABLE_DIRECT",
  );
});

describe("secrets (tlsTermination: registry)", () => {
  test("the TLS key, the passwords, the htpasswd and the HTTP secret are in no clear text: state files, docker inspect, `up` output, container log", () => {
    const resources = d.exportedResources();
    const secrets: [string, string][] = [];
    for (const r of resources) {
      if (r.type === "random:index/randomPassword:RandomPassword")
        secrets.push([`password ${r.urn.split("::").pop()}`, String(revealed(r.outputs.result))]);
      if (r.type === "tls:index/privateKey:PrivateKey") {
        const lines = String(revealed(r.outputs.privateKeyPem))
          .split("\n")
          .filter((l) => l && !l.startsWith("-----"));
        secrets.push([`private key ${r.urn.split("::").pop()}`, lines[lines.length - 2]]);
      }
    }
    const uploads = revealed(resources.find((r) => r.urn.endsWith("::registry-registry-container"))?.outputs.uploads) as {
      file: string;
      content: string;
    }[];
    const htpasswd = uploads.find((u) => u.file.endsWith("/htpasswd"))?.content ?? "";
    for (const line of htpasswd.split("\n").filter(Boolean)) secrets.push([`bcrypt hash of ${line.split(":")[0]}`, line.split(":")[1]]);
    expect(secrets.length).toBeGreaterThanOrEqual(6);
    const stateText = spawnSync("sh", ["-c", `cat $(find ${path.join(d.workDir, "state")} -type f)`], {
      encoding: "utf8",
      maxBuffer: 64 << 20,
    }).stdout;
    const inspect = docker("inspect", registryContainer);
    const logs = spawnSync("docker", ["logs", registryContainer], { encoding: "utf8" });
    const a = area("secrets in clear (direct layout)");
    for (const [name, value] of secrets) {
      for (const [where, text] of [
        ["state files", stateText],
        ["docker inspect", inspect],
        ["up output", upOutput],
        ["registry log", `${logs.stdout}${logs.stderr}`],
      ]) {
        a.check(`${name} in ${where}`, "absent", text.includes(value) ? "FOUND" : "absent", !text.includes(value));
      }
    }
    a.done();
  });
});

describe("TLS (tlsTermination: registry)", () => {
  test("only TLS 1.2 and 1.3: 1.0 and 1.1 are refused even by a client that offers them", () => {
    const caFile = path.join(d.workDir, "ca.crt");
    fs.writeFileSync(caFile, caPem);
    const a = area("TLS protocol versions (direct layout)");
    for (const [flag, name] of [
      ["-tls1", "TLS 1.0"],
      ["-tls1_1", "TLS 1.1"],
    ]) {
      const r = spawnSync(
        "openssl",
        ["s_client", "-connect", hostHeader, "-servername", DNS_NAME, flag, "-cipher", "DEFAULT:@SECLEVEL=0", "-CAfile", caFile],
        { input: "", encoding: "utf8", timeout: 20_000 },
      );
      const alert =
        /alert protocol version|unsupported protocol|wrong version number|no protocols available/.exec(r.stdout + r.stderr)?.[0] ??
        `exit ${r.status}`;
      a.check(`handshake with ${name} only`, "refused", alert, r.status !== 0);
    }
    for (const flag of ["-tls1_2", "-tls1_3"]) {
      const r = spawnSync(
        "openssl",
        ["s_client", "-connect", hostHeader, flag, "-brief", "-CAfile", caFile, "-verify_return_error", "-verify_hostname", DNS_NAME],
        { input: "", encoding: "utf8", timeout: 20_000 },
      );
      expect(r.stderr).toContain("Verification: OK");
    }
    a.done();
  });

  test("over TLS 1.2 only forward-secret AEAD suites are accepted, and those of the ECDSA key are (every TLS 1.2 suite this OpenSSL knows is tried)", async () => {
    const a = area("TLS 1.2 cipher suites (direct layout)");
    const suites = tls
      .getCiphers()
      .map((c) => c.toUpperCase())
      .filter((c) => !c.startsWith("TLS_"));
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
        socket.on("error", () => resolve("refused"));
      });
      // The server's key is ECDSA (serverKeyAlgorithm's default): its ECDHE-ECDSA AEAD suites must
      // work; every suite that is not AEAD with forward secrecy must be refused; the rest (RSA, PSK)
      // cannot apply to this key.
      const aead = /GCM|CHACHA20/.test(suite) && /^ECDHE-/.test(suite);
      const mustWork = aead && /^ECDHE-ECDSA-/.test(suite);
      const gotText = got === "refused" ? "refused" : `accepted ${got}`;
      if (mustWork) a.check(suite, "accepted (AEAD, ECDHE, ECDSA key)", gotText, got !== "refused");
      else if (!aead) a.check(suite, "refused", gotText, got === "refused");
    }
    a.done();
  });
});

describe("authentication (tlsTermination: registry)", () => {
  test("every path under /v2/ needs credentials, for every method: 401 with the challenge and the API header", async () => {
    const a = area("no credentials (direct layout)");
    await checkEveryPathNeedsCredentials(a, target());
    expect((await request(target(), "GET", "/v2/_catalog", { Authorization: basic("admin", passwords.admin) })).status).toBe(200);
    a.done();
  });

  test("wrong, empty, swapped and look-alike credentials are refused with 401", async () => {
    const a = area("wrong credentials (direct layout)");
    const cases = lookAlikeCredentials(passwords.admin);
    cases.push(["the user docker (distribution's generated default)", basic("docker", "docker")]);
    await checkCredentialsRefused(a, target(), cases);
    a.done();
  });

  test("malformed and oversized Authorization headers get 400, 401 or 431, never a 200 or a 5xx, and the registry keeps serving", async () => {
    const a = area("malformed Authorization (direct layout)");
    const valid = basic("admin", passwords.admin);
    const cases: [string, string][] = [
      ["'Basic' with nothing after it", "Authorization: Basic"],
      ["invalid base64", "Authorization: Basic !!!!****"],
      ["base64 without a colon", `Authorization: Basic ${Buffer.from("adminnocolon").toString("base64")}`],
      ["a Bearer token", "Authorization: Bearer eyJhbGciOiJub25lIn0.e30."],
      ["a 64 KiB header line", `Authorization: Basic ${"A".repeat(65536)}`],
      ["a 1.5 MiB header line", `Authorization: Basic ${"A".repeat(1536 * 1024)}`],
      ["a wrong Authorization, then a valid one", `Authorization: ${basic("admin", "wrong")}\r\nAuthorization: ${valid}`],
    ];
    for (const [name, header] of cases) {
      const r = await rawRequest(target(), `GET /v2/_catalog HTTP/1.1\r\nHost: ${hostHeader}\r\n${header}\r\nConnection: close\r\n\r\n`);
      const status = r.statuses[0];
      a.check(
        name,
        "400/401/431 (not 200, not 5xx)",
        status ? String(status) : "no answer (connection closed)",
        status === undefined || [400, 401, 431].includes(status),
      );
    }
    expect((await request(target(), "GET", "/v2/", { Authorization: valid })).status).toBe(200);
    a.done();
  });

  test("path tricks, odd methods and smuggling shapes without credentials reach nothing: never a 200 with data, never a 5xx", async () => {
    const a = area("paths, methods, smuggling (direct layout)");
    const paths = [
      "/v2/../v2/_catalog",
      "/v2/%2e%2e/v2/_catalog",
      "//v2/_catalog",
      "/V2/_catalog",
      "/v2%2f_catalog",
      "/v2/x%2f..%2f..%2f_catalog",
      "/./v2/_catalog",
      "/v2/./_catalog",
      "/debug/vars",
      "/debug/pprof/",
      "/metrics",
    ];
    for (const p of paths) {
      const r = await rawRequest(target(), `GET ${p} HTTP/1.1\r\nHost: ${hostHeader}\r\nConnection: close\r\n\r\n`);
      const status = r.statuses[0];
      a.check(
        `GET ${p}`,
        "301/400/401/404 (no catalog)",
        status ? String(status) : "no answer",
        [301, 400, 401, 404].includes(status) && !r.text.includes("repositories"),
      );
    }
    for (const m of ["TRACE", "PROPFIND", "OPTIONS"]) {
      const r = await rawRequest(target(), `${m} /v2/_catalog HTTP/1.1\r\nHost: ${hostHeader}\r\nConnection: close\r\n\r\n`);
      const status = r.statuses[0];
      a.check(
        `${m} /v2/_catalog`,
        "401/404/405 (nothing echoed)",
        String(status),
        [401, 404, 405].includes(status) && !r.text.includes("TRACE /v2"),
      );
    }
    const inner = `GET /v2/_catalog HTTP/1.1\r\nHost: ${hostHeader}\r\n\r\n`;
    const chunkedThenInner = `0\r\n\r\n${inner}`;
    const shapes: [string, string][] = [
      ["CL+TE", `Content-Length: ${chunkedThenInner.length}\r\nTransfer-Encoding: chunked\r\n\r\n${chunkedThenInner}`],
      ["TE: xchunked", `Transfer-Encoding: xchunked\r\nContent-Length: ${chunkedThenInner.length}\r\n\r\n${chunkedThenInner}`],
      ["duplicate Content-Length", `Content-Length: 0\r\nContent-Length: ${inner.length}\r\n\r\n${inner}`],
      ["Content-Length with a sign", `Content-Length: +${inner.length}\r\n\r\n${inner}`],
    ];
    for (const [name, rest] of shapes) {
      const r = await rawRequest(target(), `POST /v2/x/blobs/uploads/ HTTP/1.1\r\nHost: ${hostHeader}\r\n${rest}`);
      a.check(
        `smuggling: ${name}`,
        "only 400/401/501 answers",
        r.statuses.join(", ") || "no answer",
        r.statuses.length > 0 && r.statuses.every((st) => [400, 401, 501].includes(st)) && !r.text.includes("repositories"),
      );
    }
    // "/" is distribution's liveness route: 200 with an empty body, nothing else.
    const root = await rawRequest(target(), `GET / HTTP/1.1\r\nHost: ${hostHeader}\r\nConnection: close\r\n\r\n`);
    a.check(
      "GET / (liveness route)",
      "200 with an empty body",
      `${root.statuses[0]} ${/\r\n\r\n([\s\S]*)$/.exec(root.text)?.[1].length ?? "?"} bytes`,
      root.statuses[0] === 200 && /\r\nContent-Length: 0\r\n/i.test(root.text),
    );
    a.done();
  });

  test("no answer names a version", async () => {
    const a = area("version disclosure (direct layout)");
    for (const [name, raw] of [
      ["401", `GET /v2/ HTTP/1.1\r\nHost: ${hostHeader}\r\nConnection: close\r\n\r\n`],
      ["404", `GET /index.html HTTP/1.1\r\nHost: ${hostHeader}\r\nConnection: close\r\n\r\n`],
      ["200", `GET /v2/ HTTP/1.1\r\nHost: ${hostHeader}\r\nAuthorization: ${basic("admin", passwords.admin)}\r\nConnection: close\r\n\r\n`],
    ]) {
      const r = await rawRequest(target(), raw);
      const text = r.text.replace(/\r\nDocker-Distribution-Api-Version: registry\/2\.0/i, "");
      const versions = text.match(/(registry|distribution|go|openssl|debian)[/ ]v?\d+(\.\d+)+/gi) ?? [];
      const server = /\r\nServer: ([^\r]*)/i.exec(r.text)?.[1] ?? "none";
      a.check(`${name}: Server header`, "none", server, server === "none");
      a.check(`${name}: versions in headers or body`, "none", versions.join(", ") || "none", versions.length === 0);
    }
    a.done();
  });
});

describe("the registry's port (tlsTermination: registry)", () => {
  // The probe sits on the stack's network: gone before the destroy, which removes that network.
  afterAll(() => dockerQuiet("rm", "-f", probe));

  test("from another container on the registry's own network: TLS and a password still required (there is no plain port)", () => {
    const a = area("the registry's port from other containers (direct layout)");
    const registryIp = docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", registryContainer);
    docker("run", "-d", "--name", probe, "--network", `${id}-net`, IMAGES["ssh-client-host"]);
    const plainHttp = containerSh(probe, `curl -sS -m 5 -o /dev/null -w '%{http_code}' http://${registryIp}:5000/v2/_catalog`);
    a.check(
      "plain HTTP to the registry's address",
      "400 (it speaks only TLS)",
      plainHttp.out.trim() || "no answer",
      plainHttp.out.trim() === "400",
    );
    const noAuth = containerSh(probe, `curl -sS -m 5 -k -o /dev/null -w '%{http_code}' https://${registryIp}:5000/v2/_catalog`);
    a.check("HTTPS without credentials to the registry's address", "401", noAuth.out.trim(), noAuth.out.trim() === "401");
    a.done();
  });
});

describe("a flood of wrong passwords (tlsTermination: registry)", () => {
  test("has no rate limit here (said in docs/security.md); valid requests meanwhile still succeed (16 connections, 10 s)", async () => {
    const result = await flood(target(), {
      connections: 16,
      durationMs: 10_000,
      maxRequests: 20_000,
      badAuth: basic("admin", "wrong-password"),
      validAuth: basic("admin", passwords.admin),
      probeEveryMs: 200,
    });
    log.measure("direct layout: wrong passwords answered in a 10 s flood of 16 connections", String(result.attackRequests));
    log.measure(
      "direct layout: valid GET /v2/ during the flood, median / p95",
      `${median(result.validMs).toFixed(1)} / ${percentile(result.validMs, 95).toFixed(1)} ms`,
    );
    expect(result.validMs.length).toBeGreaterThan(10);
    expect(Object.keys(result.validStatuses)).toEqual(["200"]);
    expect(Object.keys(result.attackStatuses)).toEqual(["401"]);
  });
});
