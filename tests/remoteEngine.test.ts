// The registry on "another machine": the Docker engine that runs it is config
// (dockerHost), reached through an explicit docker provider, not the default socket.
// The shared fixture (tests/helpers/deployment.ts, spec.remoteEngine) puts this machine's
// engine behind a TCP listener that demands a client certificate (socat, TLS with client
// verification, on 127.0.0.1 only) and deploys a stack to tcp://127.0.0.1:d.port with the
// client TLS material as secrets: the real Pulumi engine (Automation API, file backend in
// a temporary folder, its own stack), the real providers, the local Debian images. A
// container of the ssh-client-host image on this test's network is a `clients` entry
// (client trust over SSH) and pushes and pulls; the registry is published on the
// network's host side (outside 127.0.0.0/8, so TLS is really verified). Traffic goes
// only to loopback and this test's network.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as https from "https";
import { execFileSync, spawnSync } from "child_process";
import { deployment, IMAGES, RemoteEngine } from "./helpers/deployment";
import { docker, ShResult } from "./helpers/e2e";

jest.setTimeout(600_000);

const DNS_NAME = "remote-registry.example.com"; // resolved to the gateway inside the client container only
// Stack created and configured (dockerHost and the engine's client certificate); the first `up` is a test.
const d = deployment({
  tag: "remote",
  dnsName: DNS_NAME,
  clients: [{}],
  remoteEngine: true,
  up: false,
});
let engine: RemoteEngine;
let DOCKER_HOST = "";
let REPO_NAME = "";
let REPO = "";
let caPem = "";
let password = "";
let pushedDigest = "";
const names = {
  registry: d.names("registry"),
  proxy: d.names("nginx"),
  network: d.names("net"),
  volume: d.names("data"),
  usersWriter: d.names("users-writer"),
  usersVolume: d.names("users"),
  socketVolume: d.names("socket"),
};
const client = (script: string, stdin = ""): ShResult => d.clients[0].sh(script, stdin);

/** GET on the engine's API through the listener: status, or the error's code. */
function engineGet(tls: { cert?: string; key?: string }): Promise<string> {
  return new Promise((resolve) => {
    https
      .get({ host: "127.0.0.1", port: engine.port, path: "/_ping", ca: engine.pem("engine-ca.pem"), agent: false, ...tls }, (res) => {
        res.resume();
        resolve(String(res.statusCode));
      })
      .on("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
}

/** GET over HTTPS, verifying the server with the stack's CA: status and headers. */
const httpsGet = (pathName: string, auth?: string) => d.https(pathName, { auth });

beforeAll(() => {
  engine = d.engine!;
  DOCKER_HOST = engine.host;
  REPO_NAME = "remote/tiny:1";
  REPO = `${d.endpoint}/${REPO_NAME}`;
});

describe("the registry on an engine reached over tcp:// with client TLS", () => {
  test("the listener serves the engine only to a client certificate its CA signed", async () => {
    expect(await engineGet({ cert: engine.pem("engine-client.pem"), key: engine.pem("engine-client.key") })).toBe("200");
    expect(await engineGet({})).not.toBe("200");
    expect(await engineGet({ cert: engine.pem("other-client.pem"), key: engine.pem("other-client.key") })).not.toBe("200");
  });

  test("a client certificate the engine refuses: up fails before anything is created, naming dockerHost", async () => {
    const { output: message } = await d.failingUp(engine.config("other-client"));
    expect(message).toContain(`Invalid config "private-registry:dockerHost" = "${DOCKER_HOST}": the Docker engine there does not answer (`);
    expect(message).toContain("nothing was created");
    expect(message).not.toMatch(/PRIVATE KEY|BEGIN CERTIFICATE/);
    expect(d.existing()).toEqual([]);
    const resources = (await d.stack.exportStack()).deployment.resources ?? [];
    expect(resources.filter((r: { type: string }) => !/^pulumi:pulumi:Stack$/.test(r.type))).toEqual([]);
  });

  test("up through the listener: the registry, its proxy, network and volume on that engine, same outputs", async () => {
    const before = engine.acceptedConnections();
    const { output, outputs } = await d.up(engine.config("engine-client"));
    expect(output).not.toMatch(/warning/i);
    // The engine was reached through the TLS listener.
    expect(engine.acceptedConnections()).toBeGreaterThan(before);
    expect(d.existing()).toEqual(
      [names.proxy, names.registry, names.usersWriter, names.volume, names.usersVolume, names.socketVolume, names.network].sort(),
    );
    expect(docker("port", names.proxy)).toBe(`443/tcp -> ${d.endpoint}`);
    expect(Object.keys(outputs).sort()).toEqual([
      "caCertPem",
      "clientHosts",
      "containers",
      "credentials",
      "dockerLoginCommand",
      "dockerLoginCommands",
      "endpoints",
      "mirrors",
      "serverCertExpiresAt",
    ]);
    expect(outputs.mirrors.value).toEqual({});
    expect(outputs.endpoints.value).toEqual([d.endpoint, d.nameEndpoint]);
    expect(outputs.containers.value).toEqual({ registry: names.registry, proxy: names.proxy });
    expect(outputs.clientHosts.value).toEqual([`root@${d.clients[0].ip}:22`]);
    expect(outputs.dockerLoginCommand.value).toContain(`docker login ${d.endpoint} --username admin --password-stdin`);
    caPem = outputs.caCertPem.value;
    password = outputs.credentials.value.admin;
    // Every Docker resource uses the stack's own provider, whose TLS material is secret (exportStack shows it decrypted).
    const resources: { type: string; urn: string; provider?: string; inputs?: Record<string, unknown> }[] = (await d.stack.exportStack())
      .deployment.resources;
    const dockerResources = resources.filter((r) => r.type.startsWith("docker:"));
    expect(dockerResources.length).toBeGreaterThanOrEqual(4);
    for (const r of dockerResources) expect(r.provider).toMatch(/pulumi:providers:docker::registry-docker::/);
    const provider = resources.find((r) => r.type === "pulumi:providers:docker");
    expect(provider?.inputs?.host).toBe(DOCKER_HOST);
    for (const k of ["caMaterial", "certMaterial", "keyMaterial"]) {
      expect((provider?.inputs?.[k] as Record<string, unknown>)?.["4dabf18193072939515e22adb298388d"]).toBe(
        "1b47061264138c4ac30d75fd1eb44270",
      );
    }
  });

  test("TLS verifies with the stack's CA at an address outside 127/8: 401 without credentials, 200 with them", async () => {
    const anonymous = await httpsGet("/v2/");
    expect([anonymous.status, anonymous.headers["docker-distribution-api-version"]]).toEqual([401, "registry/2.0"]);
    expect((await httpsGet("/v2/", `admin:${password}`)).status).toBe(200);
  });

  test("the client host got the CA over SSH and pushes and pulls the same digest", () => {
    for (const e of [d.endpoint, d.nameEndpoint]) expect(client(`cat /etc/docker/certs.d/${e}/ca.crt`).out).toBe(caPem);
    expect(d.clients[0].login()).toEqual({ status: 0, out: expect.stringContaining("Login Succeeded") });
    // A new image of one small layer; the fixture's push fails the test unless it succeeds with the image's digest.
    pushedDigest = d.clients[0].push(REPO_NAME, 1, 4096);
    const pulled = client(
      `skopeo copy docker://${REPO} oci:/tmp/pulled:tiny >/dev/null && skopeo inspect --format '{{.Digest}}' docker://${REPO}`,
    );
    expect(pulled).toEqual({ status: 0, out: `${pushedDigest}\n` });
  });

  test("`npm run gc` drives the same engine (the stack's dockerHost), and the image is still served after", () => {
    const before = engine.acceptedConnections();
    const gc = d.npmRun("gc", ["--stack", d.id], { timeout: 300_000 });
    expect(gc.stderr).toContain(`[stack] Docker engine: ${DOCKER_HOST} (dockerHost of stack ${d.id})`);
    expect(gc.stderr).toContain(`stopping ${names.proxy}`);
    expect(gc.stderr).toContain("the registry is serving again");
    expect(gc.status).toBe(0);
    expect(engine.acceptedConnections()).toBeGreaterThan(before);
    // The client TLS files it wrote for the docker CLI are gone.
    expect(fs.readdirSync(os.tmpdir()).filter((f) => f.startsWith("private-registry-docker-tls-"))).toEqual([]);
    const pulled = client(`skopeo inspect --format '{{.Digest}}' docker://${REPO}`);
    expect(pulled).toEqual({ status: 0, out: `${pushedDigest}\n` });
  });

  test("no secret in clear in the backend's files: the engine's client key, the passwords, the SSH key", () => {
    const keyBody = (pem: string) =>
      pem
        .split("\n")
        .filter((l) => l && !l.startsWith("-----"))
        .join("");
    const secrets = [keyBody(engine.pem("engine-client.key")), keyBody(fs.readFileSync(d.sshKeyFile, "utf8")).slice(0, 60), password];
    const files = execFileSync("find", [path.join(d.workDir, "state"), "-type", "f"], { encoding: "utf8" })
      .split("\n")
      .filter(Boolean);
    expect(files.length).toBeGreaterThan(0);
    // In the stack's state file the provider's TLS material is ciphertext.
    const state = JSON.parse(
      fs.readFileSync(
        files.find((f) => f.endsWith(`/${d.id}.json`))!,
        "utf8",
      ),
    );
    const provider = state.checkpoint.latest.resources.find((r: { type: string }) => r.type === "pulumi:providers:docker");
    for (const k of ["caMaterial", "certMaterial", "keyMaterial"]) expect(provider.inputs[k].ciphertext).toEqual(expect.any(String));
    for (const file of files) {
      // JSON strings keep newlines escaped: compare without them.
      const text = fs.readFileSync(file, "utf8").replace(/\\n/g, "");
      for (const s of secrets) expect(text.includes(s)).toBe(false);
    }
  });

  test("a preview right after shows nothing to do", async () => {
    await d.stack.preview({ expectNoChanges: true });
  });

  test("destroy, through the same listener, removes the containers, network, volume and the client's CA", async () => {
    const before = engine.acceptedConnections();
    await d.destroy();
    expect(engine.acceptedConnections()).toBeGreaterThan(before);
    expect(d.existing()).toEqual([]);
    expect(client(`test -e /etc/docker/certs.d/${d.endpoint}/ca.crt`).status).not.toBe(0);
    expect(spawnSync("docker", ["image", "inspect", IMAGES.registry]).status).toBe(0);
  });
});
