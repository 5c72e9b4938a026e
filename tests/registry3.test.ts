// distribution v3 (registry:3) as the registry image, deployed for real in both layouts
// on one stack (the shared fixture, tests/helpers/deployment.ts): the real Pulumi engine
// (Automation API, file backend in a temporary folder), the real providers, the local v3 image built from the Go module
// (the local registry3 image, which reads /etc/distribution/config.yml as
// registry:3 does) and the local nginx image. A container of the ssh-client-host image
// (skopeo) on this test's own network is the client; it dials the network's host side
// (outside 127.0.0.0/8, so TLS is really verified with the CA).
// Then the guard: v3 started with the rendered config but no htpasswd makes itself a
// user "docker" and logs its password; the program's health check never calls that
// healthy. Debian's 2.8.2 does the same (the fallback is older than v3), so both majors
// are checked.
// Traffic goes only to this test's network's host address and its own containers.
import * as fs from "fs";
import * as path from "path";
import { execFileSync, spawnSync } from "child_process";
import { deployment, IMAGES } from "./helpers/deployment";
import { docker, dockerQuiet, containerSh, ShResult, copyTinyImageInto } from "./helpers/e2e";
import { makeTestPki } from "./helpers/pki";
import {
  REGISTRY3_CONFIG_PATH,
  REGISTRY_CONFIG_PATH,
  REGISTRY_TLS_PATHS,
  htpasswdDigestLine,
  registryHealthTest,
  renderRegistryConfig,
} from "../lib/registryConfig";

jest.setTimeout(600_000);

const REGISTRY3_IMAGE = IMAGES.registry3;
const REGISTRY2_IMAGE = IMAGES.registry;

// The client is a registry client only (skopeo, no sshd, not in the stack's clients): the CA goes into its certs.d by hand.
// Stack created and configured (tlsTermination: registry); the first `up` is the first test.
const d = deployment({
  tag: "v3",
  registry: "registry3",
  clients: [{ ssh: false }],
  config: { tlsTermination: "registry" },
  up: false,
});
let REPO = "";
let password = "";
let caPem = "";
let pushedDigest = "";

const names = { registry: d.names("registry"), proxy: d.names("nginx"), network: d.names("net"), volume: d.names("data") };
const client = (script: string, stdin = ""): ShResult => d.clients[0].sh(script, stdin);
const logsOf = (container: string): string => {
  const r = spawnSync("docker", ["logs", container], { encoding: "utf8" });
  return `${r.stdout}${r.stderr}`;
};
const health = (container: string): string =>
  docker("inspect", "--format", "{{if .State.Health}}{{.State.Health.Status}}{{end}}", container);

/** GET over HTTPS, verifying the server with the deployed CA: status and headers. */
const httpsGet = (pathName: string, auth?: string) => d.https(pathName, { auth });

/** The digest the client pulls (a full copy, then the manifest's digest), verifying TLS with the CA in certs.d. */
function pulledDigest(): string {
  const r = client(
    `rm -rf /tmp/pulled && skopeo copy docker://${REPO} oci:/tmp/pulled:tiny >/dev/null && ` +
      `skopeo inspect --format '{{.Digest}}' docker://${REPO}`,
  );
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

beforeAll(() => {
  REPO = `${d.endpoint}/v3/tiny:1`;
  // Something small to push: a one-file image as a docker-archive at /tmp/tiny.tar in the client.
  copyTinyImageInto(d.clients[0].name, d.workDir, d.id);
});

describe("registry:3 with tlsTermination: registry", () => {
  test("up: v3 reads the rendered config (TLS, htpasswd) and turns healthy, with no generated user", async () => {
    await d.up();
    password = d.passwords.admin;
    caPem = d.caPem;
    expect(health(names.registry)).toBe("healthy");
    // The same file at registry:2's and registry:3's paths; the htpasswd digest beside the htpasswd.
    const files = containerSh(
      names.registry,
      `cmp ${REGISTRY_CONFIG_PATH} ${REGISTRY3_CONFIG_PATH} && stat -c '%a %n' ${REGISTRY3_CONFIG_PATH} ${REGISTRY_TLS_PATHS.htpasswdDigest} && ` +
        `sha256sum -c ${REGISTRY_TLS_PATHS.htpasswdDigest}`,
    );
    expect(files).toEqual({
      status: 0,
      out: `600 ${REGISTRY3_CONFIG_PATH}\n600 ${REGISTRY_TLS_PATHS.htpasswdDigest}\n${REGISTRY_TLS_PATHS.htpasswd}: OK\n`,
    });
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
    expect(client(`mkdir -p /etc/docker/certs.d/${d.endpoint} && cat >/etc/docker/certs.d/${d.endpoint}/ca.crt`, caPem).status).toBe(0);
    expect(client(`skopeo login --username admin --password-stdin ${d.endpoint}`, password)).toEqual({
      status: 0,
      out: expect.stringContaining("Login Succeeded"),
    });
    const push = client(`skopeo copy --digestfile /tmp/digest docker-archive:/tmp/tiny.tar docker://${REPO} >/dev/null && cat /tmp/digest`);
    expect(push).toEqual({ status: 0, out: expect.stringMatching(/^sha256:[0-9a-f]{64}$/) });
    pushedDigest = push.out;
    expect(pulledDigest()).toBe(pushedDigest);
  });

  test("`npm run gc` works with v3 (the collector in a one-off container of the image), and the image still pulls", () => {
    const gc = d.npmRun("gc", ["--stack", d.id], { timeout: 300_000 });
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
    const { plan } = await d.up({ tlsTermination: "proxy" });
    expect(plan.created).toEqual(expect.arrayContaining(["registry-proxy-container"]));
    expect(plan.replaced).toEqual(["registry-registry-container"]);
    expect(health(names.registry)).toBe("healthy");
    expect(health(names.proxy)).toBe("healthy");
    expect(
      docker(
        "inspect",
        "--format",
        "{{.HostConfig.NetworkMode}} [{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}]",
        names.registry,
      ),
    ).toBe("none []");
    expect(
      containerSh(names.registry, "test -S /run/registry/registry.sock && wget -q -O /dev/null http://127.0.0.1:5001/debug/health").status,
    ).toBe(0);
    expect(containerSh(names.registry, "wget -q -T 3 -t 1 -O /dev/null http://127.0.0.1:5000/v2/").status).not.toBe(0);
    expectCleanV3Log();
    const anonymous = await httpsGet("/v2/");
    expect([anonymous.status, anonymous.headers["docker-distribution-api-version"]]).toEqual([401, "registry/2.0"]);
    expect((await httpsGet("/v2/", `admin:${password}`)).status).toBe(200);
    expect(pulledDigest()).toBe(pushedDigest);
    const push = client(
      `skopeo copy docker-archive:/tmp/tiny.tar docker://${d.endpoint}/v3/tiny:2 >/dev/null && ` +
        `skopeo inspect --format '{{.Digest}}' docker://${d.endpoint}/v3/tiny:2`,
    );
    expect(push).toEqual({ status: 0, out: `${pushedDigest}\n` });
  });

  test("destroy leaves no container, network or volume of the stack", async () => {
    await d.destroy();
    expect(
      docker("ps", "-a", "--format", "{{.Names}}")
        .split("\n")
        .filter((n) => n.startsWith(`${d.id}-`)),
    ).toEqual([d.clients[0].name]);
    expect(docker("network", "ls", "--format", "{{.Name}}").split("\n")).not.toContain(names.network);
    expect(docker("volume", "ls", "--format", "{{.Name}}").split("\n")).not.toContain(names.volume);
  });
});

describe("the guard: a missing htpasswd never becomes a healthy registry", () => {
  const htpasswd = "admin:$2a$04$0123456789012345678901uLhZyWcDgG5w8lT8sL7sJx0d3Gk6lqS\n";
  let files: Record<string, string> = {};

  beforeAll(() => {
    const dir = path.join(d.workDir, "guard");
    fs.mkdirSync(dir);
    const pki = makeTestPki(dir, ["IP:127.0.0.1"]);
    const write = (name: string, content: string) => {
      fs.writeFileSync(path.join(dir, name), content);
      return path.join(dir, name);
    };
    const rendered = write(
      "config.yml",
      renderRegistryConfig({
        httpSecret: "guard-test",
        listen: { net: "tcp", addr: ":5000" },
        dataDir: "/var/lib/registry",
        deleteEnabled: false,
        tls: {
          certificatePath: REGISTRY_TLS_PATHS.certificateChain,
          privateKeyPath: REGISTRY_TLS_PATHS.privateKey,
          htpasswdPath: REGISTRY_TLS_PATHS.htpasswd,
          realm: "Registry realm",
        },
      }),
    );
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
    const mounts = Object.entries(files)
      .filter(([target]) => withHtpasswd || target !== REGISTRY_TLS_PATHS.htpasswd)
      .flatMap(([target, source]) => ["-v", `${source}:${target}:ro`]);
    docker(
      "run",
      "-d",
      "--name",
      name,
      "--network",
      "none",
      "-e",
      "OTEL_TRACES_EXPORTER=none",
      ...mounts,
      "--health-cmd",
      registryHealthTest(5000),
      "--health-interval",
      "1s",
      "--health-timeout",
      "5s",
      "--health-retries",
      "3",
      "--health-start-period",
      "0s",
      image,
    );
  }

  /** The health status once it settles (or "exited" when the container stopped first). */
  function settledHealth(name: string): string {
    for (let i = 0; i < 60; i++) {
      const [status, h] = docker(
        "inspect",
        "--format",
        "{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}",
        name,
      ).split(" ");
      if (status !== "running") return "exited";
      if (h === "healthy" || h === "unhealthy") return h;
      execFileSync("sleep", ["0.5"]);
    }
    return "timeout";
  }

  test("why the config goes to both paths: v3 ignores a file at v2's path alone and runs its image's default", () => {
    const name = d.names("guard-v2path");
    docker(
      "run",
      "-d",
      "--name",
      name,
      "--network",
      "none",
      "-v",
      `${files[REGISTRY_CONFIG_PATH]}:${REGISTRY_CONFIG_PATH}:ro`,
      REGISTRY3_IMAGE,
    );
    let logs = "";
    for (let i = 0; i < 40 && !/listening on/.test(logs); i++) {
      execFileSync("sleep", ["0.25"]);
      logs = logsOf(name);
    }
    // Plain HTTP on every interface, and the default config's htpasswd at /etc/registry, generated.
    expect(logs).toContain('msg="listening on [::]:5000"');
    expect(logs).toMatch(/htpasswd is missing, provisioning with default user.*user=docker/);
    expect(containerSh(name, "head -c 7 /etc/registry").out).toBe("docker:");
    dockerQuiet("rm", "-f", "-v", name);
  });

  for (const [major, image, version] of [
    ["v3", REGISTRY3_IMAGE, "v3.1.1"],
    ["2.8", REGISTRY2_IMAGE, "2.8.2"],
  ]) {
    test(`${major} without the htpasswd: it makes user "docker" and logs the password, and it stays unhealthy`, () => {
      const name = d.names(`guard-${major.replace(".", "")}-missing`);
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
      const name = d.names(`guard-${major.replace(".", "")}-ok`);
      start(name, image, true);
      expect(settledHealth(name)).toBe("healthy");
      expect(logsOf(name)).not.toContain("htpasswd is missing");
      dockerQuiet("rm", "-f", "-v", name);
    });
  }
});
