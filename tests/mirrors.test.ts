// Pull-through mirrors without an engine: the settings, the layout they make, nginx's
// config through the real nginx, and the client script against scratch folders with
// the real sh and jq (a fake dockerd process stands in for the reload).
import { spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { parseSettings } from "../lib/settings";
import { argsFromSettings } from "../lib/registryArgs";
import { mirrorLayout, renderHostsToml, renderRegistriesConf, upstreamServer } from "../lib/mirrors";
import { renderNginxConf } from "../lib/nginxConf";
import { renderRegistryConfig } from "../lib/registryConfig";
import { ClientMirrorScriptInput, renderMirrorInstallScript, renderMirrorRemoveScript } from "../lib/clientMirrorScript";
import { makeTestPki } from "./helpers/pki";
import { scratchDir } from "./helpers/scratch";

const parse = (raw: Record<string, string>, secretKeys: string[] = []) => parseSettings(raw, "private-registry", "dev", secretKeys);
function messageFor(raw: Record<string, string>, secretKeys: string[] = []): string {
  try {
    parse(raw, secretKeys);
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error("no error");
}
const CA = "-----BEGIN CERTIFICATE-----\nMIIBca\n-----END CERTIFICATE-----\n";
const HUB = { upstream: "https://registry-1.docker.io", port: 5001, anonymousPull: true };
const VENDOR = { upstream: "https://vendor.example.com:5000", port: 5002, username: "puller", password: "s3cret-upstream-pw", ca: CA };

describe("the mirrors setting", () => {
  test("each mirror's name comes from its upstream (docker.io for Docker Hub), credentials stay secrets, defaults filled", () => {
    const s = parse({ mirrors: JSON.stringify([HUB, VENDOR]) }, ["mirrors"]);
    expect(s.mirrors.map((m) => [m.name, m.upstream, m.port, m.username, m.anonymousPull])).toEqual([
      ["docker.io", "https://registry-1.docker.io", 5001, "", true],
      ["vendor.example.com:5000", "https://vendor.example.com:5000", 5002, "puller", false],
    ]);
    expect(s.mirrors[0].password).toBeUndefined();
    expect(s.mirrors[1].ca).toBe(CA);
    const args = argsFromSettings(s);
    expect(args.proxy?.mirrors?.map((m) => [m.name, m.credentials?.username, m.upstreamCaPem === CA])).toEqual([
      ["docker.io", undefined, false],
      ["vendor.example.com:5000", "puller", true],
    ]);
  });

  test("a name of one's own: a stand-in upstream serving Docker Hub's names", () => {
    const s = parse({ mirrors: JSON.stringify([{ upstream: "https://hub-cache.example.com", name: "docker.io", port: 5001 }]) });
    expect(s.mirrors[0].name).toBe("docker.io");
  });

  test.each([
    [{ port: 5001 }, /mirrors\[0\]\.upstream" = "\(missing\)": must be the upstream registry's https:\/\/host\[:port\]/],
    [
      { upstream: "http://plain.example.com", port: 5001 },
      /mirrors\[0\]\.upstream" = "http:\/\/plain.example.com": .*plain-HTTP registry is refused/,
    ],
    [{ upstream: "https://example.com/v2/", port: 5001 }, /without a path/],
    [{ upstream: "https://example.com" }, /mirrors\[0\]\.port" = "\(missing\)": is required/],
    [{ upstream: "https://example.com", port: 443 }, /mirrors\[0\]\.port" = 443: is taken by port \(the registry's\)/],
    [{ upstream: "https://example.com", port: 70000 }, /from 1 to 65535/],
    [{ upstream: "https://example.com", port: 5001, anonymousPull: "yes" }, /anonymousPull" = "yes": must be true or false/],
    [{ upstream: "https://example.com", port: 5001, remoteUrl: "x" }, /mirrors\[0\]\.remoteUrl" = "\[value hidden\]": unknown setting/],
    [{ upstream: "https://example.com", port: 5001, name: "not a name" }, /mirrors\[0\]\.name" = "not a name": must be a registry name/],
    [{ upstream: "https://example.com", port: 5001, ca: "nope" }, /mirrors\[0\]\.ca" = "\[hidden\]": must be PEM certificates/],
  ])("one clear message for %j", (mirror, message) => {
    expect(messageFor({ mirrors: JSON.stringify([mirror]) })).toMatch(message);
  });

  test("two mirrors of one upstream, or on one port, are refused", () => {
    expect(messageFor({ mirrors: JSON.stringify([HUB, { ...HUB, port: 5003 }]) })).toMatch(
      /mirrors\[1\]\.name" = "docker.io": is mirrored already by mirrors\[0\]/,
    );
    expect(messageFor({ mirrors: JSON.stringify([HUB, { ...VENDOR, port: 5001 }]) }, ["mirrors"])).toMatch(
      /mirrors\[1\]\.port" = 5001: is taken by mirrors\[0\]/,
    );
  });

  test("the upstream's password must be a secret, goes with a username, and is never shown", () => {
    const plain = messageFor({ mirrors: JSON.stringify([VENDOR]) });
    expect(plain).toMatch(/mirrors\[0\]\.password" = "\[hidden\]": must be a secret/);
    expect(plain).not.toContain("s3cret-upstream-pw");
    const alone = messageFor({ mirrors: JSON.stringify([{ ...VENDOR, username: "" }]) }, ["mirrors"]);
    expect(alone).toMatch(/mirrors\[0\]\.username" = "\(missing\)": the upstream's username and password go together/);
    expect(alone).not.toContain("s3cret-upstream-pw");
  });

  test("the registry layout cannot have mirrors", () => {
    expect(messageFor({ tlsTermination: "registry", mirrors: JSON.stringify([HUB]) })).toMatch(
      /"private-registry:mirrors" = \["docker.io"\]: need tlsTermination "proxy"/,
    );
  });
});

describe("the mirror layout", () => {
  test("endpoints per mirror; Docker daemons get the docker.io mirror only when it asks no password", () => {
    const open = mirrorLayout([{ name: "docker.io", port: 5001, anonymousPull: true }], false, ["192.0.2.10"], ["registry.example.com"]);
    expect(open.mirrors[0].endpoints).toEqual(["192.0.2.10:5001", "registry.example.com:5001"]);
    expect(open.dockerMirrorEndpoints).toEqual(open.mirrors[0].endpoints);
    expect(open.openEndpoints).toEqual(open.mirrors[0].endpoints);
    expect(open.dockerNote).toBeUndefined();

    const locked = mirrorLayout([{ name: "docker.io", port: 5001, anonymousPull: false }], false, ["192.0.2.10"], []);
    expect(locked.dockerMirrorEndpoints).toEqual([]);
    expect(locked.passwordEndpoints).toEqual(["192.0.2.10:5001"]);
    expect(locked.dockerNote).toMatch(/never send one to a mirror/);

    // Mutual TLS: the certificate is the login, so Docker can use it.
    const mtls = mirrorLayout([{ name: "docker.io", port: 5001, anonymousPull: false }], true, ["192.0.2.10"], []);
    expect(mtls.mirrors[0].access).toBe("certificate");
    expect(mtls.dockerMirrorEndpoints).toEqual(["192.0.2.10:5001"]);
  });

  test("containerd's hosts.toml and the registries.conf.d drop-in name the upstream and try the mirror first", () => {
    const hosts = renderHostsToml({ name: "docker.io", endpoints: ["192.0.2.10:5001"] }, "/etc/docker/certs.d", true, "registry-dev");
    expect(hosts).toContain('server = "https://registry-1.docker.io"');
    expect(hosts).toContain(
      '[host."https://192.0.2.10:5001"]\n  capabilities = ["pull", "resolve"]\n  ca = "/etc/docker/certs.d/192.0.2.10:5001/ca.crt"',
    );
    expect(hosts).toContain(
      'client = [["/etc/docker/certs.d/192.0.2.10:5001/client.cert", "/etc/docker/certs.d/192.0.2.10:5001/client.key"]]',
    );
    expect(upstreamServer("vendor.example.com:5000")).toBe("https://vendor.example.com:5000");
    const conf = renderRegistriesConf(
      [{ name: "vendor.example.com:5000", endpoints: ["192.0.2.10:5002", "registry.example.com:5002"] }],
      "x",
    );
    expect(conf).toContain(
      '[[registry]]\nprefix = "vendor.example.com:5000"\nlocation = "vendor.example.com:5000"\n\n[[registry.mirror]]\nlocation = "192.0.2.10:5002"\n\n[[registry.mirror]]\nlocation = "registry.example.com:5002"\n',
    );
  });

  test("the mirror's registry config: proxy mode with the upstream's credentials", () => {
    const config = renderRegistryConfig({
      httpSecret: "s",
      listen: { net: "unix", addr: "/run/registry/mirror-docker.io.sock" },
      dataDir: "/var/lib/registry",
      deleteEnabled: false,
      proxy: { remoteurl: "https://vendor.example.com:5000", username: "puller", password: "pw" },
    });
    expect(config).toContain('proxy:\n  remoteurl: "https://vendor.example.com:5000"\n  username: "puller"\n  password: "pw"\n');
  });

  test("nginx takes the config with a server per mirror (real nginx -t)", () => {
    const dir = scratchDir("mirror-nginx");
    const pki = makeTestPki(dir, ["DNS:registry.example.com"]);
    const conf = renderNginxConf({
      serverNames: ["registry.example.com", "192.0.2.10"],
      upstream: "unix:/run/registry/registry.sock",
      listenPort: 8443,
      certificatePath: pki.chain,
      privateKeyPath: pki.key,
      usersDirectory: dir,
      pidPath: path.join(dir, "nginx.pid"),
      accessLogPath: path.join(dir, "access.log"),
      mirrors: [
        { name: "docker.io", listenPort: 8444, upstream: "unix:/run/registry/mirror-docker.io.sock", access: "anyone" },
        { name: "vendor.example.com:5000", listenPort: 8445, upstream: "unix:/run/registry/m2.sock", access: "users" },
      ],
    });
    fs.writeFileSync(path.join(dir, "nginx.conf"), conf);
    const nginx = ["/usr/sbin/nginx", "/usr/bin/nginx"].find((p) => fs.existsSync(p)) ?? "nginx";
    const t = spawnSync(nginx, ["-t", "-q", "-c", path.join(dir, "nginx.conf"), "-e", "stderr"], { encoding: "utf8" });
    expect(t.stderr).toBe("");
    expect(t.status).toBe(0);
    expect(conf).toContain("read-only mirror of vendor.example.com:5000: pushes go to the registry itself");
    // The open mirror asks no password; the other does.
    const servers = conf.split("# Pull-through mirror of ");
    expect(servers[1]).not.toContain("auth_basic_user_file");
    expect(servers[2]).toContain("auth_basic_user_file");
  });
});

describe("the client script (scratch folders, real sh and jq)", () => {
  function setUp(dockerMirrorEndpoints: string[] = ["192.0.2.10:5001"]) {
    const root = scratchDir("mirror-client");
    const paths = {
      stateRoot: path.join(root, "var/lib/private-registry"),
      dockerCertsDir: "/etc/docker/certs.d",
      dockerConfig: path.join(root, "etc/docker/daemon.json"),
      dockerd: `fkdockerd${process.pid % 100000}`,
      dockerCli: "no-docker-cli-here",
      containerdDir: path.join(root, "etc/containerd"),
      containersDir: path.join(root, "etc/containers"),
    };
    const input: ClientMirrorScriptInput = {
      anchorName: "registry-dev",
      mirrors: [
        { name: "docker.io", endpoints: ["192.0.2.10:5001"] },
        { name: "vendor.example.com:5000", endpoints: ["192.0.2.10:5002"] },
      ],
      dockerMirrorEndpoints,
      clientCertificate: false,
      paths,
    };
    // Docker is found by its command on PATH (a running one by its process name, below).
    const bin = scratchDir("fake-bin");
    fs.writeFileSync(path.join(bin, paths.dockerd), "#!/bin/sh\n", { mode: 0o755 });
    const run = (script: string, env: NodeJS.ProcessEnv = { PATH: `${bin}:${process.env.PATH}` }) =>
      spawnSync("sh", ["-c", script], { encoding: "utf8", env: { ...process.env, ...env } });
    return { root, paths, input, run };
  }

  test("the scripts pass sh -n and shellcheck", () => {
    const { input } = setUp();
    for (const script of [renderMirrorInstallScript(input), renderMirrorRemoveScript(input)]) {
      expect(spawnSync("sh", ["-n"], { input: script, encoding: "utf8" }).status).toBe(0);
      const lint = spawnSync("shellcheck", ["--shell=sh", "-"], { input: script, encoding: "utf8" });
      expect(lint.stdout).toBe("");
    }
  });

  test("daemon.json merged keeping every key, files per runtime, and destroy puts each back byte for byte", () => {
    const { paths, input, run } = setUp();
    fs.mkdirSync(path.dirname(paths.dockerConfig), { recursive: true });
    // An odd but valid daemon.json: its bytes (spacing, key order, a mirror of its own) must come back exactly.
    const original = '{"log-driver":"json-file",   "registry-mirrors": ["https://mirror.example.com"],\n"debug": true}\n';
    fs.writeFileSync(paths.dockerConfig, original, { mode: 0o640 });
    fs.mkdirSync(path.join(paths.containerdDir, "certs.d/docker.io"), { recursive: true });
    const theirHosts = 'server = "https://registry-1.docker.io"\n# theirs\n';
    fs.writeFileSync(path.join(paths.containerdDir, "certs.d/docker.io/hosts.toml"), theirHosts);
    fs.mkdirSync(paths.containersDir, { recursive: true });

    // A process named like dockerd that records SIGHUP: the reload.
    const fakeDir = scratchDir("fake-dockerd");
    const fake = path.join(fakeDir, paths.dockerd);
    fs.writeFileSync(fake, `#!/bin/sh\ntrap 'echo hup >>${fakeDir}/hups' HUP\nwhile :; do sleep 0.1; done\n`, { mode: 0o755 });
    const dockerd = spawn(fake, [], { stdio: "ignore" });
    try {
      const installed = run(renderMirrorInstallScript(input));
      expect(installed.stderr).toBe("");
      expect(installed.status).toBe(0);
      const merged = JSON.parse(fs.readFileSync(paths.dockerConfig, "utf8"));
      expect(merged).toEqual({
        "log-driver": "json-file",
        "registry-mirrors": ["https://192.0.2.10:5001", "https://mirror.example.com"],
        debug: true,
      });
      expect(fs.statSync(paths.dockerConfig).mode & 0o777).toBe(0o640);
      expect(fs.readFileSync(path.join(paths.containerdDir, "certs.d/docker.io/hosts.toml"), "utf8")).toContain(
        '[host."https://192.0.2.10:5001"]',
      );
      expect(fs.readFileSync(path.join(paths.containerdDir, "certs.d/vendor.example.com:5000/hosts.toml"), "utf8")).toContain(
        'server = "https://vendor.example.com:5000"',
      );
      expect(fs.readFileSync(path.join(paths.containersDir, "registries.conf.d/50-registry-dev-mirrors.conf"), "utf8")).toContain(
        'location = "192.0.2.10:5002"',
      );
      // The signal is handled between the fake's sleeps.
      for (let i = 0; i < 20 && !fs.existsSync(path.join(fakeDir, "hups")); i++) spawnSync("sleep", ["0.1"]);
      expect(fs.readFileSync(path.join(fakeDir, "hups"), "utf8")).toBe("hup\n");

      // Again (an update): the same files, nothing doubled.
      expect(run(renderMirrorInstallScript(input)).status).toBe(0);
      expect(JSON.parse(fs.readFileSync(paths.dockerConfig, "utf8"))["registry-mirrors"]).toEqual([
        "https://192.0.2.10:5001",
        "https://mirror.example.com",
      ]);

      const removed = run(renderMirrorRemoveScript(input));
      expect(removed.status).toBe(0);
      expect(fs.readFileSync(paths.dockerConfig, "utf8")).toBe(original);
      expect(fs.statSync(paths.dockerConfig).mode & 0o777).toBe(0o640);
      expect(fs.readFileSync(path.join(paths.containerdDir, "certs.d/docker.io/hosts.toml"), "utf8")).toBe(theirHosts);
      expect(fs.existsSync(path.join(paths.containerdDir, "certs.d/vendor.example.com:5000"))).toBe(false);
      expect(fs.readdirSync(paths.containersDir)).toEqual([]);
      expect(fs.existsSync(paths.stateRoot)).toBe(false);
      // Twice is harmless.
      expect(run(renderMirrorRemoveScript(input)).status).toBe(0);
    } finally {
      dockerd.kill("SIGKILL");
    }
  });

  test("a daemon.json changed since the deploy loses only this stack's mirrors", () => {
    const { paths, input, run } = setUp();
    fs.mkdirSync(path.dirname(paths.dockerConfig), { recursive: true });
    fs.writeFileSync(paths.dockerConfig, "{}\n");
    expect(run(renderMirrorInstallScript(input)).status).toBe(0);
    const now = JSON.parse(fs.readFileSync(paths.dockerConfig, "utf8"));
    fs.writeFileSync(paths.dockerConfig, JSON.stringify({ ...now, "max-concurrent-downloads": 5 }));
    const removed = run(renderMirrorRemoveScript(input));
    expect(removed.stdout).toMatch(/changed since this stack wrote it: only this stack's registry-mirrors taken out/);
    expect(JSON.parse(fs.readFileSync(paths.dockerConfig, "utf8"))).toEqual({ "max-concurrent-downloads": 5 });
  });

  test("a daemon.json that is not JSON is refused in one line, and nothing is left behind", () => {
    const { paths, input, run } = setUp();
    fs.mkdirSync(path.dirname(paths.dockerConfig), { recursive: true });
    fs.writeFileSync(paths.dockerConfig, "{ not json");
    fs.mkdirSync(paths.containersDir, { recursive: true });
    const failed = run(renderMirrorInstallScript(input));
    expect(failed.status).not.toBe(0);
    expect(failed.stderr).toMatch(/daemon.json is not a JSON object; it is left alone/);
    expect(fs.readFileSync(paths.dockerConfig, "utf8")).toBe("{ not json");
    expect(fs.readdirSync(paths.containersDir)).toEqual([]);
    expect(fs.existsSync(paths.stateRoot)).toBe(false);
  });

  test("no runtime on the host: said, nothing written", () => {
    const { paths, input, run } = setUp();
    const noDocker = { PATH: process.env.PATH };
    const out = run(renderMirrorInstallScript(input), noDocker);
    expect(out.status).toBe(0);
    expect(out.stdout).toMatch(/no Docker, containerd or containers configuration on this host/);
    expect(fs.existsSync(paths.dockerConfig)).toBe(false);
    expect(run(renderMirrorRemoveScript(input)).status).toBe(0);
    expect(fs.existsSync(paths.stateRoot)).toBe(false);
  });
});
