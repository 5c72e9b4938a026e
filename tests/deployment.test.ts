// The whole program deployed for real (the shared fixture, tests/helpers/deployment.ts:
// the real Pulumi engine through the Automation API, a file backend in a temporary
// folder, its own stack), the real provider plugins, a real registry and nginx (local
// Debian images) on a private network, two SSH client hosts in containers with skopeo
// (a registry client that reads certs.d like Docker), and this machine's Docker engine
// as a third client.
// In the order of Pulumi's own example tests: up, preview with no changes, the
// checks a user makes, a replacement, a second up with edits, destroy.
// Traffic goes only to this test's own networks' host addresses and its containers.
import * as fs from "fs";
import * as path from "path";
import * as https from "https";
import * as crypto from "crypto";
import { execFileSync, spawnSync } from "child_process";
import { OutputMap } from "@pulumi/pulumi/automation";
import { docker, dockerQuiet, ShResult } from "./helpers/e2e";
import { makeTestPki } from "./helpers/pki";
import { deployment, IMAGES, PROJECT_DIR, revealed } from "./helpers/deployment";

jest.setTimeout(900_000);

const DNS_NAME = "registry.e2e.test";
const REPO = "e2e/tiny:1";
const HOST_REPO = "e2e/host:1"; // what this machine's engine pushes
// The user's own file beside ca.crt on client 1: it must survive destroy.
const userFile = () => `/etc/docker/certs.d/${d.nameEndpoint}/mirror-ca.crt`;

// This machine is a client too (localClient), and checks (verifyFromClients) every endpoint
// from here, the test's DNS name included: it resolves here through /etc/hosts (hostsLine)
// while the test runs. A second host network: the IP SAN the second `up` adds.
const d = deployment({
  tag: "e2e",
  dnsName: DNS_NAME,
  hostsLine: true,
  extraNetworks: 1,
  // sudo and trustOs differ per client, so a swap of the two shows.
  clients: [{ user: "deploy", sudo: true }, { trustOs: true }],
  config: {
    listenAddress: "0.0.0.0",
    "users[1]": "ci",
    localClient: true,
    // The data volume exists before the first up (made in beforeStack, with a file in it):
    // adopted on request, and never deleted by destroy even though keepDataOnDestroy is false.
    adoptExistingVolume: true,
    deleteEnabled: true,
  },
  survivesDestroy: ["data"],
  beforeStack: (dep) => {
    for (const c of dep.clients) {
      // sudo logs every use: the test can tell whether the program used it.
      expect(c.sh("echo 'Defaults logfile=/var/log/sudo.log' >/etc/sudoers.d/00-log && chmod 440 /etc/sudoers.d/00-log").status).toBe(0);
    }
    // Client 1 keeps a file of its own in a certs.d folder that exists before the deploy;
    // client 2 has no /etc/docker at all, so the program creates (and must remove) it.
    const otherCa = fs.readFileSync(makeTestPki(fs.mkdtempSync(path.join(dep.workDir, "pki-")), ["DNS:mirror.example.com"]).caCert, "utf8");
    expect(dep.clients[0].sh(`mkdir -p "$(dirname ${userFile()})" && cat >${userFile()}`, otherCa).status).toBe(0);
    expect(dep.clients[1].sh("rm -rf /etc/docker").status).toBe(0);
    // A tiny image to push: one file, imported (kept here too: this machine's engine pushes it).
    fs.writeFileSync(path.join(dep.workDir, "hello.txt"), `hello from ${dep.id}\n`);
    execFileSync("sh", [
      "-c",
      `tar -C ${dep.workDir} -c hello.txt | docker import - ${dep.id}-tiny:1 >/dev/null && docker save ${dep.id}-tiny:1 -o ${dep.workDir}/tiny.tar`,
    ]);
    docker("cp", `${dep.workDir}/tiny.tar`, `${dep.clients[0].name}:/tmp/tiny.tar`);
    docker("volume", "create", dep.names("data"));
    docker("run", "--rm", "-v", `${dep.names("data")}:/data`, IMAGES.registry, "sh", "-c", "echo kept > /data/adopted.txt");
  },
});
const { id } = d;

let ALT_ENDPOINT = "";
let CLIENT_IPS: string[] = [];
let outputs: OutputMap;
let passwords: Record<string, string>;
let caPem: string;
let pushedDigest: string;
let upOutput = "";

const client = (i: number, script: string, stdin = ""): ShResult => d.clients[i].sh(script, stdin);

function httpsGet(host: string, pathName: string, auth?: string): Promise<{ status: number; headers: Record<string, unknown> }> {
  return d.https(pathName, { host, auth });
}

beforeAll(() => {
  ALT_ENDPOINT = `${d.extraGateways[0]}:${d.port}`;
  CLIENT_IPS = d.clients.map((c) => c.ip);
  outputs = d.first.outputs;
  upOutput = d.first.output;
  passwords = outputs.credentials.value;
  caPem = outputs.caCertPem.value;
});

afterAll(() => {
  // What this machine's engine holds of the test (the stack's own things go with the fixture's teardown).
  dockerQuiet("rmi", `${id}-tiny:1`, `${d.endpoint}/${HOST_REPO}`, `${id}-gca:1`, `${id}-gcb:1`, `${id}-gcbase:1`);
  dockerQuiet("logout", d.endpoint);
  // After a failed run: this run's endpoints in this machine's certs.d (destroy removes them otherwise).
  for (const endpoint of [d.endpoint, d.nameEndpoint, ALT_ENDPOINT]) {
    if (d.port) fs.rmSync(path.join("/etc/docker/certs.d", endpoint), { recursive: true, force: true });
  }
});

describe("a real `pulumi up` of the program", () => {
  test("succeeds with no warnings, says it adopted the volume, and outputs every endpoint, every client host and a login per user", () => {
    // The one warning is the one trustOs asks for (the CA is unconstrained); nothing else.
    const warnings = upOutput.split("\n").filter((line) => /warning:/i.test(line));
    expect(warnings.length).toBeGreaterThan(0);
    for (const line of warnings) expect(line).toContain(`trustOs: every program on ${CLIENT_IPS[1]} will trust any certificate`);
    expect(upOutput).toContain(
      `using the existing volume ${id}-data (it belongs to no stack of this program) as the registry's data, as adoptExistingVolume asks; destroy will keep it`,
    );
    expect(outputs.endpoints.value).toEqual([d.endpoint, d.nameEndpoint]);
    expect(outputs.clientHosts.value).toEqual([`deploy@${CLIENT_IPS[0]}:22`, `root@${CLIENT_IPS[1]}:22`, "local"]);
    expect(outputs.credentials.secret).toBe(true);
    expect(Object.keys(passwords).sort()).toEqual(["admin", "ci"]);
    expect(Object.keys(outputs.dockerLoginCommands.value).sort()).toEqual(["admin", "ci"]);
    expect(outputs.serverCertExpiresAt.value).toMatch(/^\d{4}-\d\d-\d\dT/);
  });

  test("a preview right after it shows no changes", async () => {
    const preview = await d.stack.preview({ expectNoChanges: true });
    expect(Object.keys(preview.changeSummary)).toEqual(["same"]);
  });

  test("the exported state and docker inspect hold no password, private key, bcrypt hash or HTTP secret in clear", () => {
    const resources = d.exportedResources();
    const reveal = (value: unknown): string => String(revealed(value));
    const secrets: [string, string][] = [];
    for (const r of resources) {
      const name = r.urn.split("::").pop();
      if (r.type === "random:index/randomPassword:RandomPassword") {
        secrets.push([`${name}.result`, reveal(r.outputs.result)], [`${name}.bcryptHash`, reveal(r.outputs.bcryptHash)]);
      }
      if (r.type === "tls:index/privateKey:PrivateKey") {
        // One line of the key's body: JSON escapes the newlines of a whole PEM.
        secrets.push([`${name}.privateKeyPem`, reveal(r.outputs.privateKeyPem).split("\n")[2]]);
      }
    }
    secrets.push(["ssh key", fs.readFileSync(d.sshKeyFile, "utf8").split("\n")[2]]);
    // The htpasswd nginx checks (hashed by the program): each hash, as the users writer uploads it.
    const writer = resources.find((r) => r.urn.endsWith("::registry-proxy-users-writer"));
    const uploads = revealed(writer?.outputs.uploads) as { file: string; content: string }[];
    const htpasswd = uploads.find((u) => u.file.endsWith("/htpasswd"))?.content ?? "";
    for (const line of htpasswd.split("\n").filter(Boolean)) secrets.push([`htpasswd ${line.split(":")[0]}`, line.split(":")[1]]);
    expect(secrets.filter(([n]) => n.startsWith("htpasswd "))).toHaveLength(2);
    // admin, ci, the HTTP secret; the CA and server keys; the SSH key.
    expect(secrets.filter(([n]) => n.endsWith(".result"))).toHaveLength(3);
    expect(secrets.filter(([n]) => n.endsWith(".privateKeyPem"))).toHaveLength(2);
    for (const [, value] of secrets) expect(value.length).toBeGreaterThan(20);

    // Every file the backend keeps (the stack, its backups and history).
    const stateFiles = execFileSync("find", [path.join(d.workDir, "state"), "-type", "f"], { encoding: "utf8" })
      .split("\n")
      .filter(Boolean);
    expect(stateFiles.some((f) => f.endsWith(`${id}.json`))).toBe(true);
    const stored = stateFiles.map((f) => fs.readFileSync(f, "utf8")).join("\n");
    const stackFile = fs.readFileSync(path.join(d.shellDir, `Pulumi.${id}.yaml`), "utf8");
    for (const [name, value] of secrets) {
      expect({ name, inState: stored.includes(value) }).toEqual({ name, inState: false });
      expect({ name, inStackConfig: stackFile.includes(value) }).toEqual({ name, inStackConfig: false });
    }
    // They are there, encrypted.
    expect(stored).toContain('"ciphertext"');
    // Nor in what `docker inspect` shows of the containers; the registry's HTTP secret is in a 0600 file.
    const inspected = docker("inspect", `${id}-registry`, `${id}-nginx`);
    for (const [name, value] of secrets) expect({ name, inInspect: inspected.includes(value) }).toEqual({ name, inInspect: false });
    expect(docker("exec", `${id}-registry`, "stat", "-c", "%a %U", "/etc/docker/registry/config.yml")).toBe("600 root");
  });

  test("the CA is installed for every endpoint on every client host, in the OS store only where asked, with sudo only where asked", () => {
    for (const i of [0, 1]) {
      for (const endpoint of [d.endpoint, d.nameEndpoint]) {
        expect(client(i, `cat /etc/docker/certs.d/${endpoint}/ca.crt`)).toEqual({ status: 0, out: caPem });
      }
    }
    expect(fs.readFileSync(`/etc/docker/certs.d/${d.endpoint}/ca.crt`, "utf8")).toBe(caPem);
    // trustOs on client 2 only: an anchor file, and the CA in the bundle exactly once.
    expect(client(1, `cat /usr/local/share/ca-certificates/${id}.crt`).out).toBe(caPem);
    const caBody = caPem.split("\n")[3];
    expect(client(1, `grep -c -F '${caBody}' /etc/ssl/certs/ca-certificates.crt`).out.trim()).toBe("1");
    expect(client(0, "ls /usr/local/share/ca-certificates/").out.trim()).toBe("");
    expect(client(0, `grep -c -F '${caBody}' /etc/ssl/certs/ca-certificates.crt`).out.trim()).toBe("0");
    // sudo on client 1 only.
    expect(client(0, "cat /var/log/sudo.log").out).toMatch(/USER=root ; COMMAND=\S*\/sh -c/);
    expect(client(1, "cat /var/log/sudo.log 2>/dev/null; true").out).toBe("");
  });

  test("/v2/ answers 401 with the API version header without credentials, 200 with them; / is not served", async () => {
    const anonymous = await httpsGet(d.gateway, "/v2/");
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers["docker-distribution-api-version"]).toBe("registry/2.0");
    expect((await httpsGet(d.gateway, "/v2/", "admin:not-the-password")).status).toBe(401);
    const ok = await httpsGet(d.gateway, "/v2/", `admin:${passwords.admin}`);
    expect(ok.status).toBe(200);
    expect(ok.headers["docker-distribution-api-version"]).toBe("registry/2.0");
    expect((await httpsGet(d.gateway, "/", `admin:${passwords.admin}`)).status).toBe(404);
    expect((await httpsGet(d.gateway, "/index.html")).status).toBe(404);
  });

  test("one client pushes with skopeo, the other pulls the same digest, both verifying TLS with the installed CA", () => {
    expect(client(0, `skopeo login --username ci --password-stdin ${d.endpoint}`, passwords.ci).status).toBe(0);
    const push = client(
      0,
      `skopeo copy --digestfile /tmp/digest docker-archive:/tmp/tiny.tar docker://${d.endpoint}/${REPO} && cat /tmp/digest`,
    );
    expect(push.status).toBe(0);
    pushedDigest = push.out.trim().split("\n").pop() ?? "";
    expect(pushedDigest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(client(1, `skopeo login --username ci --password-stdin ${d.nameEndpoint}`, passwords.ci).status).toBe(0);
    const pulled = client(
      1,
      `skopeo copy docker://${d.nameEndpoint}/${REPO} oci:/tmp/pulled:tiny >/dev/null && skopeo inspect --format '{{.Digest}}' docker://${d.nameEndpoint}/${REPO}`,
    );
    expect(pulled).toEqual({ status: 0, out: `${pushedDigest}\n` });
  });

  test("without the installed CA a client fails certificate verification; the OS-trust client does not need it", () => {
    const result = client(0, `mkdir -p /tmp/empty-certs && skopeo inspect --cert-dir /tmp/empty-certs docker://${d.endpoint}/${REPO}`);
    expect(result.status).not.toBe(0);
    expect(result.out).toMatch(/x509: certificate signed by unknown authority|certificate is not trusted/);
    expect(
      client(
        1,
        `mkdir -p /tmp/empty-certs && skopeo inspect --cert-dir /tmp/empty-certs --format '{{.Digest}}' docker://${d.nameEndpoint}/${REPO}`,
      ),
    ).toEqual({ status: 0, out: `${pushedDigest}\n` });
  });

  test("the registry is reachable from nowhere but nginx: no network of its own, nothing on 5000 for the clients or this host, not published", () => {
    expect(docker("inspect", "-f", "{{.HostConfig.NetworkMode}}", `${id}-registry`)).toBe("none");
    const registryIp = docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", `${id}-nginx`);
    expect(registryIp).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    for (const target of [`${registryIp}:5000`, `${d.gateway}:5000`]) {
      expect(client(1, `curl -sS -m 3 -o /dev/null http://${target}/v2/`).status).not.toBe(0);
    }
    // Any user with a shell here is on every bridge: the registry must not answer them either.
    const fromHost = spawnSync("curl", ["-sS", "-m", "3", "-o", "/dev/null", `http://${registryIp}:5000/v2/`], { encoding: "utf8" });
    expect(fromHost.status).not.toBe(0);
    expect(fromHost.stderr).toMatch(/Connection refused|Failed to connect/);
    // The only published port is the proxy's.
    expect(docker("port", `${id}-nginx`)).toBe(`443/tcp -> 0.0.0.0:${d.port}`);
    expect(docker("port", `${id}-registry`)).toBe("");
  });

  test("`npm run pulumi` reaches the stack, and the README's login line logs this machine's Docker in; it pushes and pulls", () => {
    const endpoints = d.npmPulumi(["stack", "output", "--stack", id, "endpoints", "--json"]);
    expect(endpoints.status).toBe(0);
    expect(JSON.parse(endpoints.stdout)).toEqual([d.endpoint, d.nameEndpoint]);
    const login = spawnSync("sh", ["-c", outputs.dockerLoginCommands.value.admin], {
      cwd: PROJECT_DIR,
      env: { ...process.env, ...d.env },
      encoding: "utf8",
    });
    expect(login.stdout).toContain("Login Succeeded");
    expect(login.status).toBe(0);
    docker("tag", `${id}-tiny:1`, `${d.endpoint}/${HOST_REPO}`);
    docker("push", `${d.endpoint}/${HOST_REPO}`);
    docker("rmi", `${d.endpoint}/${HOST_REPO}`);
    docker("pull", `${d.endpoint}/${HOST_REPO}`);
    expect(docker("image", "inspect", "-f", "{{.Id}}", `${d.endpoint}/${HOST_REPO}`)).toBe(
      docker("image", "inspect", "-f", "{{.Id}}", `${id}-tiny:1`),
    );
  });

  test("replacing the registry container replaces it alone (nginx keeps running: it reaches the new one on the socket), and keeps the data", async () => {
    const before = docker("inspect", "-f", "{{.Id}}", `${id}-registry`);
    const nginxBefore = docker("inspect", "-f", "{{.Id}}", `${id}-nginx`);
    const urn = (await d.stack.exportStack()).deployment.resources.find((r: { urn: string }) =>
      r.urn.endsWith("::registry-registry-container"),
    ).urn;
    const { plan } = await d.up({}, d.stack, { replace: [urn] });
    expect(plan).toMatchObject({ replaced: ["registry-registry-container"], created: [], deleted: [] });
    expect(docker("inspect", "-f", "{{.Id}}", `${id}-nginx`)).toBe(nginxBefore);
    expect(docker("inspect", "-f", "{{.Id}}", `${id}-registry`)).not.toBe(before);
    // nginx reaches the new container, and the image is still there.
    expect(client(1, `skopeo inspect --format '{{.Digest}}' docker://${d.nameEndpoint}/${REPO}`)).toEqual({
      status: 0,
      out: `${pushedDigest}\n`,
    });
  });

  test("a crashed registry or nginx process is back within seconds (restart: always), with the data", async () => {
    // Served end to end (nginx and the registry behind it), three times in a row.
    const served = async (): Promise<boolean> => {
      for (let i = 0; i < 3; i++) {
        try {
          if ((await httpsGet(d.gateway, "/v2/", `admin:${passwords.admin}`)).status !== 200) return false;
        } catch {
          return false;
        }
        await new Promise((r) => setTimeout(r, 300));
      }
      return true;
    };
    for (const container of [`${id}-registry`, `${id}-nginx`]) {
      const restarts = Number(docker("inspect", "-f", "{{.RestartCount}}", container));
      process.kill(Number(docker("inspect", "-f", "{{.State.Pid}}", container)), "SIGKILL");
      const started = Date.now();
      // The registry comes back in a new network namespace; nginx's health check notices and
      // restarts nginx into it. Measured here: about 1-2 s.
      while (Number(docker("inspect", "-f", "{{.RestartCount}}", container)) === restarts || !(await served())) {
        if (Date.now() - started > 60_000) throw new Error(`not served 60 s after ${container} was killed`);
        await new Promise((r) => setTimeout(r, 250));
      }
      expect(client(1, `skopeo inspect --format '{{.Digest}}' docker://${d.nameEndpoint}/${REPO}`)).toEqual({
        status: 0,
        out: `${pushedDigest}\n`,
      });
    }
  });

  test("an image deleted by digest gives its own layers back with `npm run gc`; an image sharing layers with it still pulls", () => {
    // Two images sharing a 1 MiB base layer, each with a layer of its own.
    const ctx = path.join(d.workDir, "gc");
    fs.mkdirSync(ctx);
    fs.writeFileSync(path.join(ctx, "base.bin"), crypto.randomBytes(1 << 20));
    fs.writeFileSync(path.join(ctx, "a.bin"), crypto.randomBytes(512 << 10));
    fs.writeFileSync(path.join(ctx, "b.bin"), crypto.randomBytes(256 << 10));
    execFileSync("sh", ["-c", `tar -C ${ctx} -c base.bin | docker import - ${id}-gcbase:1 >/dev/null`]);
    for (const name of ["a", "b"]) {
      execFileSync("docker", ["build", "-q", "-t", `${id}-gc${name}:1`, "-f", "-", ctx], {
        input: `FROM ${id}-gcbase:1\nCOPY ${name}.bin /\n`,
        env: { ...process.env, DOCKER_BUILDKIT: "0" },
      });
      execFileSync("sh", [
        "-c",
        `docker save ${id}-gc${name}:1 -o ${ctx}/${name}.tar && docker cp ${ctx}/${name}.tar ${d.clients[0].name}:/tmp/${name}.tar`,
      ]);
      expect(client(0, `skopeo copy docker-archive:/tmp/${name}.tar docker://${d.endpoint}/e2e/${name}:1`).status).toBe(0);
    }
    type Manifest = { config: { size: number }; layers: { digest: string; size: number }[] };
    const raw = (name: string) => client(0, `skopeo inspect --raw docker://${d.endpoint}/e2e/${name}:1`).out;
    const [rawA, rawB] = [raw("a"), raw("b")];
    const [a, b]: Manifest[] = [JSON.parse(rawA), JSON.parse(rawB)];
    const ownLayersOfA = a.layers.filter((l) => !b.layers.some((m) => m.digest === l.digest));
    expect(ownLayersOfA).toHaveLength(1);
    const digest = (name: string) => client(0, `skopeo inspect --format '{{.Digest}}' docker://${d.endpoint}/e2e/${name}:1`).out.trim();
    const [digestA, digestB] = [digest("a"), digest("b")];
    const blobBytes = () =>
      Number(
        docker(
          "exec",
          `${id}-registry`,
          "sh",
          "-c",
          "find /var/lib/registry/docker/registry/v2/blobs -type f -name data -exec stat -c %s {} + | awk '{ s += $1 } END { print s }'",
        ),
      );

    const before = blobBytes();
    expect(client(0, `skopeo delete docker://${d.endpoint}/e2e/a@${digestA}`).status).toBe(0);
    const gc = spawnSync("npm", ["run", "gc", "--", "--stack", id], {
      cwd: PROJECT_DIR,
      env: { ...process.env, ...d.env },
      encoding: "utf8",
      timeout: 300_000,
    });
    expect(gc.stderr).toContain("the registry is serving again");
    expect(gc.status).toBe(0);
    // Exactly A's manifest, its config and its own layer went; the shared base stayed.
    expect(before - blobBytes()).toBe(Buffer.byteLength(rawA) + a.config.size + ownLayersOfA[0].size);
    expect(client(1, `skopeo inspect --format '{{.Digest}}' docker://${d.nameEndpoint}/e2e/b:1`)).toEqual({
      status: 0,
      out: `${digestB}\n`,
    });
    expect(client(1, `skopeo copy docker://${d.nameEndpoint}/e2e/b:1 oci:/tmp/b:1 >/dev/null && echo pulled`)).toEqual({
      status: 0,
      out: "pulled\n",
    });
    expect(client(1, `skopeo inspect docker://${d.nameEndpoint}/e2e/a:1`).status).not.toBe(0);
    expect(client(1, `skopeo inspect --format '{{.Digest}}' docker://${d.nameEndpoint}/${REPO}`)).toEqual({
      status: 0,
      out: `${pushedDigest}\n`,
    });
  });

  describe("a second `up` that adds a pull-only user and an IP SAN", () => {
    let newPasswords: Record<string, string>;

    beforeAll(async () => {
      await d.setConfig({ "users[2]": "reader", "pullOnlyUsers[0]": "reader", "ipAddresses[1]": d.extraGateways[0] });
    });

    test("plans to replace only the certificate, the proxy and the client commands, and create the new password and its salt", async () => {
      const { plan } = await d.preview();
      expect(plan).toEqual({
        created: ["registry-users-reader", "registry-users-reader-salt"],
        updated: [],
        // New SAN: a new CSR and certificate; new files: a new nginx; new endpoints on the clients, checked again.
        replaced: [
          "registry-proxy-container",
          "registry-proxy-users-writer",
          "registry-server-cert",
          "registry-server-csr",
          ...[`registry-trust-${CLIENT_IPS[0]}-22`, `registry-trust-${CLIENT_IPS[1]}-22`, "registry-trust-local"].flatMap((n) => [
            n,
            `${n}-check`,
          ]),
        ].sort(),
        deleted: [],
      });
      const { outputs: after, output } = await d.up();
      upOutput += output;
      newPasswords = after.credentials.value;
      expect(after.endpoints.value).toEqual([d.endpoint, ALT_ENDPOINT, d.nameEndpoint]);
    });

    test("the other users' passwords do not change, and the new pull-only user pulls but cannot push", async () => {
      expect(newPasswords.admin).toBe(passwords.admin);
      expect(newPasswords.ci).toBe(passwords.ci);
      expect((await httpsGet(d.gateway, "/v2/", `reader:${newPasswords.reader}`)).status).toBe(200);
      expect(client(1, `skopeo login --username reader --password-stdin ${ALT_ENDPOINT}`, newPasswords.reader).status).toBe(0);
      // reader is pull-only: it pulls, and a push is denied.
      expect(client(1, `skopeo inspect --format '{{.Digest}}' docker://${ALT_ENDPOINT}/${REPO}`)).toEqual({
        status: 0,
        out: `${pushedDigest}\n`,
      });
      const push = client(1, `skopeo copy docker://${ALT_ENDPOINT}/${REPO} docker://${ALT_ENDPOINT}/e2e/copy:1`);
      expect(push.status).not.toBe(0);
      expect(push.out).toContain("this user may only pull");
    });

    test("clients trust the new certificate at the new address without a hand step, and the image is still there", async () => {
      expect(client(1, `cat /etc/docker/certs.d/${ALT_ENDPOINT}/ca.crt`)).toEqual({ status: 0, out: caPem });
      expect(client(1, `skopeo inspect --format '{{.Digest}}' docker://${ALT_ENDPOINT}/${REPO}`)).toEqual({
        status: 0,
        out: `${pushedDigest}\n`,
      });
      expect(client(0, `skopeo inspect --creds ci:${newPasswords.ci} --format '{{.Digest}}' docker://${ALT_ENDPOINT}/${REPO}`)).toEqual({
        status: 0,
        out: `${pushedDigest}\n`,
      });
      expect((await httpsGet(d.extraGateways[0], "/v2/")).status).toBe(401);
    });

    test("a preview after it shows no changes", async () => {
      await d.stack.preview({ expectNoChanges: true });
    });
  });

  /** Container IDs of the registry and nginx: equal before and after means neither was replaced nor recreated. */
  const servingContainerIds = () => docker("inspect", "--format", "{{.Id}} {{.State.StartedAt}}", `${id}-registry`, `${id}-nginx`);

  /**
   * Runs `during` while admin asks /v2/ every 50 ms over one kept-alive connection;
   * the answers' statuses, in order, to see whether the users change interrupted anyone.
   */
  async function adminRequestsDuring<T>(during: () => Promise<T>): Promise<{ result: T; statuses: number[] }> {
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
    const statuses: number[] = [];
    let done = false;
    const poller = (async () => {
      while (!done) {
        statuses.push(
          await new Promise<number>((resolve) => {
            https
              .get(
                {
                  host: d.gateway,
                  port: d.port,
                  path: "/v2/",
                  ca: caPem,
                  agent,
                  headers: { Authorization: `Basic ${Buffer.from(`admin:${passwords.admin}`).toString("base64")}` },
                },
                (res) => {
                  res.resume();
                  resolve(res.statusCode ?? 0);
                },
              )
              .on("error", () => resolve(0));
          }),
        );
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    try {
      return { result: await during(), statuses };
    } finally {
      done = true;
      await poller;
      agent.destroy();
    }
  }

  test("an `up` that adds a push user replaces no container: the user pushes at once, and nobody's requests fail meanwhile", async () => {
    // users: admin, ci, reader -> admin, ci, reader, deployer.
    await d.setConfig({ "users[3]": "deployer" });
    const before = servingContainerIds();
    const {
      result: { outputs: after, plan },
      statuses,
    } = await adminRequestsDuring(() => d.up());
    expect(plan).toEqual({
      created: ["registry-users-deployer", "registry-users-deployer-salt"],
      updated: [],
      deleted: [],
      // Only the one-shot writer of the users volume; nginx and the registry keep running.
      replaced: ["registry-proxy-users-writer"],
    });
    expect(servingContainerIds()).toBe(before);
    expect(statuses.length).toBeGreaterThan(5);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    const passwordsNow: Record<string, string> = after.credentials.value;
    expect([passwordsNow.admin, passwordsNow.ci]).toEqual([passwords.admin, passwords.ci]);
    expect(Object.keys(after.dockerLoginCommands.value).sort()).toEqual(["admin", "ci", "deployer", "reader"]);
    expect(
      client(
        0,
        `skopeo copy --dest-creds deployer:${passwordsNow.deployer} docker://${d.endpoint}/${REPO} docker://${d.endpoint}/e2e/deployed:1 >/dev/null && echo pushed`,
      ),
    ).toEqual({ status: 0, out: "pushed\n" });
  });

  test("an `up` that removes a user refuses that user at once, and only that user, with no container replaced", async () => {
    // users: admin, ci, reader, deployer -> admin, reader, deployer.
    await d.setConfig({ "users[1]": "reader", "users[2]": "deployer" });
    await d.setConfig({ "users[3]": null });
    // ci asks just before the up, and again as soon as it returns.
    expect((await httpsGet(d.gateway, "/v2/", `ci:${passwords.ci}`)).status).toBe(200);
    const before = servingContainerIds();
    const {
      result: { outputs: after, plan },
      statuses,
    } = await adminRequestsDuring(() => d.up());
    expect((await httpsGet(d.gateway, "/v2/", `ci:${passwords.ci}`)).status).toBe(401);
    expect(plan).toEqual({
      created: [],
      updated: [],
      deleted: ["registry-users-ci", "registry-users-ci-salt"],
      replaced: ["registry-proxy-users-writer"],
    });
    expect(servingContainerIds()).toBe(before);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    const passwordsNow: Record<string, string> = after.credentials.value;
    expect(Object.keys(passwordsNow).sort()).toEqual(["admin", "deployer", "reader"]);
    expect(passwordsNow.admin).toBe(passwords.admin);
    expect((await httpsGet(d.gateway, "/v2/", `admin:${passwords.admin}`)).status).toBe(200);
    expect((await httpsGet(d.gateway, "/v2/", `reader:${passwordsNow.reader}`)).status).toBe(200);
    // ci's push rights went with it: nothing is left in the users volume under its name.
    expect(docker("exec", `${id}-nginx`, "ls", "/etc/nginx/registry/users/may-push")).toBe("admin\ndeployer");
  });

  test("a users writer that fails fails the `up` with its output and changes no user; the next `up` runs it again and converges", async () => {
    // Someone made may-push/ a file in the users volume: the writer's mkdir fails.
    const inUsersVolume = (script: string) =>
      docker("run", "--rm", "--network", "none", "-v", `${id}-users:/u`, "--entrypoint", "sh", IMAGES.nginx, "-c", script);
    inUsersVolume("rm -rf /u/may-push && touch /u/may-push");
    await d.setConfig({ "users[3]": "late" });
    let failure = "";
    await d.stack.up().catch((e: Error) => {
      failure = e.message;
    });
    expect(failure).toContain(`the users writer (container ${id}-users-writer) exited with 1`);
    expect(failure).toMatch(/mkdir: cannot create directory '?may-push'?: File exists/);
    expect(failure).toContain("the users nginx checks were not changed");
    expect(failure).not.toMatch(/\n\s+at /); // one message, no stack trace
    const credentials: Record<string, string> = (await d.stack.outputs()).credentials.value;
    // The users nginx checks are the ones from before: no "late", admin still in.
    expect(docker("exec", `${id}-nginx`, "cut", "-d:", "-f1", "/etc/nginx/registry/users/htpasswd")).toBe("admin\nreader\ndeployer");
    expect((await httpsGet(d.gateway, "/v2/", `admin:${passwords.admin}`)).status).toBe(200);
    // The repair, then a plain `up` again: the pre-flight check sees the failed writer, which runs again.
    inUsersVolume("rm -f /u/may-push");
    const { output, plan, outputs: after } = await d.up();
    expect(output).toContain(`the users writer ${id}-users-writer failed in an earlier run (exit 1): it runs again`);
    expect(plan.replaced).toEqual(["registry-proxy-users-writer"]);
    const late: string = after.credentials.value.late;
    expect(late).toBeTruthy();
    expect(credentials.late === undefined || credentials.late === late).toBe(true);
    expect((await httpsGet(d.gateway, "/v2/", `late:${late}`)).status).toBe(200);
    expect(docker("exec", `${id}-nginx`, "ls", "/etc/nginx/registry/users/may-push")).toBe("admin\ndeployer\nlate");
    await d.stack.preview({ expectNoChanges: true });
  });

  test("destroy removes containers, network and every client-side file it made, keeps the user's files and the adopted volume", async () => {
    const destroyOutput = await d.destroy();
    expect(destroyOutput).not.toMatch(/warning:/i);
    // Client 1: certs.d existed before; only the user's own file is left in it.
    expect(client(0, "find /etc/docker/certs.d -mindepth 1 | sort").out.trim().split("\n")).toEqual([path.dirname(userFile()), userFile()]);
    // Client 2: the program made /etc/docker/certs.d; nothing of it is left.
    expect(client(1, "ls -d /etc/docker/certs.d 2>&1; true").out).toMatch(/No such file/);
    expect(client(1, "ls /usr/local/share/ca-certificates/").out.trim()).toBe("");
    expect(client(1, `grep -c -F '${caPem.split("\n")[3]}' /etc/ssl/certs/ca-certificates.crt`).out.trim()).toBe("0");
    for (const endpoint of [d.endpoint, d.nameEndpoint, ALT_ENDPOINT]) expect(fs.existsSync(`/etc/docker/certs.d/${endpoint}`)).toBe(false);
    expect(docker("ps", "-a", "--filter", `name=^${id}-(registry|nginx|users-writer)$`, "-q")).toBe("");
    expect(docker("network", "ls", "--filter", `name=^${id}-net$`, "-q")).toBe("");
    expect(docker("volume", "ls", "--filter", `name=^${id}-users$`, "-q")).toBe("");
    // The adopted volume stays, with what it held before, though keepDataOnDestroy is false.
    expect(docker("run", "--rm", "-v", `${id}-data:/data`, IMAGES.registry, "cat", "/data/adopted.txt")).toBe("kept");
  });
});
