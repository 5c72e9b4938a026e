// The "registry terminates TLS itself" layout (tlsTermination: registry) deployed for
// real, and switched to the proxy layout and back on the same stack: the shared fixture
// (tests/helpers/deployment.ts: the real Pulumi engine through the Automation API, a file
// backend in a temporary folder, its own stack), the real providers, the local Debian
// registry and nginx images. One container of the ssh-client-host image (skopeo, curl) on
// this test's own network is the client; it dials the network's host side (outside
// 127.0.0.0/8, so TLS is really verified).
// Traffic goes only to this test's network's host address and its own containers.
import * as fs from "fs";
import * as path from "path";
import * as crypto from "crypto";
import { spawnSync } from "child_process";
import { LocalWorkspace } from "@pulumi/pulumi/automation";
import { docker, containerSh, ShResult, Plan, copyTinyImageInto } from "./helpers/e2e";
import { deployment, freePort, PROJECT_DIR } from "./helpers/deployment";

jest.setTimeout(900_000);

// Only on the test network's host side (the fixture's listenAddress), not on every interface
// of this machine. The first `up` is the first test's.
const d = deployment({
  tag: "dir",
  // A registry client only (no sshd): not one of the stack's client hosts.
  clients: [{ ssh: false }],
  config: { tlsTermination: "registry" },
  up: false,
});
const { id } = d;
let REPO = "";
let clientName = "";
let caFile = "";
let names = { registry: "", proxy: "", network: "", volume: "", usersVolume: "" };

let password = "";
let caPem = "";
let pushedDigest = "";
const MARKER = crypto.randomBytes(8).toString("hex");

const client = (script: string, stdin = ""): ShResult => containerSh(clientName, script, stdin);

function httpsGet(pathName: string, auth?: string): Promise<{ status: number; headers: Record<string, unknown> }> {
  return d.https(pathName, { auth });
}

/** An openssl handshake with the registry's endpoint, verifying against the CA. */
function handshake(...args: string[]): { ok: boolean; out: string } {
  const r = spawnSync("openssl", ["s_client", "-connect", d.endpoint, "-CAfile", caFile, "-verify_return_error", "-brief", ...args], {
    input: "",
    encoding: "utf8",
    timeout: 20_000,
  });
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` };
}

/** A file this test left in the data volume, read through the registry container: there after a switch, it is the same volume. */
const marker = () => containerSh(names.registry, "cat /var/lib/registry/dir-test-marker").out.trim();
/** Steps that touched the data volume or the network (there must be none). */
const dataOrNetworkSteps = (plan: Plan) =>
  [...plan.created, ...plan.updated, ...plan.replaced, ...plan.deleted].filter((n) => /-data$|-network$/.test(n));

/** The names of this test's registry and proxy containers that exist (running or not). */
function existingContainers(): string[] {
  return docker("ps", "-a", "--format", "{{.Names}}")
    .split("\n")
    .filter((n) => n === names.registry || n === names.proxy)
    .sort();
}

/** The digest the client pulls (a full copy, then the manifest's digest), verifying TLS with the CA in certs.d. */
function pulledDigest(): string {
  const r = client(
    `rm -rf /tmp/pulled && skopeo copy docker://${REPO} oci:/tmp/pulled:tiny >/dev/null && ` +
      `skopeo inspect --format '{{.Digest}}' docker://${REPO}`,
  );
  expect(r).toEqual({ status: 0, out: expect.stringMatching(/^sha256:[0-9a-f]{64}\n$/) });
  return r.out.trim();
}

beforeAll(() => {
  REPO = `${d.endpoint}/dir/tiny:1`;
  clientName = d.clients[0].name;
  caFile = path.join(d.workDir, "ca.crt");
  names = {
    registry: d.names("registry"),
    proxy: d.names("nginx"),
    network: d.names("net"),
    volume: d.names("data"),
    usersVolume: d.names("users"),
  };
  copyTinyImageInto(clientName, d.workDir, id);
});

describe("tlsTermination: registry (no proxy)", () => {
  test("up creates the registry alone, publishing its own port, with the same outputs as behind the proxy", async () => {
    const { output } = await d.up();
    expect(output).not.toMatch(/warning/i);
    const outputs = await d.stack.outputs();
    expect(outputs.endpoints.value).toEqual([d.endpoint, `localhost:${d.port}`]);
    expect(outputs.containers.value).toEqual({ registry: names.registry, proxy: "" });
    expect(Object.keys(outputs.dockerLoginCommands.value)).toEqual(["admin"]);
    expect(outputs.clientHosts.value).toEqual([]);
    password = outputs.credentials.value.admin;
    caPem = outputs.caCertPem.value;
    fs.writeFileSync(caFile, caPem);
    expect(existingContainers()).toEqual([names.registry]);
    expect(docker("port", names.registry)).toBe(`5000/tcp -> ${d.endpoint}`);
    // Nothing about TLS or auth in what `docker inspect` shows; the files are there, the key 0600.
    expect(docker("inspect", "--format", "{{json .Config.Env}}", names.registry)).not.toMatch(/REGISTRY_|PRIVATE KEY/);
    expect(
      containerSh(
        names.registry,
        "stat -c '%a %n' /etc/docker/registry/config.yml /etc/docker/registry/tls/key.pem /etc/docker/registry/htpasswd /etc/docker/registry/tls/chain.pem",
      ).out,
    ).toBe(
      "600 /etc/docker/registry/config.yml\n600 /etc/docker/registry/tls/key.pem\n600 /etc/docker/registry/htpasswd\n644 /etc/docker/registry/tls/chain.pem\n",
    );
    expect(docker("inspect", "--format", "{{.State.Health.Status}}", names.registry)).toBe("healthy");
    expect(containerSh(names.registry, `echo ${MARKER} >/var/lib/registry/dir-test-marker`).status).toBe(0);
    // distribution says what it was told: TLS 1.2 and up, the AEAD suites.
    const logs = spawnSync("docker", ["logs", names.registry], { encoding: "utf8" });
    expect(`${logs.stdout}${logs.stderr}`).toContain("restricting TLS version to tls1.2 or higher");
  });

  test("TLS verifies with the CA; 401 without credentials (with the API header), 200 with them", async () => {
    const anonymous = await httpsGet("/v2/");
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers["docker-distribution-api-version"]).toBe("registry/2.0");
    expect(anonymous.headers["www-authenticate"]).toBe('Basic realm="Registry realm"');
    expect((await httpsGet("/v2/", `admin:${password}x`)).status).toBe(401);
    const ok = await httpsGet("/v2/", `admin:${password}`);
    expect(ok.status).toBe(200);
    expect(ok.headers["docker-distribution-api-version"]).toBe("registry/2.0");
  });

  test("only TLS 1.2 and 1.3, and over 1.2 only forward-secret AEAD ciphers", () => {
    const tls12 = handshake("-tls1_2");
    expect(tls12.out).toMatch(/Protocol version: TLSv1\.2/);
    expect(tls12.out).toMatch(/Verification: OK/);
    expect(handshake("-tls1_3").out).toMatch(/Protocol version: TLSv1\.3/);
    // The client offers 1.1 (allowed at security level 0); the server refuses it.
    const tls11 = handshake("-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0");
    expect(tls11.ok).toBe(false);
    expect(tls11.out).toMatch(/protocol version|no protocols available|unsupported protocol/i);
    expect(handshake("-tls1_2", "-cipher", "ECDHE-RSA-AES128-SHA@SECLEVEL=0").ok).toBe(false);
    expect(handshake("-tls1_2", "-cipher", "AES128-GCM-SHA256").ok).toBe(false);
  });

  test("a client with the CA in certs.d pushes and pulls the same digest; without it TLS fails", () => {
    expect(client(`mkdir -p /etc/docker/certs.d/${d.endpoint} && cat >/etc/docker/certs.d/${d.endpoint}/ca.crt`, caPem).status).toBe(0);
    expect(client(`skopeo login --username admin --password-stdin ${d.endpoint}`, password)).toEqual({
      status: 0,
      out: expect.stringContaining("Login Succeeded"),
    });
    const push = client(`skopeo copy --digestfile /tmp/digest docker-archive:/tmp/tiny.tar docker://${REPO} >/dev/null && cat /tmp/digest`);
    expect(push).toEqual({ status: 0, out: expect.stringMatching(/^sha256:[0-9a-f]{64}$/) });
    pushedDigest = push.out;
    expect(pulledDigest()).toBe(pushedDigest);
    const untrusted = client(`mkdir -p /tmp/empty-certs && skopeo inspect --cert-dir /tmp/empty-certs docker://${REPO}`);
    expect(untrusted.status).not.toBe(0);
    expect(untrusted.out).toMatch(/x509|certificate/);
  });

  test("`npm run gc` works without a proxy: the registry stops, the collector runs, the registry serves again with the image", () => {
    const gc = spawnSync("npm", ["run", "--silent", "gc", "--", "--stack", id], {
      cwd: PROJECT_DIR,
      env: { ...process.env, ...d.env },
      encoding: "utf8",
      timeout: 300_000,
    });
    expect(gc.stderr).toContain(`stopping ${names.registry}`);
    expect(gc.stderr).toMatch(/blobs marked, \d+ blobs and \d+ manifests eligible for deletion/);
    expect(gc.stderr).toContain("the registry is serving again");
    expect(gc.status).toBe(0);
    expect(docker("inspect", "-f", "{{.State.Health.Status}}", names.registry)).toBe("healthy");
    expect(pulledDigest()).toBe(pushedDigest);
  });

  test("adding a user replaces the registry container (distribution reads its htpasswd at start): the user logs in, the others keep their passwords; the gap is measured", async () => {
    const idBefore = docker("inspect", "--format", "{{.Id}}", names.registry);
    await d.setConfig({ "users[1]": "deployer" });
    // admin asks /v2/ every 50 ms on a new connection while the up runs: the gap is the span of failed asks.
    const asks: { at: number; ok: boolean }[] = [];
    let done = false;
    const poller = (async () => {
      while (!done) {
        const ok = await httpsGet("/v2/", `admin:${password}`).then(
          (r) => r.status === 200,
          () => false,
        );
        asks.push({ at: Date.now(), ok });
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    let result: { plan: Plan };
    try {
      result = await d.up();
    } finally {
      done = true;
      await poller;
    }
    expect(result.plan).toEqual({
      created: ["registry-users-deployer", "registry-users-deployer-salt"],
      updated: [],
      replaced: ["registry-registry-container"],
      deleted: [],
    });
    expect(docker("inspect", "--format", "{{.Id}}", names.registry)).not.toBe(idBefore);
    const failed = asks.filter((a) => !a.ok);
    const gapMs = failed.length === 0 ? 0 : failed[failed.length - 1].at - failed[0].at + 50;
    process.stdout.write(
      `[measure] registry layout, one user added: ${failed.length} of ${asks.length} asks failed, a gap of about ${gapMs} ms\n`,
    );
    expect(asks[asks.length - 1].ok).toBe(true);
    const credentials: Record<string, string> = (await d.stack.outputs()).credentials.value;
    expect(credentials.admin).toBe(password);
    expect((await httpsGet("/v2/", `deployer:${credentials.deployer}`)).status).toBe(200);
    expect(pulledDigest()).toBe(pushedDigest);
  });
});

describe("switching layouts on the same stack keeps the images", () => {
  test("to the proxy layout: one up adds nginx, replaces only the registry container, and the image pulls with the same digest", async () => {
    expect(pushedDigest).not.toBe("");
    await d.setConfig({ tlsTermination: "proxy" });
    const { plan } = await d.up();
    expect(plan.created).toEqual(expect.arrayContaining(["registry-proxy-container"]));
    expect(plan.replaced).toEqual(["registry-registry-container"]);
    expect(plan.deleted).toEqual([]);
    expect(dataOrNetworkSteps(plan)).toEqual([]);
    expect(marker()).toBe(MARKER);
    expect(existingContainers()).toEqual([names.proxy, names.registry]);
    expect((await d.stack.outputs()).containers.value).toEqual({ registry: names.registry, proxy: names.proxy });
    // The port moved to nginx; the registry has no network.
    expect(docker("port", names.proxy)).toBe(`443/tcp -> ${d.endpoint}`);
    expect(docker("port", names.registry)).toBe("");
    // nginx answers now: the same 401, header and TLS policy, the same CA.
    const anonymous = await httpsGet("/v2/");
    expect([anonymous.status, anonymous.headers["docker-distribution-api-version"]]).toEqual([401, "registry/2.0"]);
    expect((await httpsGet("/")).status).toBe(404);
    expect(handshake("-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0").ok).toBe(false);
    expect(pulledDigest()).toBe(pushedDigest);
  });

  test("back to the registry layout: one up removes nginx, and the image is still there", async () => {
    await d.setConfig({ tlsTermination: "registry" });
    const { plan } = await d.up();
    expect(plan.created).toEqual([]);
    // nginx goes (the up stops it before the registry publishes the port nginx held),
    // and so does the socket volume only the proxy layout uses; nothing else goes.
    expect(plan.replaced.filter((n) => n !== "registry-proxy-container")).toEqual(["registry-registry-container"]);
    expect(plan.deleted.filter((n) => !/^registry-proxy-/.test(n))).toEqual(["registry-registry-socket"]);
    expect(dataOrNetworkSteps(plan)).toEqual([]);
    expect(marker()).toBe(MARKER);
    expect(existingContainers()).toEqual([names.registry]);
    expect((await d.stack.outputs()).containers.value).toEqual({ registry: names.registry, proxy: "" });
    expect(pulledDigest()).toBe(pushedDigest);
    // A preview right after shows nothing to do.
    await d.stack.preview({ expectNoChanges: true });
  });

  test("destroy leaves no container, network or volume of the stack", async () => {
    await d.destroy();
    expect(existingContainers()).toEqual([]);
    expect(docker("network", "ls", "--format", "{{.Name}}").split("\n")).not.toContain(names.network);
    expect(docker("volume", "ls", "--format", "{{.Name}}").split("\n")).not.toContain(names.usersVolume);
    expect(docker("volume", "ls", "--format", "{{.Name}}").split("\n")).not.toContain(names.volume);
  });
});

// The layout before the unix socket (nginx in the registry's network namespace, which
// Docker may not restart after a crash: moby/moby#50326), deployed by that version of
// the program, then one `up` of this version on the same stack: both containers move
// to the new layout, the data volume stays, and the image pulls with its digest.
const PREVIOUS_LAYOUT_COMMIT = "88f225c";
describe("a stack of the shared-namespace layout, moved to the unix socket by one `up`", () => {
  let oldDir = "";
  let stackName = "";
  let prefix = "";
  let port = 0;
  let repo = "";

  beforeAll(() => {
    oldDir = path.join(d.workDir, "previous");
    stackName = `${id}m`;
    prefix = `${id}-m`;
    port = freePort();
    repo = `${d.gateway}:${port}/mig/tiny:1`;
  });

  test("up with the previous version, push; up with this one: the registry gets no network, nginx its own, the image is still there", async () => {
    fs.mkdirSync(oldDir);
    const archive = spawnSync("sh", ["-c", `git -C '${PROJECT_DIR}' archive ${PREVIOUS_LAYOUT_COMMIT} | tar -x -C '${oldDir}'`], {
      encoding: "utf8",
    });
    expect(archive.stderr).toBe("");
    fs.symlinkSync(path.join(PROJECT_DIR, "node_modules"), path.join(oldDir, "node_modules"));
    // The stack as this version's (the fixture's project shell: torn down with the deployment),
    // its stack file copied beside the previous version's Pulumi.yaml: the same stack, the same
    // backend and passphrase, either program.
    const current = await d.otherStack("m", { ...d.baseConfig(), tlsTermination: "proxy", port, namePrefix: prefix });
    fs.copyFileSync(path.join(d.shellDir, `Pulumi.${stackName}.yaml`), path.join(oldDir, `Pulumi.${stackName}.yaml`));
    const oldStack = await LocalWorkspace.selectStack({ stackName, workDir: oldDir }, { envVars: d.env });
    const before = await d.up({}, oldStack);
    expect(docker("inspect", "-f", "{{.HostConfig.NetworkMode}}", `${prefix}-nginx`)).toMatch(/^container:/);
    const password = before.outputs.credentials.value.admin;
    expect(client("mkdir -p /tmp/mig-certs && cat >/tmp/mig-certs/ca.crt", before.outputs.caCertPem.value).status).toBe(0);
    expect(client(`skopeo login --cert-dir /tmp/mig-certs --username admin --password-stdin ${d.gateway}:${port}`, password).status).toBe(
      0,
    );
    const inspect = () => client(`skopeo inspect --cert-dir /tmp/mig-certs --format '{{.Digest}}' docker://${repo}`);
    expect(client(`skopeo copy --dest-cert-dir /tmp/mig-certs docker-archive:/tmp/tiny.tar docker://${repo} >/dev/null`).status).toBe(0);
    const digest = inspect().out.trim();
    expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);

    // The same stack, this version of the program.
    const moved = await d.up({}, current);
    const plan = moved.plan;
    expect(plan.replaced).toEqual(expect.arrayContaining(["registry-registry-container", "registry-proxy-container"]));
    expect(plan.created).toContain("registry-registry-socket");
    expect(dataOrNetworkSteps(plan)).toEqual([]);
    expect(docker("inspect", "-f", "{{.HostConfig.NetworkMode}}", `${prefix}-registry`)).toBe("none");
    expect(docker("inspect", "-f", "{{.HostConfig.NetworkMode}}", `${prefix}-nginx`)).not.toMatch(/^container:/);
    expect(moved.outputs.credentials.value.admin).toBe(password);
    // Pulled whole (skopeo checks every blob's digest), and the same manifest digest.
    expect(
      client(`rm -rf /tmp/mig-p && skopeo copy --src-cert-dir /tmp/mig-certs docker://${repo} oci:/tmp/mig-p:x >/dev/null`).status,
    ).toBe(0);
    expect(inspect()).toEqual({ status: 0, out: `${digest}\n` });
    await current.preview({ expectNoChanges: true });
    await d.destroy(current);
    expect(
      docker("ps", "-a", "--format", "{{.Names}}")
        .split("\n")
        .filter((n) => n.startsWith(`${prefix}-`)),
    ).toEqual([]);
  });
});
