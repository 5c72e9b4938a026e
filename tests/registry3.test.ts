// distribution v3 (registry:3) as the registry image, deployed for real in both layouts
// on one stack: the real Pulumi engine (Automation API, file backend in a temporary
// folder), the real providers, the local v3 image built from the Go module
// (private-registry/registry:3.1.1-debian, which reads /etc/distribution/config.yml as
// registry:3 does) and the local nginx image. A container of the ssh-client-host image
// (skopeo) on this test's own network is the client; it dials the network's host side
// (outside 127.0.0.0/8, so TLS is really verified with the CA).
// Then the guard: v3 started with the rendered config but no htpasswd makes itself a
// user "docker" and logs its password; the program's health check never calls that
// healthy. Debian's 2.8.2 does the same (the fallback is older than v3), so both majors
// are checked.
// Traffic goes only to this test's network's host address and its own containers.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as https from "https";
import * as crypto from "crypto";
import { execFileSync, spawnSync } from "child_process";
import { LocalWorkspace, Stack, ConfigMap } from "@pulumi/pulumi/automation";
import { setAllConfigSafely } from "./helpers/config";
import { docker, dockerQuiet, containerSh, planRecorder, ShResult, Plan, copyTinyImageInto } from "./helpers/e2e";
import { makeTestPki } from "./helpers/pki";
import {
  REGISTRY3_CONFIG_PATH, REGISTRY_CONFIG_PATH, REGISTRY_TLS_PATHS, htpasswdDigestLine, registryHealthTest, renderRegistryConfig,
} from "../lib/registryConfig";

jest.setTimeout(600_000);

const projectDir = path.join(__dirname, "..");
const id = `v3${process.pid % 100000}`;
const SUBNET = "10.251.61.0/24";
const GATEWAY = "10.251.61.1"; // the host's side of the test network: the registry's address
const CLIENT_IP = "10.251.61.21";
const PORT = 19543;
const ENDPOINT = `${GATEWAY}:${PORT}`;
const REGISTRY3_IMAGE = "private-registry/registry:3.1.1-debian";
const REGISTRY2_IMAGE = "private-registry/registry:2.8.2-debian";
const NGINX_IMAGE = "private-registry/nginx:1.22.1-debian";
const CLIENT_IMAGE = "private-registry/ssh-client-host:bookworm";
const REPO = `${ENDPOINT}/v3/tiny:1`;
const clientName = `${id}-client`;
const names = { registry: `${id}-registry`, proxy: `${id}-nginx`, network: `${id}-net`, volume: `${id}-data` };

const workDir = fs.mkdtempSync(path.join(os.tmpdir(), "registry3-test-"));
const stateDir = path.join(workDir, "state");
fs.mkdirSync(stateDir);
const env: Record<string, string> = {
  PULUMI_BACKEND_URL: `file://${stateDir}`,
  PULUMI_CONFIG_PASSPHRASE: crypto.randomBytes(16).toString("hex"),
  PULUMI_SKIP_UPDATE_CHECK: "true",
  PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
};

let stack: Stack | undefined;
let password = "";
let caPem = "";
let pushedDigest = "";
let destroyed = false;

const client = (script: string, stdin = ""): ShResult => containerSh(clientName, script, stdin);
const logsOf = (container: string): string => {
  const r = spawnSync("docker", ["logs", container], { encoding: "utf8" });
  return `${r.stdout}${r.stderr}`;
};
const health = (container: string): string => docker("inspect", "--format", "{{if .State.Health}}{{.State.Health.Status}}{{end}}", container);

function httpsGet(pathName: string, auth?: string): Promise<{ status: number; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    https.get({ host: GATEWAY, port: PORT, path: pathName, ca: caPem, agent: false,
      headers: auth ? { Authorization: `Basic ${Buffer.from(auth).toString("base64")}` } : {} }, (res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0, headers: res.headers });
    }).on("error", reject);
  });
}

/** Containers, networks and volumes named like this test's (this run's or a killed earlier one's). */
function removeLeftovers(pattern: RegExp): void {
  const matching = (...args: string[]) => docker(...args).split("\n").filter((n) => pattern.test(n));
  const containers = matching("ps", "-a", "--format", "{{.Names}}");
  if (containers.length) dockerQuiet("rm", "-f", "-v", ...containers);
  for (const network of matching("network", "ls", "--format", "{{.Name}}")) dockerQuiet("network", "rm", network);
  for (const volume of matching("volume", "ls", "--format", "{{.Name}}")) dockerQuiet("volume", "rm", volume);
  for (const file of fs.readdirSync(projectDir)) {
    if (/^Pulumi\.v3[0-9]+\.yaml$/.test(file) && pattern.test(file.slice("Pulumi.".length))) fs.rmSync(path.join(projectDir, file));
  }
}

function config(tlsTermination: "registry" | "proxy"): ConfigMap {
  const c = (value: string) => ({ value, secret: false });
  return {
    "private-registry:tlsTermination": c(tlsTermination),
    "private-registry:ipAddresses[0]": c(GATEWAY),
    "private-registry:port": c(String(PORT)),
    "private-registry:listenAddress": c(GATEWAY),
    "private-registry:users[0]": c("admin"),
    "private-registry:rsaBits": c("2048"),
    "private-registry:registryImage": c(REGISTRY3_IMAGE),
    "private-registry:nginxImage": c(NGINX_IMAGE),
    "private-registry:pullImages": c("false"),
    "private-registry:namePrefix": c(id),
    "private-registry:keepDataOnDestroy": c("false"),
  };
}

async function up(): Promise<Plan> {
  const recorder = planRecorder();
  await stack!.up({ onEvent: recorder.onEvent });
  return recorder.plan();
}

/** The digest the client pulls (a full copy, then the manifest's digest), verifying TLS with the CA in certs.d. */
function pulledDigest(): string {
  const r = client(`rm -rf /tmp/pulled && skopeo copy docker://${REPO} oci:/tmp/pulled:tiny >/dev/null && ` +
    `skopeo inspect --format '{{.Digest}}' docker://${REPO}`);
  expect(r).toEqual({ status: 0, out: expect.stringMatching(/^sha256:[0-9a-f]{64}\n$/) });
  return r.out.trim();
}

/** What a v3 registry's log must (not) say after a deploy: its version, and no fallback user, no trace exporter. */
function expectCleanV3Log(): void {
  const logs = logsOf(names.registry);
  expect(logs).toContain("version=v3.1.1");
  expect(logs).not.toContain("htpasswd is missing");
  expect(logs).not.toMatch(/4318|otlp|traces export/i);
}

beforeAll(async () => {
  for (const image of [REGISTRY3_IMAGE, REGISTRY2_IMAGE, NGINX_IMAGE, CLIENT_IMAGE]) {
    if (spawnSync("docker", ["image", "inspect", image], { stdio: "ignore" }).status !== 0) {
      throw new Error(`${image} is missing: run scripts/build-local-images.sh`);
    }
  }
  removeLeftovers(/^v3[0-9]+-/);
  docker("network", "create", "--subnet", SUBNET, "--gateway", GATEWAY, `${id}-clients`);
  docker("run", "-d", "--name", clientName, "--network", `${id}-clients`, "--ip", CLIENT_IP, "--entrypoint", "sleep", CLIENT_IMAGE, "infinity");
  copyTinyImageInto(clientName, workDir, id);

  stack = await LocalWorkspace.createStack({ stackName: id, workDir: projectDir }, { envVars: env });
  await setAllConfigSafely(stack, config("registry"), true);
});

afterAll(async () => {
  if (stack && !destroyed) await stack.destroy().catch(() => undefined);
  if (stack) await stack.workspace.removeStack(id, { force: true }).catch(() => undefined);
  removeLeftovers(new RegExp(`^${id}-`));
  fs.rmSync(path.join(projectDir, `Pulumi.${id}.yaml`), { force: true });
  fs.rmSync(workDir, { recursive: true, force: true });
});

describe("registry:3 with tlsTermination: registry", () => {
  test("up: v3 reads the rendered config (TLS, htpasswd) and turns healthy, with no generated user", async () => {
    await up();
    const outputs = await stack!.outputs();
    password = outputs.credentials.value.admin;
    caPem = outputs.caCertPem.value;
    expect(health(names.registry)).toBe("healthy");
    // The same file at registry:2's and registry:3's paths; the htpasswd digest beside the htpasswd.
    const files = containerSh(names.registry,
      `cmp ${REGISTRY_CONFIG_PATH} ${REGISTRY3_CONFIG_PATH} && stat -c '%a %n' ${REGISTRY3_CONFIG_PATH} ${REGISTRY_TLS_PATHS.htpasswdDigest} && ` +
      `sha256sum -c ${REGISTRY_TLS_PATHS.htpasswdDigest}`);
    expect(files).toEqual({ status: 0, out: `600 ${REGISTRY3_CONFIG_PATH}\n600 ${REGISTRY_TLS_PATHS.htpasswdDigest}\n${REGISTRY_TLS_PATHS.htpasswd}: OK\n` });
    expectCleanV3Log();
    expect(logsOf(names.registry)).toContain("restricting TLS version to tls1.2 or higher");
  });

  test("TLS verifies with the CA; 401 without credentials, 200 with them", async () => {
    const anonymous = await httpsGet("/v2/");
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers["www-authenticate"]).toBe('Basic realm="Registry realm"');
    expect((await httpsGet("/v2/", `docker:${password}`)).status).toBe(401);
    expect((await httpsGet("/v2/", `admin:${password}`)).status).toBe(200);
  });

  test("skopeo with the CA in certs.d pushes and pulls the same digest", () => {
    expect(client(`mkdir -p /etc/docker/certs.d/${ENDPOINT} && cat >/etc/docker/certs.d/${ENDPOINT}/ca.crt`, caPem).status).toBe(0);
    expect(client(`skopeo login --username admin --password-stdin ${ENDPOINT}`, password)).toEqual({ status: 0, out: expect.stringContaining("Login Succeeded") });
    const push = client(`skopeo copy --digestfile /tmp/digest docker-archive:/tmp/tiny.tar docker://${REPO} >/dev/null && cat /tmp/digest`);
    expect(push).toEqual({ status: 0, out: expect.stringMatching(/^sha256:[0-9a-f]{64}$/) });
    pushedDigest = push.out;
    expect(pulledDigest()).toBe(pushedDigest);
  });

  test("`npm run gc` works with v3 (the collector in a one-off container of the image), and the image still pulls", () => {
    const gc = spawnSync("npm", ["run", "--silent", "gc", "--", "--stack", id], {
      cwd: projectDir, env: { ...process.env, ...env }, encoding: "utf8", timeout: 300_000,
    });
    expect(gc.stderr).toMatch(/blobs marked, \d+ blobs and \d+ manifests eligible for deletion/);
    expect(gc.stderr).toContain("the registry is serving again");
    expect(gc.status).toBe(0);
    expect(health(names.registry)).toBe("healthy");
    expect(pulledDigest()).toBe(pushedDigest);
  });
});

describe("registry:3 behind the proxy (the same stack switched)", () => {
  test("up: nginx in front, v3 on its unix socket only, with no network at all (its own default would be every interface), the image still pulls", async () => {
    expect(pushedDigest).not.toBe("");
    await stack!.setConfig("private-registry:tlsTermination", { value: "proxy" });
    const plan = await up();
    expect(plan.created).toEqual(expect.arrayContaining(["registry-proxy-container"]));
    expect(plan.replaced).toEqual(["registry-registry-container"]);
    expect(health(names.registry)).toBe("healthy");
    expect(health(names.proxy)).toBe("healthy");
    expect(docker("inspect", "--format", "{{.HostConfig.NetworkMode}} [{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}]", names.registry)).toBe("none []");
    expect(containerSh(names.registry, "test -S /run/registry/registry.sock && wget -q -O /dev/null http://127.0.0.1:5001/debug/health").status).toBe(0);
    expect(containerSh(names.registry, "wget -q -T 3 -t 1 -O /dev/null http://127.0.0.1:5000/v2/").status).not.toBe(0);
    expectCleanV3Log();
    const anonymous = await httpsGet("/v2/");
    expect([anonymous.status, anonymous.headers["docker-distribution-api-version"]]).toEqual([401, "registry/2.0"]);
    expect((await httpsGet("/v2/", `admin:${password}`)).status).toBe(200);
    expect(pulledDigest()).toBe(pushedDigest);
    const push = client(`skopeo copy docker-archive:/tmp/tiny.tar docker://${ENDPOINT}/v3/tiny:2 >/dev/null && ` +
      `skopeo inspect --format '{{.Digest}}' docker://${ENDPOINT}/v3/tiny:2`);
    expect(push).toEqual({ status: 0, out: `${pushedDigest}\n` });
  });

  test("destroy leaves no container, network or volume of the stack", async () => {
    await stack!.destroy();
    destroyed = true;
    expect(docker("ps", "-a", "--format", "{{.Names}}").split("\n").filter((n) => n.startsWith(`${id}-`))).toEqual([clientName]);
    expect(docker("network", "ls", "--format", "{{.Name}}").split("\n")).not.toContain(names.network);
    expect(docker("volume", "ls", "--format", "{{.Name}}").split("\n")).not.toContain(names.volume);
  });
});

describe("the guard: a missing htpasswd never becomes a healthy registry", () => {
  const htpasswd = "admin:$2a$04$0123456789012345678901uLhZyWcDgG5w8lT8sL7sJx0d3Gk6lqS\n";
  let files: Record<string, string> = {};

  beforeAll(() => {
    const dir = path.join(workDir, "guard");
    fs.mkdirSync(dir);
    const pki = makeTestPki(dir, ["IP:127.0.0.1"]);
    const write = (name: string, content: string) => { fs.writeFileSync(path.join(dir, name), content); return path.join(dir, name); };
    const rendered = write("config.yml", renderRegistryConfig({
      httpSecret: "guard-test", listen: { net: "tcp", addr: ":5000" }, dataDir: "/var/lib/registry", deleteEnabled: false,
      tls: { certificatePath: REGISTRY_TLS_PATHS.certificateChain, privateKeyPath: REGISTRY_TLS_PATHS.privateKey,
        htpasswdPath: REGISTRY_TLS_PATHS.htpasswd, realm: "Registry realm" },
    }));
    files = {
      [REGISTRY_CONFIG_PATH]: rendered,
      [REGISTRY3_CONFIG_PATH]: rendered,
      [REGISTRY_TLS_PATHS.certificateChain]: pki.chain,
      [REGISTRY_TLS_PATHS.privateKey]: pki.key,
      [REGISTRY_TLS_PATHS.htpasswdDigest]: write("htpasswd.sha256", htpasswdDigestLine(htpasswd)),
      [REGISTRY_TLS_PATHS.htpasswd]: write("htpasswd", htpasswd),
    };
  });

  /** Starts IMAGE with the files the program uploads (all, or all but the htpasswd) and its health check, on no network. */
  function start(name: string, image: string, withHtpasswd: boolean): void {
    const mounts = Object.entries(files).filter(([target]) => withHtpasswd || target !== REGISTRY_TLS_PATHS.htpasswd)
      .flatMap(([target, source]) => ["-v", `${source}:${target}:ro`]);
    docker("run", "-d", "--name", name, "--network", "none", "-e", "OTEL_TRACES_EXPORTER=none", ...mounts,
      "--health-cmd", registryHealthTest(5000), "--health-interval", "1s", "--health-timeout", "5s",
      "--health-retries", "3", "--health-start-period", "0s", image);
  }

  /** The health status once it settles (or "exited" when the container stopped first). */
  function settledHealth(name: string): string {
    for (let i = 0; i < 60; i++) {
      const [status, h] = docker("inspect", "--format", "{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}", name).split(" ");
      if (status !== "running") return "exited";
      if (h === "healthy" || h === "unhealthy") return h;
      execFileSync("sleep", ["0.5"]);
    }
    return "timeout";
  }

  test("why the config goes to both paths: v3 ignores a file at v2's path alone and runs its image's default", () => {
    const name = `${id}-guard-v2path`;
    docker("run", "-d", "--name", name, "--network", "none", "-v", `${files[REGISTRY_CONFIG_PATH]}:${REGISTRY_CONFIG_PATH}:ro`, REGISTRY3_IMAGE);
    let logs = "";
    for (let i = 0; i < 40 && !/listening on/.test(logs); i++) { execFileSync("sleep", ["0.25"]); logs = logsOf(name); }
    // Plain HTTP on every interface, and the default config's htpasswd at /etc/registry, generated.
    expect(logs).toContain('msg="listening on [::]:5000"');
    expect(logs).toMatch(/htpasswd is missing, provisioning with default user.*user=docker/);
    expect(containerSh(name, "head -c 7 /etc/registry").out).toBe("docker:");
    dockerQuiet("rm", "-f", "-v", name);
  });

  for (const [major, image, version] of [["v3", REGISTRY3_IMAGE, "v3.1.1"], ["2.8", REGISTRY2_IMAGE, "2.8.2"]]) {
    test(`${major} without the htpasswd: it makes user "docker" and logs the password, and it stays unhealthy`, () => {
      const name = `${id}-guard-${major.replace(".", "")}-missing`;
      start(name, image, false);
      expect(settledHealth(name)).toBe("unhealthy");
      const logs = logsOf(name);
      expect(logs).toContain(`version=${version}`);
      expect(logs).toMatch(/level=warning msg="htpasswd is missing, provisioning with default user" .*password=\S+ .*user=docker/);
      // It does serve (the fallback is real), which is why the check must not pass on `/` alone.
      expect(containerSh(name, "wget -q --no-check-certificate -O /dev/null https://127.0.0.1:5000/").status).toBe(0);
      expect(containerSh(name, `head -c 7 ${REGISTRY_TLS_PATHS.htpasswd}`).out).toBe("docker:");
      dockerQuiet("rm", "-f", "-v", name);
    });

    test(`${major} with the uploaded htpasswd: healthy, no generated user`, () => {
      const name = `${id}-guard-${major.replace(".", "")}-ok`;
      start(name, image, true);
      expect(settledHealth(name)).toBe("healthy");
      expect(logsOf(name)).not.toContain("htpasswd is missing");
      dockerQuiet("rm", "-f", "-v", name);
    });
  }
});
