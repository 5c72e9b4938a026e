// The whole program deployed for real on this machine, with the provider
// plugins' work done by the harness in helpers/realize.ts (see there why):
// a real registry and nginx (local Debian images) on a private network, two
// SSH client hosts in containers, a real registry client (skopeo) on each, and
// this machine's Docker engine as a third client. Traffic goes only to
// loopback, to this test's own network's host address and to its containers.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as https from "https";
import { execFileSync } from "child_process";
import * as pulumi from "@pulumi/pulumi";
import { parseSettings, Settings } from "../lib/settings";
import { Realizer, docker, waitHealthy } from "./helpers/realize";
import { valueOf } from "./helpers/mocks";

jest.setTimeout(600_000);

const id = `rt${process.pid % 100000}`;
const CLIENT_SUBNET = "10.251.13.0/24";
const GATEWAY = "10.251.13.1"; // the host's own side of the test network: outside 127/8, so TLS is verified
const CLIENT_IPS = ["10.251.13.21", "10.251.13.22"];
const DNS_NAME = "registry.internal.test";
const PORT = 15443;
const ENDPOINT = `${GATEWAY}:${PORT}`;
const NAME_ENDPOINT = `${DNS_NAME}:${PORT}`;
const CLIENT_IMAGE = "private-registry/ssh-client-host:bookworm";

const workDir = fs.mkdtempSync(path.join(os.tmpdir(), "deployment-test-"));
const sshKeyFile = path.join(workDir, "id_ed25519");
const realizer = new Realizer({ workDir, sshKeyFile });
pulumi.runtime.setMocks(realizer.mocks(), "private-registry", "harness", false);
// Imported after the mocks are set.
import { PrivateRegistry } from "../components/privateRegistry";

const clientNames = CLIENT_IPS.map((_, i) => `${id}-client-${i + 1}`);
let settings: Settings;
let registry: PrivateRegistry;
let passwords: Record<string, string>;
let caPem: string;
let destroyed = false;

function clientSh(index: number, script: string, stdin = ""): { status: number; out: string } {
  try {
    const out = execFileSync("docker", ["exec", "-i", clientNames[index], "sh", "-c", script], { input: stdin, encoding: "utf8", stdio: ["pipe", "pipe", "pipe"] });
    return { status: 0, out };
  } catch (e) {
    const err = e as { status: number; stdout: string; stderr: string };
    return { status: err.status, out: `${err.stdout}${err.stderr}` };
  }
}

function httpsGet(pathName: string, auth?: string): Promise<{ status: number; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    https.get({ host: GATEWAY, port: PORT, path: pathName, ca: caPem, headers: auth ? { Authorization: `Basic ${Buffer.from(auth).toString("base64")}` } : {} }, (res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0, headers: res.headers });
    }).on("error", reject);
  });
}

/** Leftovers of an earlier run that was killed: its clients and its network hold the test subnet. */
function removeStaleRuns(): void {
  const stale = docker("network", "ls", "--filter", "name=^rt[0-9]+-clients$", "--format", "{{.Name}}").split("\n").filter(Boolean);
  for (const network of stale) {
    const containers = docker("network", "inspect", "-f", "{{range .Containers}}{{.Name}} {{end}}", network).split(" ").filter(Boolean);
    if (containers.length) docker("rm", "-f", ...containers);
    docker("network", "rm", network);
  }
}

beforeAll(async () => {
  removeStaleRuns();
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", sshKeyFile]);
  const publicKey = fs.readFileSync(`${sshKeyFile}.pub`, "utf8").trim();
  docker("network", "create", "--subnet", CLIENT_SUBNET, "--gateway", GATEWAY, `${id}-clients`);
  clientNames.forEach((name, i) => docker("run", "-d", "--name", name, "--network", `${id}-clients`, "--ip", CLIENT_IPS[i],
    "--add-host", `${DNS_NAME}:${GATEWAY}`, "-e", `AUTHORIZED_KEY=${publicKey}`, ...(i === 0 ? ["-e", "SSH_USER=deploy"] : []), CLIENT_IMAGE));
  // A tiny image to push: one file, imported.
  fs.writeFileSync(path.join(workDir, "hello.txt"), `hello from ${id}\n`);
  execFileSync("sh", ["-c", `tar -C ${workDir} -c hello.txt | docker import - ${id}-tiny:1 && docker save ${id}-tiny:1 -o ${workDir}/tiny.tar`]);
  docker("cp", `${workDir}/tiny.tar`, `${clientNames[0]}:/tmp/tiny.tar`);
  for (const [i, ip] of CLIENT_IPS.entries()) {
    for (let tries = 0; ; tries++) {
      try {
        realizer.ssh({ host: ip, port: 22, user: i === 0 ? "deploy" : "root" }, "true");
        break;
      } catch (e) {
        if (tries > 50) throw e;
        execFileSync("sleep", ["0.2"]);
      }
    }
  }

  const key = fs.readFileSync(sshKeyFile, "utf8");
  settings = parseSettings({
    ipAddresses: JSON.stringify([GATEWAY]),
    dnsNames: JSON.stringify([DNS_NAME]),
    port: String(PORT),
    listenAddress: GATEWAY,
    users: JSON.stringify(["admin", "ci"]),
    rsaBits: "2048",
    registryImage: "private-registry/registry:2.8.2-debian",
    nginxImage: "private-registry/nginx:1.22.1-debian",
    pullImages: "false",
    namePrefix: id,
    clients: JSON.stringify([
      { host: CLIENT_IPS[0], user: "deploy", sudo: true, trustOs: true, privateKey: key },
      { host: CLIENT_IPS[1], user: "root", privateKey: key },
    ]),
    localClient: "true",
  }, "private-registry", "harness");
  registry = new PrivateRegistry("registry", settings);
  passwords = await valueOf(registry.credentials);
  caPem = await valueOf(registry.caCertPem);
  // Wait for the last resources (the client commands) to be realized.
  for (let i = 0; i < 600 && realizer.realized.filter((r) => r.type.startsWith("command:")).length < 3; i++) {
    await new Promise((r) => setTimeout(r, 100));
  }
});

afterAll(() => {
  if (!destroyed) {
    try { realizer.destroy(false); } catch { /* best effort after a failure */ }
  }
  for (const c of clientNames) spawnQuiet("docker", ["rm", "-f", c]);
  spawnQuiet("docker", ["network", "rm", `${id}-clients`]);
  spawnQuiet("docker", ["volume", "rm", `${id}-data`]);
  spawnQuiet("docker", ["rmi", `${id}-tiny:1`, `${ENDPOINT}/harness/tiny:1`]);
  spawnQuiet("docker", ["logout", ENDPOINT]);
  fs.rmSync(workDir, { recursive: true, force: true });
});

function spawnQuiet(cmd: string, args: string[]) {
  try { execFileSync(cmd, args, { stdio: "ignore" }); } catch { /* already gone */ }
}

describe("a deployment of the program on this machine", () => {
  test("the client commands installed the CA for every endpoint on every client", () => {
    for (const i of [0, 1]) {
      for (const endpoint of [ENDPOINT, NAME_ENDPOINT]) {
        const { status, out } = clientSh(i, `cat /etc/docker/certs.d/${endpoint}/ca.crt`);
        expect(status).toBe(0);
        expect(out).toBe(caPem);
      }
    }
    expect(fs.readFileSync(`/etc/docker/certs.d/${ENDPOINT}/ca.crt`, "utf8")).toBe(caPem);
    // trustOs on the first client: a file under /usr/local/share/ca-certificates, in the bundle once.
    expect(clientSh(0, `cat /usr/local/share/ca-certificates/${id}.crt`).out).toBe(caPem);
    expect(clientSh(1, `ls /usr/local/share/ca-certificates/`).out.trim()).toBe("");
  });

  test("/v2/ answers 401 with the API version header without credentials, 200 with them", async () => {
    const anonymous = await httpsGet("/v2/");
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers["docker-distribution-api-version"]).toBe("registry/2.0");
    const wrong = await httpsGet("/v2/", "admin:not-the-password");
    expect(wrong.status).toBe(401);
    const ok = await httpsGet("/v2/", `admin:${passwords.admin}`);
    expect(ok.status).toBe(200);
    expect(ok.headers["docker-distribution-api-version"]).toBe("registry/2.0");
  });

  test("one client pushes with skopeo, the other pulls the same digest, both verifying TLS with the installed CA", () => {
    const login = (i: number, endpoint: string) => clientSh(i, `skopeo login --username ci --password-stdin ${endpoint}`, passwords.ci);
    expect(login(0, ENDPOINT)).toMatchObject({ status: 0 });
    const push = clientSh(0, `skopeo copy --digestfile /tmp/digest docker-archive:/tmp/tiny.tar docker://${ENDPOINT}/harness/tiny:1 && cat /tmp/digest`);
    expect(push.status).toBe(0);
    const pushed = push.out.trim().split("\n").pop();
    expect(pushed).toMatch(/^sha256:[0-9a-f]{64}$/);
    // The other client, through the DNS name this time.
    expect(login(1, NAME_ENDPOINT)).toMatchObject({ status: 0 });
    const pulled = clientSh(1, `skopeo copy docker://${NAME_ENDPOINT}/harness/tiny:1 oci:/tmp/pulled:tiny && skopeo inspect --format '{{.Digest}}' docker://${NAME_ENDPOINT}/harness/tiny:1`);
    expect(pulled.status).toBe(0);
    expect(pulled.out.trim().split("\n").pop()).toBe(pushed);
  });

  test("without the installed CA the same client fails certificate verification", () => {
    const result = clientSh(1, `mkdir -p /tmp/empty-certs && skopeo inspect --cert-dir /tmp/empty-certs docker://${ENDPOINT}/harness/tiny:1`);
    expect(result.status).not.toBe(0);
    expect(result.out).toMatch(/x509: certificate signed by unknown authority|certificate is not trusted/);
    // The client with the CA in its OS store trusts it even so.
    const trusted = clientSh(0, `skopeo inspect --cert-dir /tmp/empty-certs --format '{{.Digest}}' docker://${ENDPOINT}/harness/tiny:1`);
    expect(trusted.status).toBe(0);
  });

  test("the registry's own port is not reachable from the clients", () => {
    const registryIp = docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", `${id}-registry`);
    expect(registryIp).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    for (const target of [`${registryIp}:5000`, `${GATEWAY}:5000`]) {
      const result = clientSh(1, `curl -sS -m 3 -o /dev/null -w '%{http_code}' http://${target}/v2/`);
      expect(result.status).not.toBe(0);
    }
    expect(docker("port", `${id}-registry`)).toBe("");
  });

  test("this machine's Docker engine logs in, pushes and pulls over verified TLS", () => {
    execFileSync("docker", ["login", ENDPOINT, "--username", "admin", "--password-stdin"], { input: passwords.admin, stdio: ["pipe", "ignore", "pipe"] });
    docker("tag", `${id}-tiny:1`, `${ENDPOINT}/harness/tiny:1`);
    docker("push", `${ENDPOINT}/harness/tiny:1`);
    docker("rmi", `${ENDPOINT}/harness/tiny:1`);
    docker("pull", `${ENDPOINT}/harness/tiny:1`);
    expect(docker("image", "inspect", "-f", "{{.Id}}", `${ENDPOINT}/harness/tiny:1`)).toBe(docker("image", "inspect", "-f", "{{.Id}}", `${id}-tiny:1`));
  });

  test("the data survives replacing the registry container", () => {
    const container = realizer.find("docker:index/container:Container", "registry-container");
    docker("rm", "-f", container.inputs.name);
    realizer.createContainer(container.inputs);
    waitHealthy(container.inputs.name, 60);
    // nginx finds the new container by name (its resolver), and the image is still there.
    const pulled = clientSh(1, `skopeo inspect --format '{{.Digest}}' docker://${NAME_ENDPOINT}/harness/tiny:1`);
    expect(pulled.status).toBe(0);
    expect(pulled.out.trim()).toMatch(/^sha256:/);
  });

  test("teardown removes the client files, containers and network, and keeps the data volume", () => {
    realizer.destroy(settings.keepDataOnDestroy);
    destroyed = true;
    for (const i of [0, 1]) {
      expect(clientSh(i, "find /etc/docker/certs.d -mindepth 1").out.trim()).toBe("");
    }
    expect(clientSh(0, `ls /usr/local/share/ca-certificates/`).out.trim()).toBe("");
    expect(clientSh(0, `grep -c BEGIN /etc/ssl/certs/ca-certificates.crt`).out).not.toBe("");
    expect(fs.existsSync(`/etc/docker/certs.d/${ENDPOINT}`)).toBe(false);
    expect(docker("ps", "-a", "--filter", `name=^${id}-(registry|nginx)$`, "-q")).toBe("");
    expect(docker("network", "ls", "--filter", `name=^${id}-net$`, "-q")).toBe("");
    expect(docker("volume", "ls", "--filter", `name=^${id}-data$`, "-q")).not.toBe("");
  });
});
