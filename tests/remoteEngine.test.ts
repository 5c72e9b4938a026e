// The registry on "another machine": the Docker engine that runs it is config
// (dockerHost), reached through an explicit docker provider, not the default socket.
// The test puts this machine's engine behind a TCP listener that demands a client
// certificate (socat, TLS with client verification, on 127.0.0.1 only) and deploys a
// stack to tcp://127.0.0.1:PORT with the client TLS material as secrets: the real
// Pulumi engine (Automation API, file backend in a temporary folder, its own stack),
// the real providers, the local Debian images. A container of the ssh-client-host
// image on this test's network is a `clients` entry (client trust over SSH) and pushes
// and pulls; the registry is published on the network's host side (outside 127.0.0.0/8,
// so TLS is really verified). Traffic goes only to loopback and this test's network.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as https from "https";
import * as crypto from "crypto";
import { ChildProcess, execFileSync, spawn, spawnSync } from "child_process";
import { LocalWorkspace, Stack, ConfigMap } from "@pulumi/pulumi/automation";
import { setAllConfigSafely } from "./helpers/config";
import { docker, dockerQuiet, containerSh, waitForSsh, ShResult } from "./helpers/e2e";

jest.setTimeout(600_000);

const projectDir = path.join(__dirname, "..");
const id = `remote${process.pid % 100000}`;
const SUBNET = "10.251.71.0/24";
const GATEWAY = "10.251.71.1"; // the host's side of the test network: where the registry is published
const CLIENT_IP = "10.251.71.21";
const ENGINE_PORT = 19643; // socat: TLS with client verification, in front of the engine's socket
const PORT = 19644; // the registry's
const DOCKER_HOST = `tcp://127.0.0.1:${ENGINE_PORT}`;
const ENDPOINT = `${GATEWAY}:${PORT}`;
const DNS_NAME = "remote-registry.example.com"; // resolved to GATEWAY inside the client container only
const CLIENT_IMAGE = "private-registry/ssh-client-host:bookworm";
const REPO = `${ENDPOINT}/remote/tiny:1`;
const clientName = `${id}-client`;
const names = {
  registry: `${id}-registry`, proxy: `${id}-nginx`, network: `${id}-net`, volume: `${id}-data`, clients: `${id}-clients`,
  usersWriter: `${id}-users-writer`, usersVolume: `${id}-users`, socketVolume: `${id}-socket`,
};

const workDir = fs.mkdtempSync(path.join(os.tmpdir(), "remote-engine-test-"));
const stateDir = path.join(workDir, "state");
fs.mkdirSync(stateDir);
const pki = path.join(workDir, "pki");
fs.mkdirSync(pki);
const socatLog = path.join(workDir, "socat.log");
const sshKeyFile = path.join(workDir, "id_ed25519");
const env: Record<string, string> = {
  PULUMI_BACKEND_URL: `file://${stateDir}`,
  PULUMI_CONFIG_PASSPHRASE: crypto.randomBytes(16).toString("hex"),
  PULUMI_SKIP_UPDATE_CHECK: "true",
  PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
};

let stack: Stack | undefined;
let socat: ChildProcess | undefined;
let destroyed = false;
let caPem = "";
let password = "";
let pushedDigest = "";
const read = (file: string) => fs.readFileSync(path.join(pki, file), "utf8");
const client = (script: string, stdin = ""): ShResult => containerSh(clientName, script, stdin);

function openssl(...args: string[]): void {
  execFileSync("openssl", args, { cwd: pki, stdio: ["ignore", "ignore", "pipe"] });
}

/** A CA and a certificate it signs, EC P-256 (fast), with the given extensions. */
function makeCa(name: string): void {
  openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
    "-subj", `/CN=${id} ${name}`, "-keyout", `${name}.key`, "-out", `${name}.pem`,
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign");
}
function makeCert(name: string, ca: string, ext: string): void {
  openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
    "-subj", `/CN=${id} ${name}`, "-keyout", `${name}.key`, "-out", `${name}.csr`);
  fs.writeFileSync(path.join(pki, `${name}.ext`), ext);
  openssl("x509", "-req", "-in", `${name}.csr`, "-CA", `${ca}.pem`, "-CAkey", `${ca}.key`, "-CAcreateserial",
    "-days", "2", "-extfile", `${name}.ext`, "-out", `${name}.pem`);
}

/** GET on the engine's API through the listener: status, or the error's code. */
function engineGet(tls: { cert?: string; key?: string }): Promise<string> {
  return new Promise((resolve) => {
    https.get({ host: "127.0.0.1", port: ENGINE_PORT, path: "/_ping", ca: read("engine-ca.pem"), agent: false, ...tls }, (res) => {
      res.resume();
      resolve(String(res.statusCode));
    }).on("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
}

function httpsGet(pathName: string, auth?: string): Promise<{ status: number; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    https.get({ host: GATEWAY, port: PORT, path: pathName, ca: caPem, agent: false,
      headers: auth ? { Authorization: `Basic ${Buffer.from(auth).toString("base64")}` } : {} }, (res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0, headers: res.headers });
    }).on("error", reject);
  });
}

/** Connections socat accepted so far (its -d -d log). */
const acceptedConnections = () => (fs.existsSync(socatLog) ? fs.readFileSync(socatLog, "utf8").match(/accepting connection from/g) ?? [] : []).length;

/** This run's (or a killed earlier run's) containers, networks, volumes and stack files. */
function removeLeftovers(pattern: RegExp): void {
  const matching = (...args: string[]) => docker(...args).split("\n").filter((n) => pattern.test(n));
  const containers = matching("ps", "-a", "--format", "{{.Names}}");
  if (containers.length) dockerQuiet("rm", "-f", ...containers);
  for (const network of matching("network", "ls", "--format", "{{.Name}}")) dockerQuiet("network", "rm", network);
  for (const volume of matching("volume", "ls", "--format", "{{.Name}}")) dockerQuiet("volume", "rm", volume);
  for (const file of fs.readdirSync(projectDir)) {
    if (/^Pulumi\.remote[0-9]+\.yaml$/.test(file) && pattern.test(file.slice("Pulumi.".length))) fs.rmSync(path.join(projectDir, file));
  }
}

/** The stack's Docker objects that exist on the engine. */
function existing(): string[] {
  const list = (...args: string[]) => docker(...args).split("\n").filter((n) => n.startsWith(`${id}-`) && n !== clientName && n !== names.clients);
  return [...list("ps", "-a", "--format", "{{.Names}}"), ...list("network", "ls", "--format", "{{.Name}}"),
    ...list("volume", "ls", "--format", "{{.Name}}")].sort();
}

function config(clientCert: string): ConfigMap {
  const c = (value: string, secret = false) => ({ value, secret });
  return {
    "private-registry:dockerHost": c(DOCKER_HOST),
    "private-registry:dockerTlsCaCert": c(read("engine-ca.pem"), true),
    "private-registry:dockerTlsCert": c(read(`${clientCert}.pem`), true),
    "private-registry:dockerTlsKey": c(read(`${clientCert}.key`), true),
    "private-registry:ipAddresses[0]": c(GATEWAY),
    "private-registry:dnsNames[0]": c(DNS_NAME),
    "private-registry:port": c(String(PORT)),
    "private-registry:listenAddress": c(GATEWAY),
    "private-registry:users[0]": c("admin"),
    "private-registry:rsaBits": c("2048"),
    "private-registry:registryImage": c("private-registry/registry:2.8.2-debian"),
    "private-registry:nginxImage": c("private-registry/nginx:1.22.1-debian"),
    "private-registry:pullImages": c("false"),
    "private-registry:namePrefix": c(id),
    "private-registry:keepDataOnDestroy": c("false"),
    "private-registry:clients[0].host": c(CLIENT_IP),
    "private-registry:clients[0].privateKey": c(fs.readFileSync(sshKeyFile, "utf8"), true),
  };
}

beforeAll(async () => {
  execFileSync(path.join(projectDir, "scripts/ensure-debian-packages.sh"), ["socat=socat", "openssl=openssl", "ssh=openssh-client"], { stdio: "inherit" });
  removeLeftovers(/^remote[0-9]+-/);

  // The engine's PKI: its CA, a server certificate for 127.0.0.1, a client certificate;
  // and a client certificate from another CA, which the listener must refuse.
  makeCa("engine-ca");
  makeCert("engine-server", "engine-ca", `subjectAltName=IP:127.0.0.1,IP:${GATEWAY}\nextendedKeyUsage=serverAuth\n`);
  makeCert("engine-client", "engine-ca", "extendedKeyUsage=clientAuth\n");
  makeCa("other-ca");
  makeCert("other-client", "other-ca", "extendedKeyUsage=clientAuth\n");

  const log = fs.openSync(socatLog, "w");
  socat = spawn("socat", ["-d", "-d",
    `OPENSSL-LISTEN:${ENGINE_PORT},bind=127.0.0.1,reuseaddr,fork,cert=${pki}/engine-server.pem,key=${pki}/engine-server.key,cafile=${pki}/engine-ca.pem,verify=1`,
    "UNIX-CONNECT:/var/run/docker.sock"], { stdio: ["ignore", "ignore", log] });
  for (let i = 0; i < 50 && !/listening on/.test(fs.readFileSync(socatLog, "utf8")); i++) await new Promise((r) => setTimeout(r, 100));

  docker("network", "create", "--subnet", SUBNET, "--gateway", GATEWAY, names.clients);
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", sshKeyFile]);
  docker("run", "-d", "--name", clientName, "--network", names.clients, "--ip", CLIENT_IP, "--add-host", `${DNS_NAME}:${GATEWAY}`,
    "-e", `AUTHORIZED_KEY=${fs.readFileSync(`${sshKeyFile}.pub`, "utf8").trim()}`, CLIENT_IMAGE);
  // A tiny image to push: one file, imported, saved as an archive inside the client.
  fs.writeFileSync(path.join(workDir, "hello.txt"), `hello from ${id}\n`);
  execFileSync("sh", ["-c", `tar -C ${workDir} -c hello.txt | docker import - ${id}-tiny:1 >/dev/null && ` +
    `docker save ${id}-tiny:1 -o ${workDir}/tiny.tar && docker rmi ${id}-tiny:1 >/dev/null`]);
  docker("cp", `${workDir}/tiny.tar`, `${clientName}:/tmp/tiny.tar`);
  waitForSsh(sshKeyFile, "root", CLIENT_IP);

  stack = await LocalWorkspace.createStack({ stackName: id, workDir: projectDir }, { envVars: env });
});

afterAll(async () => {
  if (stack && !destroyed) await stack.destroy().catch(() => undefined);
  if (stack) await stack.workspace.removeStack(id, { force: true }).catch(() => undefined);
  socat?.kill();
  removeLeftovers(new RegExp(`^${id}-`));
  fs.rmSync(path.join(projectDir, `Pulumi.${id}.yaml`), { force: true });
  fs.rmSync(workDir, { recursive: true, force: true });
});

describe("the registry on an engine reached over tcp:// with client TLS", () => {
  test("the listener serves the engine only to a client certificate its CA signed", async () => {
    expect(await engineGet({ cert: read("engine-client.pem"), key: read("engine-client.key") })).toBe("200");
    expect(await engineGet({})).not.toBe("200");
    expect(await engineGet({ cert: read("other-client.pem"), key: read("other-client.key") })).not.toBe("200");
  });

  test("a client certificate the engine refuses: up fails before anything is created, naming dockerHost", async () => {
    await setAllConfigSafely(stack!, config("other-client"), true);
    let message = "";
    await stack!.up({ onOutput: (o) => { message += o; } }).catch((e: Error) => { message += e.message; });
    expect(message).toContain(`Invalid config "private-registry:dockerHost" = "${DOCKER_HOST}": the Docker engine there does not answer (`);
    expect(message).toContain("nothing was created");
    expect(message).not.toMatch(/PRIVATE KEY|BEGIN CERTIFICATE/);
    expect(existing()).toEqual([]);
    const resources = (await stack!.exportStack()).deployment.resources ?? [];
    expect(resources.filter((r: { type: string }) => !/^pulumi:pulumi:Stack$/.test(r.type))).toEqual([]);
  });

  test("up through the listener: the registry, its proxy, network and volume on that engine, same outputs", async () => {
    await setAllConfigSafely(stack!, config("engine-client"), true);
    const before = acceptedConnections();
    let output = "";
    await stack!.up({ onOutput: (o) => { output += o; } });
    expect(output).not.toMatch(/warning/i);
    // The engine was reached through the TLS listener.
    expect(acceptedConnections()).toBeGreaterThan(before);
    expect(existing()).toEqual([names.proxy, names.registry, names.usersWriter, names.volume, names.usersVolume, names.socketVolume, names.network].sort());
    expect(docker("port", names.proxy)).toBe(`443/tcp -> ${ENDPOINT}`);
    const outputs = await stack!.outputs();
    expect(Object.keys(outputs).sort()).toEqual(["caCertPem", "clientHosts", "containers", "credentials", "dockerLoginCommand",
      "dockerLoginCommands", "endpoints", "serverCertExpiresAt"]);
    expect(outputs.endpoints.value).toEqual([ENDPOINT, `${DNS_NAME}:${PORT}`]);
    expect(outputs.containers.value).toEqual({ registry: names.registry, proxy: names.proxy });
    expect(outputs.clientHosts.value).toEqual([`root@${CLIENT_IP}:22`]);
    expect(outputs.dockerLoginCommand.value).toContain(`docker login ${ENDPOINT} --username admin --password-stdin`);
    caPem = outputs.caCertPem.value;
    password = outputs.credentials.value.admin;
    // Every Docker resource uses the stack's own provider, whose TLS material is secret (exportStack shows it decrypted).
    const resources: { type: string; urn: string; provider?: string; inputs?: Record<string, unknown> }[] =
      (await stack!.exportStack()).deployment.resources;
    const dockerResources = resources.filter((r) => r.type.startsWith("docker:"));
    expect(dockerResources.length).toBeGreaterThanOrEqual(4);
    for (const r of dockerResources) expect(r.provider).toMatch(/pulumi:providers:docker::registry-docker::/);
    const provider = resources.find((r) => r.type === "pulumi:providers:docker");
    expect(provider?.inputs?.host).toBe(DOCKER_HOST);
    for (const k of ["caMaterial", "certMaterial", "keyMaterial"]) {
      expect((provider?.inputs?.[k] as Record<string, unknown>)?.["4dabf18193072939515e22adb298388d"]).toBe("1b47061264138c4ac30d75fd1eb44270");
    }
  });

  test("TLS verifies with the stack's CA at an address outside 127/8: 401 without credentials, 200 with them", async () => {
    const anonymous = await httpsGet("/v2/");
    expect([anonymous.status, anonymous.headers["docker-distribution-api-version"]]).toEqual([401, "registry/2.0"]);
    expect((await httpsGet("/v2/", `admin:${password}`)).status).toBe(200);
  });

  test("the client host got the CA over SSH and pushes and pulls the same digest", () => {
    for (const e of [ENDPOINT, `${DNS_NAME}:${PORT}`]) expect(client(`cat /etc/docker/certs.d/${e}/ca.crt`).out).toBe(caPem);
    expect(client(`skopeo login --username admin --password-stdin ${ENDPOINT}`, password)).toEqual({ status: 0, out: expect.stringContaining("Login Succeeded") });
    const push = client(`skopeo copy --digestfile /tmp/digest docker-archive:/tmp/tiny.tar docker://${REPO} >/dev/null && cat /tmp/digest`);
    expect(push).toEqual({ status: 0, out: expect.stringMatching(/^sha256:[0-9a-f]{64}$/) });
    pushedDigest = push.out;
    const pulled = client(`skopeo copy docker://${REPO} oci:/tmp/pulled:tiny >/dev/null && skopeo inspect --format '{{.Digest}}' docker://${REPO}`);
    expect(pulled).toEqual({ status: 0, out: `${pushedDigest}\n` });
  });

  test("`npm run gc` drives the same engine (the stack's dockerHost), and the image is still served after", () => {
    const before = acceptedConnections();
    const gc = spawnSync("npm", ["run", "--silent", "gc", "--", "--stack", id], {
      cwd: projectDir, env: { ...process.env, ...env }, encoding: "utf8", timeout: 300_000,
    });
    expect(gc.stderr).toContain(`[stack] Docker engine: ${DOCKER_HOST} (dockerHost of stack ${id})`);
    expect(gc.stderr).toContain(`stopping ${names.proxy}`);
    expect(gc.stderr).toContain("the registry is serving again");
    expect(gc.status).toBe(0);
    expect(acceptedConnections()).toBeGreaterThan(before);
    // The client TLS files it wrote for the docker CLI are gone.
    expect(fs.readdirSync(os.tmpdir()).filter((f) => f.startsWith("private-registry-docker-tls-"))).toEqual([]);
    const pulled = client(`skopeo inspect --format '{{.Digest}}' docker://${REPO}`);
    expect(pulled).toEqual({ status: 0, out: `${pushedDigest}\n` });
  });

  test("no secret in clear in the backend's files: the engine's client key, the passwords, the SSH key", () => {
    const keyBody = (pem: string) => pem.split("\n").filter((l) => l && !l.startsWith("-----")).join("");
    const secrets = [keyBody(read("engine-client.key")), keyBody(fs.readFileSync(sshKeyFile, "utf8")).slice(0, 60), password];
    const files = execFileSync("find", [stateDir, "-type", "f"], { encoding: "utf8" }).split("\n").filter(Boolean);
    expect(files.length).toBeGreaterThan(0);
    // In the stack's state file the provider's TLS material is ciphertext.
    const state = JSON.parse(fs.readFileSync(files.find((f) => f.endsWith(`/${id}.json`))!, "utf8"));
    const provider = state.checkpoint.latest.resources.find((r: { type: string }) => r.type === "pulumi:providers:docker");
    for (const k of ["caMaterial", "certMaterial", "keyMaterial"]) expect(provider.inputs[k].ciphertext).toEqual(expect.any(String));
    for (const file of files) {
      // JSON strings keep newlines escaped: compare without them.
      const text = fs.readFileSync(file, "utf8").replace(/\\n/g, "");
      for (const s of secrets) expect(text.includes(s)).toBe(false);
    }
  });

  test("a preview right after shows nothing to do", async () => {
    await stack!.preview({ expectNoChanges: true });
  });

  test("destroy, through the same listener, removes the containers, network, volume and the client's CA", async () => {
    const before = acceptedConnections();
    await stack!.destroy();
    destroyed = true;
    expect(acceptedConnections()).toBeGreaterThan(before);
    expect(existing()).toEqual([]);
    expect(client(`test -e /etc/docker/certs.d/${ENDPOINT}/ca.crt`).status).not.toBe(0);
    expect(spawnSync("docker", ["image", "inspect", "private-registry/registry:2.8.2-debian"]).status).toBe(0);
  });
});
