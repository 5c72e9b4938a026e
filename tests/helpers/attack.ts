// Attack tooling for the security tests: raw HTTP over TLS (for requests Node's
// http client refuses to send), a bounded flood of wrong passwords with a valid
// client measured meanwhile, timing of failed logins, and a log of every attempt
// that can be written as a Markdown table (scripts/security-audit.sh).
import { setMaxListeners } from "events";
import * as fs from "fs";
import * as https from "https";
import * as net from "net";
import * as tls from "tls";

export interface Target {
  host: string;
  port: number;
  /** CA certificate (PEM) the server's chain must verify against. */
  ca: string;
  /** Name checked against the certificate (and sent as SNI). */
  servername: string;
  /** Source address to dial from (loopback tests use 127.0.0.x to look like other clients). */
  localAddress?: string;
}

export const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;

export interface RawAnswer {
  /** Every status code nginx sent on the connection, in order (several when a request was smuggled or pipelined). */
  statuses: number[];
  /** Everything received, as latin1 text. */
  text: string;
}

/** Sends bytes as they are over one TLS connection and collects what comes back until the server closes or `idleMs` pass. */
export function rawRequest(target: Target, bytes: string | Buffer, idleMs = 1500): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let timer: NodeJS.Timeout | undefined;
    const tcp = net.connect({ host: target.host, port: target.port, localAddress: target.localAddress });
    const socket = tls.connect({ socket: tcp, ca: target.ca, servername: target.servername }, () => {
      socket.write(bytes);
      arm();
    });
    const finish = () => {
      if (timer) clearTimeout(timer);
      socket.destroy();
      const text = Buffer.concat(chunks).toString("latin1");
      const statuses = [...text.matchAll(/(?:^|\r\n)HTTP\/1\.[01] (\d{3}) /g)].map((m) => Number(m[1]));
      resolve({ statuses, text });
    };
    const arm = () => {
      if (timer) clearTimeout(timer);
      timer = setTimeout(finish, idleMs);
    };
    socket.on("data", (c: Buffer) => {
      chunks.push(c);
      arm();
    });
    socket.on("end", finish);
    socket.on("close", finish);
    socket.on("error", (e) => (chunks.length ? finish() : reject(e)));
  });
}

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  rawHeaders: string[];
  body: string;
  ms: number;
}

/** One HTTPS request with Node's client (verified TLS); `agent` to reuse kept-alive connections. */
export function request(
  target: Target,
  method: string,
  pathName: string,
  headers: Record<string, string> = {},
  agent?: https.Agent,
  body?: string,
  signal?: AbortSignal,
): Promise<Answer> {
  const started = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: target.host,
        port: target.port,
        method,
        path: pathName,
        ca: target.ca,
        servername: target.servername,
        localAddress: target.localAddress,
        headers,
        agent: agent ?? false,
        signal,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            rawHeaders: res.rawHeaders,
            body: Buffer.concat(chunks).toString("utf8"),
            ms: Number(process.hrtime.bigint() - started) / 1e6,
          }),
        );
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

/**
 * `n` failed logins at once from one address. The `n` connections are opened first
 * (with credential-less requests, which are never counted), so that the failures
 * arrive together even on a busy machine. After `waitMs` the ones still held back
 * by the failure limit are given up (their connections closed), so a test need not
 * wait out the delays. Returns the answers given by then and how many were held.
 */
export async function burstOfFailures(
  target: Target,
  n: number,
  waitMs: number,
): Promise<{ answers: Answer[]; statuses: number[]; held: number }> {
  const agent = new https.Agent({ keepAlive: true, maxSockets: n });
  const abort = new AbortController();
  setMaxListeners(n + 10, abort.signal);
  const answers: Answer[] = [];
  let held = 0;
  try {
    await Promise.all(Array.from({ length: n }, () => request(target, "GET", "/v2/", {}, agent)));
    const all = Array.from({ length: n }, (_v, i) =>
      request(target, "GET", "/v2/", { Authorization: basic("guesser", `burst-${i}`) }, agent, undefined, abort.signal).then(
        (a) => {
          answers.push(a);
        },
        () => {
          held++;
        },
      ),
    );
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(all),
      new Promise((r) => {
        timer = setTimeout(r, waitMs);
      }),
    ]);
    clearTimeout(timer);
    abort.abort();
    await Promise.all(all);
  } finally {
    agent.destroy();
  }
  return { answers, statuses: answers.map((a) => a.status), held };
}

export interface FloodOptions {
  /** Wrong credentials the attacker sends. */
  badAuth: string;
  /** Valid credentials of the user whose requests are timed meanwhile. */
  validAuth: string;
  /** Concurrent attacking connections, each sending its next request when the last is answered. */
  connections: number;
  durationMs: number;
  /** Upper bound on attacking requests, whatever the duration. */
  maxRequests: number;
  /** Pause between the valid user's requests. */
  probeEveryMs: number;
}

export interface FloodResult {
  attackRequests: number;
  attackStatuses: Record<string, number>;
  /** Latency of each valid GET /v2/ sent during the flood (kept-alive connection, as Docker keeps one). */
  validMs: number[];
  validStatuses: Record<string, number>;
  durationMs: number;
}

/** A bounded flood of wrong passwords on kept-alive connections while a valid user keeps calling GET /v2/. */
export async function flood(target: Target, o: FloodOptions): Promise<FloodResult> {
  const attackAgent = new https.Agent({ keepAlive: true, maxSockets: o.connections });
  const validAgent = new https.Agent({ keepAlive: true, maxSockets: 1 });
  const result: FloodResult = { attackRequests: 0, attackStatuses: {}, validMs: [], validStatuses: {}, durationMs: 0 };
  const started = Date.now();
  const until = started + o.durationMs;
  const more = () => Date.now() < until && result.attackRequests < o.maxRequests;
  const count = (m: Record<string, number>, k: string) => {
    m[k] = (m[k] ?? 0) + 1;
  };
  const attacker = async () => {
    while (more()) {
      result.attackRequests++;
      try {
        count(result.attackStatuses, String((await request(target, "GET", "/v2/", { Authorization: o.badAuth }, attackAgent)).status));
      } catch (e) {
        count(result.attackStatuses, `error ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      }
    }
  };
  const probe = async () => {
    // Let the flood build up first.
    await new Promise((r) => setTimeout(r, Math.min(1000, o.durationMs / 4)));
    while (more()) {
      try {
        const a = await request(target, "GET", "/v2/", { Authorization: o.validAuth }, validAgent);
        result.validMs.push(a.ms);
        count(result.validStatuses, String(a.status));
      } catch (e) {
        count(result.validStatuses, `error ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      }
      await new Promise((r) => setTimeout(r, o.probeEveryMs));
    }
  };
  try {
    await Promise.all([...Array.from({ length: o.connections }, attacker), probe()]);
  } finally {
    attackAgent.destroy();
    validAgent.destroy();
  }
  result.durationMs = Date.now() - started;
  return result;
}

/** Sequential valid GET /v2/ on one kept-alive connection: the latency a user sees with nothing else going on. */
export async function idleLatency(target: Target, auth: string, n: number): Promise<number[]> {
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
  const ms: number[] = [];
  try {
    for (let i = 0; i < n; i++) ms.push((await request(target, "GET", "/v2/", { Authorization: auth }, agent)).ms);
  } finally {
    agent.destroy();
  }
  return ms;
}

/**
 * Failed logins of a known and of an unknown user name, interleaved on one kept-alive
 * connection, paced below the failure rate limit so that its delays do not mix in.
 */
export async function failedLoginTiming(
  target: Target,
  known: string,
  unknown: string,
  pairs: number,
  paceMs: number,
): Promise<{ knownMs: number[]; unknownMs: number[]; statuses: number[] }> {
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
  const out = { knownMs: [] as number[], unknownMs: [] as number[], statuses: [] as number[] };
  try {
    // One request first, so that the TLS handshake is in neither sample.
    await request(target, "GET", "/v2/", {}, agent);
    for (let i = 0; i < pairs; i++) {
      for (const [user, into] of [
        [known, out.knownMs],
        [unknown, out.unknownMs],
      ] as const) {
        const a = await request(target, "GET", "/v2/", { Authorization: basic(user, `wrong-${i}`) }, agent);
        out.statuses.push(a.status);
        into.push(a.ms);
        await new Promise((r) => setTimeout(r, paceMs));
      }
    }
  } finally {
    agent.destroy();
  }
  return out;
}

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
export const percentile = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};

export interface Attempt {
  area: string;
  name: string;
  expected: string;
  got: string;
  /** The attempt failed as it should (the expectation held). */
  refused: boolean;
}

/** Every attempt of a test file, and measured numbers, for the audit table. */
export class AttemptLog {
  readonly attempts: Attempt[] = [];
  readonly measurements: { name: string; value: string }[] = [];

  /** Records an attempt; returns whether it met the expectation, for the caller to assert. */
  record(area: string, name: string, expected: string, got: string, refused: boolean): boolean {
    this.attempts.push({ area, name, expected, got, refused });
    return refused;
  }

  measure(name: string, value: string): void {
    this.measurements.push({ name, value });
  }

  markdown(header: string): string {
    const cell = (s: string) => s.replace(/\|/g, "\\|").replace(/\r?\n/g, " ").slice(0, 160);
    const areas = [...new Set(this.attempts.map((a) => a.area))];
    const lines = [
      header,
      "",
      "| area | attempts | refused as expected | not refused |",
      "|---|---|---|---|",
      ...areas.map((area) => {
        const of = this.attempts.filter((a) => a.area === area);
        return `| ${cell(area)} | ${of.length} | ${of.filter((a) => a.refused).length} | ${of.filter((a) => !a.refused).length} |`;
      }),
      `| **all** | **${this.attempts.length}** | **${this.attempts.filter((a) => a.refused).length}** | **${this.attempts.filter((a) => !a.refused).length}** |`,
      "",
      "| measured | value |",
      "|---|---|",
      ...this.measurements.map((m) => `| ${cell(m.name)} | ${cell(m.value)} |`),
      "",
      "<details><summary>Every attempt</summary>",
      "",
      "| area | attempt | expected | got | ok |",
      "|---|---|---|---|---|",
      ...this.attempts.map(
        (a) => `| ${cell(a.area)} | ${cell(a.name)} | ${cell(a.expected)} | ${cell(a.got)} | ${a.refused ? "yes" : "**NO**"} |`,
      ),
      "",
      "</details>",
      "",
    ];
    return lines.join("\n");
  }

  /** Writes the table where the variable (SECURITY_AUDIT_TABLE by default) points, if it is set. */
  writeIfAsked(header: string, variable = "SECURITY_AUDIT_TABLE"): void {
    const file = process.env[variable];
    if (file) fs.writeFileSync(file, this.markdown(header));
  }
}

/** The attempts of one test, recorded in `log`; `done` fails the test listing every attempt that was not refused. */
export function attemptArea(log: AttemptLog, name: string) {
  const bad: string[] = [];
  return {
    check(attempt: string, expected: string, got: string, ok: boolean): void {
      if (!log.record(name, attempt, expected, got, ok)) bad.push(`${attempt}: expected ${expected}, got ${got}`);
    },
    done(): void {
      expect(bad).toEqual([]);
    },
  };
}
export type Area = ReturnType<typeof attemptArea>;

const AUTH_PATHS = ["/v2/", "/v2/_catalog", "/v2/x/manifests/y", "/v2/x/blobs/uploads/", "/v2/x/tags/list"];
/** The registry browser's and the metrics' paths (lib/nginxConf.ts): the same credentials as /v2/. */
export const PAGE_PATHS = [
  "/ui/",
  "/ui/index.html",
  "/ui/app.js",
  "/ui/style.css",
  "/ui/session.json",
  "/ui/missing",
  "/metrics/nginx",
  "/metrics/registry",
];
const AUTH_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"];

/** Every method on every path under /v2/ without credentials: 401 with the challenge Docker needs and the API header. */
export async function checkEveryPathNeedsCredentials(a: Area, target: Target, paths: readonly string[] = AUTH_PATHS): Promise<void> {
  for (const p of paths) {
    for (const method of AUTH_METHODS) {
      const r = await request(target, method, p, method === "GET" || method === "HEAD" ? {} : { "Content-Length": "0" });
      const ok =
        r.status === 401 &&
        r.headers["www-authenticate"] === 'Basic realm="Registry realm"' &&
        r.headers["docker-distribution-api-version"] === "registry/2.0";
      a.check(
        `${method} ${p}`,
        "401 + WWW-Authenticate + API header",
        `${r.status}${r.headers["www-authenticate"] ? " + WWW-Authenticate" : ""}${r.headers["docker-distribution-api-version"] ? " + API header" : ""}`,
        ok,
      );
    }
  }
}

/** Wrong, empty, swapped and look-alike credentials of `admin` (and a user `ci`), named. */
export function lookAlikeCredentials(adminPassword: string): [string, string][] {
  return [
    ["admin with a wrong password", basic("admin", "wrong-password")],
    ["admin with an empty password", basic("admin", "")],
    ["empty user name with admin's password", basic("", adminPassword)],
    ["ci with admin's password", basic("ci", adminPassword)],
    ["Admin (other case) with admin's password", basic("Admin", adminPassword)],
    ["admin's password minus its last character", basic("admin", adminPassword.slice(0, -1))],
    ["admin's password plus ':x'", basic("admin", `${adminPassword}:x`)],
    ["an unknown user", basic("nobody", "whatever")],
  ];
}

/** Each of `cases` on GET /v2/_catalog (or `pathName`): 401. */
export async function checkCredentialsRefused(
  a: Area,
  target: Target,
  cases: [string, string][],
  pathName = "/v2/_catalog",
): Promise<void> {
  for (const [name, auth] of cases) {
    const r = await request(target, "GET", pathName, { Authorization: auth });
    a.check(pathName === "/v2/_catalog" ? name : `${name} on ${pathName}`, "401", String(r.status), r.status === 401);
  }
}
