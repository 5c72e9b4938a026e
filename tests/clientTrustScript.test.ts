// The client-host scripts, checked by sh -n, shellcheck and by running them against
// scratch directories (the OS trust store and sudo, in a container: tests/clientTrustHost.test.ts).
import { spawn, spawnSync } from "child_process";
import * as https from "https";
import { AddressInfo } from "net";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import {
  asCommand,
  renderCheckScript,
  renderInstallScript,
  renderRemoveScript,
  scriptFromStdin,
  scriptThenInput,
  shellQuote,
  ClientTrustScriptInput,
  CLIENT_CERT_MARKER,
  CLIENT_KEY_MARKER,
} from "../lib/clientTrustScript";
import { registryEndpoints } from "../lib/endpoints";
import { makeTestCa, makeTestPki } from "./helpers/pki";
import { scratchDir } from "./helpers/scratch";

const endpoints = registryEndpoints(["192.0.2.10", "2001:db8::1"], ["registry.example.com"], 5443);
const variants = [false, true].map((trustOs) => ({ trustOs, input: { endpoints, trustOs, anchorName: "registry-test" } }));

/** One CA for every test here that needs one. */
let caPem: string | undefined;
function sharedCa(): string {
  caPem ??= makeTestCa(scratchDir("client-trust-ca-"));
  return caPem;
}

// Scripts run on this machine see only the tools they need for certs.d: no
// update-ca-certificates, update-ca-trust or sudo. A script that wrongly reached
// for the OS trust store fails here instead of changing this machine's.
const SCRATCH_TOOLS = ["sh", "mktemp", "cat", "grep", "install", "mv", "mkdir", "rm", "rmdir", "dirname", "awk"];
let scratchPath: string | undefined;
function toolsOnlyPath(): string {
  if (!scratchPath) {
    scratchPath = scratchDir("client-trust-bin-");
    for (const tool of SCRATCH_TOOLS) {
      const found = spawnSync("sh", ["-c", `command -v ${tool}`], { encoding: "utf8" }).stdout.trim();
      if (!found.startsWith("/")) throw new Error(`${tool} not found on this machine`);
      fs.symlinkSync(found, path.join(scratchPath, tool));
    }
  }
  return scratchPath;
}

function sh(script: string, stdin = "") {
  return spawnSync("sh", ["-c", script], { input: stdin, encoding: "utf8", env: { ...process.env, PATH: toolsOnlyPath() } });
}

describe("endpoints", () => {
  test("port 443 means the bare host; other ports are host:port; IPv6 in brackets", () => {
    expect(registryEndpoints(["192.0.2.10", "2001:db8::1"], ["registry.example.com"], 443)).toEqual([
      "192.0.2.10",
      "[2001:db8::1]",
      "registry.example.com",
    ]);
    expect(endpoints).toEqual(["192.0.2.10:5443", "[2001:db8::1]:5443", "registry.example.com:5443"]);
  });
});

describe.each(variants)("client trust scripts (trustOs: $trustOs)", ({ input }) => {
  const scripts = { install: renderInstallScript(input), remove: renderRemoveScript(input) };

  test.each(Object.keys(scripts))("%s script passes sh -n", (name) => {
    const result = spawnSync("sh", ["-n"], { input: scripts[name as keyof typeof scripts], encoding: "utf8" });
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
  });

  test.each(Object.keys(scripts))("%s script passes shellcheck", (name) => {
    const result = spawnSync("shellcheck", ["--shell=sh", "-"], { input: scripts[name as keyof typeof scripts], encoding: "utf8" });
    expect(result.stdout).toBe("");
    expect(result.status).toBe(0);
  });

  test("the wrapped command line passes shellcheck too", () => {
    const result = spawnSync("shellcheck", ["--shell=sh", "-"], { input: asCommand(scripts.install, true), encoding: "utf8" });
    expect(result.stdout).toBe("");
  });
});

describe("running the scripts against a scratch certs.d", () => {
  const dir = scratchDir("client-trust-");
  const certsDir = path.join(dir, "certs.d");
  const ca = sharedCa();
  const input = { endpoints, trustOs: false, anchorName: "registry-test", dockerCertsDir: certsDir };
  const install = asCommand(renderInstallScript(input), false);
  const remove = asCommand(renderRemoveScript(input), false);
  const installed = () => endpoints.map((e) => path.join(certsDir, e, "ca.crt"));

  test("install puts the CA where Docker looks for each endpoint", () => {
    const result = sh(install, ca);
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
    for (const file of installed()) {
      expect(fs.readFileSync(file, "utf8")).toBe(ca);
      expect(fs.statSync(file).mode & 0o777).toBe(0o644);
    }
    expect(fs.readdirSync(certsDir).sort()).toEqual([
      ".private-registry-created",
      "192.0.2.10:5443",
      "[2001:db8::1]:5443",
      "registry.example.com:5443",
    ]);
  });

  test("install twice is the same as once (no duplicates, no leftovers)", () => {
    expect(sh(install, ca).status).toBe(0);
    expect(sh(install, ca).status).toBe(0);
    for (const e of endpoints) expect(fs.readdirSync(path.join(certsDir, e))).toEqual(["ca.crt"]);
  });

  test("a new CA replaces the old one in place", () => {
    const newCa = makeTestCa(fs.mkdtempSync(path.join(dir, "other-")), "Next Test Registry CA");
    expect(sh(install, newCa).status).toBe(0);
    for (const file of installed()) expect(fs.readFileSync(file, "utf8")).toBe(newCa);
  });

  test("install refuses stdin that is not a certificate, and changes nothing", () => {
    const before = installed().map((f) => fs.readFileSync(f, "utf8"));
    const result = sh(install, "not a certificate");
    expect(result.status).toBe(1);
    expect(result.stderr).toContain("expected the CA certificate (PEM) on stdin");
    expect(installed().map((f) => fs.readFileSync(f, "utf8"))).toEqual(before);
  });

  test("remove deletes only ca.crt: a user's files beside it, and so their folder, stay", () => {
    const mine = path.join(certsDir, endpoints[0]);
    fs.writeFileSync(path.join(mine, "client.cert"), "the user's client certificate");
    fs.writeFileSync(path.join(mine, "mirror-ca.crt"), "the user's mirror CA");
    expect(sh(remove).status).toBe(0);
    expect(fs.readdirSync(mine).sort()).toEqual(["client.cert", "mirror-ca.crt"]);
    expect(fs.readFileSync(path.join(mine, "client.cert"), "utf8")).toBe("the user's client certificate");
    for (const e of endpoints.slice(1)) expect(fs.existsSync(path.join(certsDir, e))).toBe(false);
    fs.rmSync(mine, { recursive: true });
    expect(sh(install, ca).status).toBe(0);
  });

  test("remove deletes what install put there, and is safe to run again", () => {
    fs.mkdirSync(path.join(certsDir, "other.example.com"));
    fs.writeFileSync(path.join(certsDir, "other.example.com", "ca.crt"), "someone else's");
    const result = sh(remove);
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
    // The folder install created stays while someone else's files live in it (marker kept for them).
    expect(fs.readdirSync(certsDir).sort()).toEqual([".private-registry-created", "other.example.com"]);
    expect(fs.readFileSync(path.join(certsDir, "other.example.com", "ca.crt"), "utf8")).toBe("someone else's");
    expect(sh(remove).status).toBe(0);
    expect(fs.readdirSync(certsDir).sort()).toEqual([".private-registry-created", "other.example.com"]);
  });

  test("the CA is never on the command line", () => {
    expect(install).not.toContain(ca.split("\n")[1]);
  });
});

describe("verifyFromClients: after the install, a check of every endpoint from the host", () => {
  const ca = sharedCa();
  // Nothing listens here (loopback only): the check must fail and say where and why.
  const closed = spawnSync(
    process.execPath,
    ["-e", "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"],
    { encoding: "utf8" },
  ).stdout.trim();
  const input = { endpoints: [`127.0.0.1:${closed}`, `localhost:${closed}`], trustOs: false, anchorName: "registry-test" };

  test("the check script passes sh -n and shellcheck", () => {
    const script = renderCheckScript(input);
    expect(spawnSync("sh", ["-n"], { input: script, encoding: "utf8" }).status).toBe(0);
    const lint = spawnSync("shellcheck", ["--shell=sh", "-"], { input: script, encoding: "utf8" });
    expect(lint.stdout).toBe("");
    expect(lint.status).toBe(0);
  });

  test("an endpoint that does not answer fails the check in a few lines naming the URL and curl's reason, no script text; the installed files stay (the state records them)", () => {
    const certsDir = path.join(scratchDir("client-trust-verify-"), "certs.d");
    const installed = spawnSync("sh", ["-c", scriptFromStdin(false)], {
      input: scriptThenInput(renderInstallScript({ ...input, dockerCertsDir: certsDir }), ca),
      encoding: "utf8",
    });
    expect(installed.status).toBe(0);
    const result = spawnSync("sh", ["-c", scriptFromStdin(false)], {
      input: scriptThenInput(renderCheckScript({ ...input, dockerCertsDir: certsDir })),
      encoding: "utf8",
    });
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain(
      `private-registry: https://127.0.0.1:${closed}/v2/ does not answer from this host over TLS verified by the installed CA: curl: (7)`,
    );
    expect(result.stderr).toContain(`https://localhost:${closed}/v2/`);
    expect(`${result.stdout}${result.stderr}`.length).toBeLessThan(2000);
    expect(`${result.stdout}${result.stderr}`).not.toMatch(/headers=|for endpoint in/);
    expect(fs.readFileSync(path.join(certsDir, `127.0.0.1:${closed}`, "ca.crt"), "utf8")).toBe(ca);
  });

  test.each([
    [200, "auth off"],
    [404, "another service on the port"],
  ])("an endpoint that answers %s without credentials over verified TLS (%s) fails the check, naming the status", async (status) => {
    const dir = scratchDir("client-trust-open-");
    const pki = makeTestPki(dir, ["IP:127.0.0.1"]);
    const server = https.createServer({ cert: fs.readFileSync(pki.chain), key: fs.readFileSync(pki.key) }, (_req, res) => {
      res.writeHead(status, { "Docker-Distribution-Api-Version": "registry/2.0" });
      res.end("{}");
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const endpoint = `127.0.0.1:${(server.address() as AddressInfo).port}`;
      const certsDir = path.join(dir, "certs.d");
      fs.mkdirSync(path.join(certsDir, endpoint), { recursive: true });
      fs.copyFileSync(pki.caCert, path.join(certsDir, endpoint, "ca.crt"));
      // Run asynchronously: the server answers from this process.
      const child = spawn("sh", ["-c", scriptFromStdin(false)], { stdio: ["pipe", "pipe", "pipe"] });
      let out = "";
      child.stdout.on("data", (d) => {
        out += d;
      });
      child.stderr.on("data", (d) => {
        out += d;
      });
      child.stdin.end(
        scriptThenInput(
          renderCheckScript({ endpoints: [endpoint], trustOs: false, anchorName: "registry-test", dockerCertsDir: certsDir }),
        ),
      );
      const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
      expect(code).not.toBe(0);
      expect(out).toContain(`private-registry: https://${endpoint}/v2/ answers 'HTTP/1.1 ${status} `);
      expect(out).toContain("without credentials from this host, not 401");
    } finally {
      server.close();
    }
  });

  test("a host without curl is told so, with the way out", () => {
    const certsDir = path.join(scratchDir("client-trust-verify-"), "certs.d");
    const result = sh(asCommand(renderCheckScript({ ...input, dockerCertsDir: certsDir }), false));
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain(
      "private-registry: no curl on this host to check the registry from here; install curl, or set verifyFromClients to false",
    );
  });
});

describe("the scripts on stdin: a short command line reads the script, then the script reads the rest", () => {
  const ca = sharedCa();

  test("the reader passes shellcheck, and an empty stdin fails instead of doing nothing", () => {
    for (const sudo of [false, true]) {
      const lint = spawnSync("shellcheck", ["--shell=sh", "-"], { input: scriptFromStdin(sudo), encoding: "utf8" });
      expect(lint.stdout).toBe("");
    }
    const empty = spawnSync("sh", ["-c", scriptFromStdin(false)], { input: "", encoding: "utf8" });
    expect(empty.status).not.toBe(0);
    expect(empty.stderr).toContain("private-registry: no script on stdin");
  });

  test("the install through the reader writes the same files as the script run directly", () => {
    const viaReader = path.join(scratchDir("client-trust-stdin-"), "certs.d");
    const direct = path.join(scratchDir("client-trust-stdin-"), "certs.d");
    const input = { endpoints, trustOs: false, anchorName: "registry-test" };
    expect(sh(scriptFromStdin(false), scriptThenInput(renderInstallScript({ ...input, dockerCertsDir: viaReader }), ca)).status).toBe(0);
    expect(sh(asCommand(renderInstallScript({ ...input, dockerCertsDir: direct }), false), ca).status).toBe(0);
    expect(listTree(viaReader)).toEqual(listTree(direct));
    expect(listTree(viaReader)).toContain(`${endpoints[0]}/ca.crt`);
  });
});

/** Every path under dir (relative), with each file's content: a file-by-file picture of a folder. */
function listTree(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return (fs.readdirSync(dir, { recursive: true }) as string[])
    .sort()
    .map((rel) => {
      const full = path.join(dir, rel);
      return fs.statSync(full).isDirectory() ? `${rel}/` : `${rel} ${fs.readFileSync(full, "utf8").length}`;
    })
    .map((line) => line.replace(/ \d+$/, (n) => n))
    .map((line) => (line.endsWith("/") ? line : line.split(" ")[0]));
}

describe("an install that fails half way takes away what it created, and nothing else", () => {
  const ca = sharedCa();
  const input = { endpoints, trustOs: false, anchorName: "registry-test" };

  test("certs.d there before with a user's file; the second endpoint cannot be made: the folder is as it was", () => {
    const certsDir = path.join(scratchDir("client-trust-half-"), "certs.d");
    fs.mkdirSync(path.join(certsDir, "mine.example.com"), { recursive: true });
    fs.writeFileSync(path.join(certsDir, "mine.example.com", "ca.crt"), "a user's own CA\n");
    // A plain file where the second endpoint's folder would go: mkdir fails there.
    fs.writeFileSync(path.join(certsDir, endpoints[1]), "in the way\n");
    const before = listTree(certsDir);
    const result = sh(scriptFromStdin(false), scriptThenInput(renderInstallScript({ ...input, dockerCertsDir: certsDir }), ca));
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain("private-registry: the install failed; what it had created on this host is removed again");
    expect(listTree(certsDir)).toEqual(before);
    expect(fs.readFileSync(path.join(certsDir, "mine.example.com", "ca.crt"), "utf8")).toBe("a user's own CA\n");
  });

  test("no /etc/docker before, a read-only parent half way: nothing is left, not even the folders", () => {
    const root = scratchDir("client-trust-half-");
    const certsDir = path.join(root, "etc", "docker", "certs.d");
    // The install can make etc/docker/certs.d but not an endpoint inside: certs.d is made read-only by a stand-in mkdir.
    const bin = scratchDir("client-trust-bin-half-");
    for (const tool of fs.readdirSync(toolsOnlyPath()))
      fs.symlinkSync(fs.readlinkSync(path.join(toolsOnlyPath(), tool)), path.join(bin, tool));
    fs.rmSync(path.join(bin, "mkdir"));
    const realMkdir = spawnSync("sh", ["-c", "command -v mkdir"], { encoding: "utf8" }).stdout.trim();
    fs.writeFileSync(
      path.join(bin, "mkdir"),
      `#!/bin/sh\ncase "$*" in *${endpoints[2]}*) echo "mkdir: Read-only file system" >&2; exit 1 ;; esac\nexec ${realMkdir} "$@"\n`,
      { mode: 0o755 },
    );
    const result = spawnSync("sh", ["-c", scriptFromStdin(false)], {
      input: scriptThenInput(renderInstallScript({ ...input, dockerCertsDir: certsDir }), ca),
      encoding: "utf8",
      env: { ...process.env, PATH: bin },
    });
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain("Read-only file system");
    expect(fs.readdirSync(root)).toEqual([]);
  });
});

describe("clientCertificates: the host's certificate and key go beside ca.crt, where Docker looks", () => {
  const dir = scratchDir("client-trust-mtls-");
  const certsDir = path.join(dir, "certs.d");
  const input = { endpoints, trustOs: false, anchorName: "registry-test", dockerCertsDir: certsDir, clientCertificate: true };
  const ca = sharedCa();
  const clientCert = makeTestCa(scratchDir("client-trust-mtls-cert-"), "client 198.51.100.21");
  spawnSync("openssl", ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path.join(dir, "client.key")]);
  const clientKey = fs.readFileSync(path.join(dir, "client.key"), "utf8");
  const stdin = `${ca}${CLIENT_CERT_MARKER}\n${clientCert}${CLIENT_KEY_MARKER}\n${clientKey}`;

  test.each(["install", "remove"])("the %s script passes shellcheck", (name) => {
    const script = name === "install" ? renderInstallScript(input) : renderRemoveScript(input);
    const lint = spawnSync("shellcheck", ["--shell=sh", "-"], { input: script, encoding: "utf8" });
    expect(lint.stdout).toBe("");
  });

  test("install writes ca.crt (0644), client.cert (0644) and client.key (0600) for every endpoint; the key is never on the command line", () => {
    const install = asCommand(renderInstallScript(input), false);
    expect(install).not.toContain("PRIVATE KEY-----\n");
    const result = spawnSync("sh", ["-c", install], { input: stdin, encoding: "utf8" });
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
    for (const e of endpoints) {
      const file = (n: string) => path.join(certsDir, e, n);
      expect(fs.readFileSync(file("ca.crt"), "utf8")).toBe(ca);
      expect(fs.readFileSync(file("client.cert"), "utf8")).toBe(clientCert);
      expect(fs.readFileSync(file("client.key"), "utf8")).toBe(clientKey);
      expect([file("ca.crt"), file("client.cert"), file("client.key")].map((f) => fs.statSync(f).mode & 0o777)).toEqual([
        0o644, 0o644, 0o600,
      ]);
    }
  });

  test("install refuses a stdin without the host's certificate and key", () => {
    const result = spawnSync("sh", ["-c", asCommand(renderInstallScript(input), false)], { input: ca, encoding: "utf8" });
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain("expected this host's client certificate and key on stdin after the CA");
  });

  test("remove takes the three files away, and the folders it made", () => {
    const result = spawnSync("sh", ["-c", asCommand(renderRemoveScript(input), false)], { encoding: "utf8" });
    expect(result.status).toBe(0);
    expect(fs.existsSync(certsDir)).toBe(false);
  });
});

describe("folders the install created go with the last remove, and only those", () => {
  const ca = sharedCa();
  const MARKER = ".private-registry-created";

  /** A scratch root with an etc/ folder; the scripts' certs dir is <root>/etc/docker/certs.d. */
  function scratch() {
    const root = scratchDir("client-trust-host-");
    fs.mkdirSync(path.join(root, "etc"));
    return { etc: path.join(root, "etc"), docker: path.join(root, "etc", "docker"), certsDir: path.join(root, "etc", "docker", "certs.d") };
  }
  function scriptsFor(certsDir: string, eps: string[] = endpoints) {
    const input: ClientTrustScriptInput = { endpoints: eps, trustOs: false, anchorName: "registry-test", dockerCertsDir: certsDir };
    return { install: asCommand(renderInstallScript(input), false), remove: asCommand(renderRemoveScript(input), false) };
  }
  function ok(command: string, stdin = "") {
    const result = sh(command, stdin);
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
  }

  test("no /etc/docker before: install creates certs.d and its parent, remove leaves nothing behind", () => {
    const host = scratch();
    const { install, remove } = scriptsFor(host.certsDir);
    ok(install, ca);
    ok(install, ca);
    for (const e of endpoints) expect(fs.readFileSync(path.join(host.certsDir, e, "ca.crt"), "utf8")).toBe(ca);
    ok(remove);
    expect(fs.readdirSync(host.etc)).toEqual([]);
    ok(remove);
    expect(fs.readdirSync(host.etc)).toEqual([]);
  });

  test("/etc/docker there before (daemon.json), certs.d not: remove takes certs.d only", () => {
    const host = scratch();
    fs.mkdirSync(host.docker);
    fs.writeFileSync(path.join(host.docker, "daemon.json"), "{}\n");
    const { install, remove } = scriptsFor(host.certsDir);
    ok(install, ca);
    ok(remove);
    expect(fs.readdirSync(host.docker)).toEqual(["daemon.json"]);
  });

  test("a certs.d that existed before install survives remove, with nothing of ours left in it", () => {
    const host = scratch();
    fs.mkdirSync(host.certsDir, { recursive: true });
    const { install, remove } = scriptsFor(host.certsDir);
    ok(install, ca);
    expect(fs.readdirSync(host.certsDir).sort()).toEqual([...endpoints].sort());
    ok(remove);
    expect(fs.readdirSync(host.certsDir)).toEqual([]);
    expect(fs.readdirSync(host.docker)).toEqual(["certs.d"]);
  });

  test.each([
    ["the first installed is removed first", false],
    ["the last installed is removed first", true],
  ])("two stacks on one host (%s): the created folders stay for the other, then go with the last", (_what, reverse) => {
    const host = scratch();
    const stacks = [scriptsFor(host.certsDir, ["a.example.com"]), scriptsFor(host.certsDir, ["b.example.com:5443"])];
    for (const s of stacks) ok(s.install, ca);
    const [first, last] = reverse ? [stacks[1], stacks[0]] : stacks;
    const lastEndpoint = reverse ? "a.example.com" : "b.example.com:5443";
    ok(first.remove);
    expect(fs.readdirSync(host.certsDir).sort()).toEqual([MARKER, lastEndpoint]);
    expect(fs.readFileSync(path.join(host.certsDir, lastEndpoint, "ca.crt"), "utf8")).toBe(ca);
    ok(last.remove);
    expect(fs.readdirSync(host.etc)).toEqual([]);
  });
});

describe("shellQuote", () => {
  test("round-trips quotes and spaces through sh", () => {
    const value = `it's a "test" $HOME \\ end`;
    expect(sh(`printf '%s' ${shellQuote(value)}`).stdout).toBe(value);
  });
});
