// Pull-through mirrors, for real and offline: two upstream registries that this suite
// starts (TLS with CAs of their own; one open, standing in for Docker Hub, one with
// credentials), mirrored by the stack. A client host pulls both by their own names
// with skopeo (registries.conf.d), this machine's dockerd pulls the Docker Hub stand-in
// (daemon.json's registry-mirrors) and containerd's client pulls it with hosts.toml;
// the second pulls come from the cache with both upstreams stopped; pushes to a mirror
// are refused; destroy puts every client file back as it was, byte for byte.
import * as fs from "fs";
import * as path from "path";
import { spawnSync } from "child_process";
import * as bcrypt from "bcryptjs";
import { deployment, Deployment, freePort, IMAGES } from "./helpers/deployment";
import { docker, dockerQuiet } from "./helpers/e2e";
import { makeEcCa, makeEcCert } from "./helpers/pki";
import { MAKE_IMAGE_SH } from "./helpers/ociImage";
import { AttemptLog, attemptArea, checkCredentialsRefused, checkEveryPathNeedsCredentials, lookAlikeCredentials } from "./helpers/attack";

const DAEMON_JSON = "/etc/docker/daemon.json";
// A daemon.json of this machine's own, spelled oddly: it must come back byte for byte.
const OWN_DAEMON_JSON = '{ "max-concurrent-downloads":3,\n   "registry-mirrors": [ ] }\n';
// A hosts.toml already on the client host (someone's own containerd setup for docker.io).
const THEIR_HOSTS_TOML = 'server = "https://registry-1.docker.io"\n# their own\n';
const VENDOR_USER = "puller";
const VENDOR_PASSWORD = "upstream-password-for-the-test";

interface Upstream {
  name: string;
  port: number;
  ca: string;
  container: string;
}
const upstream: Record<"hub" | "vendor", Upstream> = {
  hub: { name: "hub", port: 0, ca: "", container: "" },
  vendor: { name: "vendor", port: 0, ca: "", container: "" },
};
const mirrorPort = { hub: 0, vendor: 0 };
const digests: Record<string, string> = {};
let daemonJsonBefore: string | undefined;

/** A registry of its own for the test: TLS with its own CA, htpasswd auth when given a user. */
function startUpstream(d: Deployment, u: Upstream, auth?: { user: string; password: string }): void {
  const dir = path.join(d.workDir, `upstream-${u.name}`);
  fs.mkdirSync(dir);
  makeEcCa(dir, { key: "ca.key", cert: "ca.pem", commonName: `${d.id} upstream ${u.name} CA` });
  makeEcCert(dir, "server", "ca", `${d.id} upstream ${u.name}`, `subjectAltName=IP:${d.gateway}\nextendedKeyUsage=serverAuth\n`);
  u.ca = fs.readFileSync(path.join(dir, "ca.pem"), "utf8");
  if (auth) fs.writeFileSync(path.join(dir, "htpasswd"), `${auth.user}:${bcrypt.hashSync(auth.password, 4)}\n`);
  fs.writeFileSync(
    path.join(dir, "config.yml"),
    `version: 0.1
storage:
  filesystem:
    rootdirectory: /var/lib/registry
http:
  addr: :5000
  tls:
    certificate: /upstream/server.pem
    key: /upstream/server.key
${auth ? "auth:\n  htpasswd:\n    realm: upstream\n    path: /upstream/htpasswd\n" : ""}`,
  );
  for (const f of fs.readdirSync(dir)) fs.chmodSync(path.join(dir, f), 0o644);
  u.port = freePort();
  // Named <id>up-…: not the stack's (its teardown check looks at <id>-…), removed with the suite's leftovers.
  u.container = `${d.id}up-${u.name}`;
  docker(
    "run",
    "-d",
    "--name",
    u.container,
    "-p",
    `${d.gateway}:${u.port}:5000`,
    "-v",
    `${dir}:/upstream:ro`,
    "-v",
    `${dir}/config.yml:/etc/docker/registry/config.yml:ro`,
    IMAGES.registry,
  );
}

/** Pushes a new image straight to an upstream from the client host; returns its digest. */
function pushUpstream(d: Deployment, u: Upstream, repo: string, auth?: { user: string; password: string }): string {
  const c = d.clients[0];
  const endpoint = `${d.gateway}:${u.port}`;
  const dir = `/tmp/upstream-${u.name}`;
  expect(c.sh(`mkdir -p ${dir}/certs && cat >${dir}/certs/ca.crt`, u.ca).status).toBe(0);
  if (auth) {
    const login = c.sh(
      `skopeo login --authfile ${dir}/auth.json --cert-dir ${dir}/certs --username ${auth.user} --password-stdin ${endpoint}`,
      auth.password,
    );
    expect(login).toMatchObject({ status: 0 });
  }
  const img = `/tmp/img-up-${u.name}-${repo.replace(/\W/g, "_")}`;
  const pushed = c.sh(
    `${MAKE_IMAGE_SH}\nmake_image ${img} 3 65536 >/dev/null && ` +
      `skopeo copy ${auth ? `--authfile ${dir}/auth.json ` : ""}--dest-cert-dir ${dir}/certs --digestfile ${img}.digest oci:${img}:latest docker://${endpoint}/${repo} >/dev/null && cat ${img}.digest`,
  );
  expect(pushed.status).toBe(0);
  return pushed.out.trim();
}

const d = deployment({
  tag: "mirror",
  clients: [{}],
  dnsName: "registry.mirror.example",
  hostsLine: true,
  // distribution 2.x's proxy mode sends the upstream's credentials only to token (bearer)
  // realms, as Docker Hub's; an upstream with basic auth, as the vendor's here, needs 3.x.
  registry: "registry3",
  beforeStack: (d) => {
    daemonJsonBefore = fs.existsSync(DAEMON_JSON) ? fs.readFileSync(DAEMON_JSON, "utf8") : undefined;
    fs.mkdirSync(path.dirname(DAEMON_JSON), { recursive: true });
    fs.writeFileSync(DAEMON_JSON, OWN_DAEMON_JSON);
    startUpstream(d, upstream.hub);
    startUpstream(d, upstream.vendor, { user: VENDOR_USER, password: VENDOR_PASSWORD });
    digests.hub = pushUpstream(d, upstream.hub, "hubtest/app:1");
    digests.vendor = pushUpstream(d, upstream.vendor, "team/tool:1", { user: VENDOR_USER, password: VENDOR_PASSWORD });
    // The client host has containerd's folder with a hosts.toml of its own for docker.io.
    expect(
      d.clients[0].sh("mkdir -p /etc/containerd/certs.d/docker.io && cat >/etc/containerd/certs.d/docker.io/hosts.toml", THEIR_HOSTS_TOML)
        .status,
    ).toBe(0);
    mirrorPort.hub = freePort();
    do mirrorPort.vendor = freePort();
    while (mirrorPort.vendor === mirrorPort.hub);
  },
  config: (d) => ({
    localClient: true,
    "mirrors[0].upstream": `https://${d.gateway}:${upstream.hub.port}`,
    "mirrors[0].name": "docker.io",
    "mirrors[0].port": mirrorPort.hub,
    "mirrors[0].ca": upstream.hub.ca,
    "mirrors[0].anonymousPull": true,
    "mirrors[1].upstream": `https://${d.gateway}:${upstream.vendor.port}`,
    "mirrors[1].port": mirrorPort.vendor,
    "mirrors[1].ca": upstream.vendor.ca,
    "mirrors[1].username": VENDOR_USER,
    "mirrors[1].password": { secret: VENDOR_PASSWORD },
  }),
});

afterAll(() => {
  // This machine's daemon.json as it was before the suite (the deployment's own teardown ran first).
  if (daemonJsonBefore === undefined) fs.rmSync(DAEMON_JSON, { force: true });
  else fs.writeFileSync(DAEMON_JSON, daemonJsonBefore);
  spawnSync("docker", ["rmi", "-f", "hubtest/app:1"], { stdio: "ignore" });
  dockerQuiet("rm", "-f", upstream.hub.container, upstream.vendor.container);
});

const vendorName = () => `${d.gateway}:${upstream.vendor.port}`;
const hubEndpoint = () => `${d.gateway}:${mirrorPort.hub}`;
const vendorEndpoint = () => `${d.gateway}:${mirrorPort.vendor}`;
const ctr = (...args: string[]) =>
  spawnSync("ctr", ["--address", "/var/run/docker/containerd/containerd.sock", "--namespace", d.id, ...args], { encoding: "utf8" });

/** skopeo on the client host, by the upstream's own name; the digest, or what skopeo said. */
function skopeoPull(ref: string): { status: number; out: string } {
  const r = d.clients[0].sh(
    `rm -rf /tmp/m && skopeo copy --digestfile /tmp/m.digest docker://${ref} oci:/tmp/m:x >/dev/null && cat /tmp/m.digest`,
  );
  return { status: r.status, out: r.out.trim() };
}

describe("pull-through mirrors", () => {
  test("each mirror answers on its port over TLS verified by the stack's CA: the open one without a login, the other with one", async () => {
    expect(d.outputs.mirrors.value).toEqual({
      "docker.io": [hubEndpoint(), `${d.spec.dnsName}:${mirrorPort.hub}`],
      [vendorName()]: [vendorEndpoint(), `${d.spec.dnsName}:${mirrorPort.vendor}`],
    });
    expect((await d.https("/v2/", { port: mirrorPort.hub })).status).toBe(200);
    expect((await d.https("/v2/", { port: mirrorPort.vendor })).status).toBe(401);
    expect((await d.https("/v2/", { port: mirrorPort.vendor, auth: `admin:${d.passwords.admin}` })).status).toBe(200);
  });

  test("a mirror with a login refuses, like the registry, every method on every path without it, and look-alike credentials", async () => {
    const a = attemptArea(new AttemptLog(), "mirror");
    const target = { host: d.gateway, port: mirrorPort.vendor, ca: d.caPem, servername: d.spec.dnsName as string };
    await checkEveryPathNeedsCredentials(a, target);
    await checkCredentialsRefused(a, target, [
      ...lookAlikeCredentials(d.passwords.admin),
      ["the upstream's own credentials", `Basic ${Buffer.from(`${VENDOR_USER}:${VENDOR_PASSWORD}`).toString("base64")}`],
    ]);
    a.done();
  });

  test("the self-check of each client covered the mirror endpoints", () => {
    const checks = d
      .exportedResources()
      .filter((r) => r.type.startsWith("command:") && r.urn.endsWith("-check"))
      .map((r) => String(r.outputs.stdout));
    expect(checks).toHaveLength(2);
    for (const out of checks) {
      expect(out).toContain(
        `https://${hubEndpoint()}/v2/ answers from this host (TLS verified by the installed CA, 200 without credentials)`,
      );
      expect(out).toContain(
        `https://${vendorEndpoint()}/v2/ answers from this host (TLS verified by the installed CA, 401 without credentials)`,
      );
    }
  });

  test("the client host pulls both upstreams by their own names through the mirrors (skopeo, registries.conf.d), digests as upstream", () => {
    const dropIn = d.clients[0].sh(`cat /etc/containers/registries.conf.d/50-${d.id}-mirrors.conf`);
    expect(dropIn.out).toContain(`[[registry.mirror]]\nlocation = "${vendorEndpoint()}"`);
    expect(d.clients[0].login("admin", vendorEndpoint()).status).toBe(0);
    expect(skopeoPull("docker.io/hubtest/app:1")).toEqual({ status: 0, out: digests.hub });
    expect(skopeoPull(`${vendorName()}/team/tool:1`)).toEqual({ status: 0, out: digests.vendor });
    // Through the mirrors: each cache holds what was pulled.
    const cached = (mirror: string, repo: string) =>
      spawnSync("docker", [
        "exec",
        d.names(`mirror-${mirror}`),
        "ls",
        `/var/lib/registry/docker/registry/v2/repositories/${repo}/_manifests`,
      ]).status;
    expect(cached("docker.io", "hubtest/app")).toBe(0);
    expect(cached(vendorName().replace(":", "-"), "team/tool")).toBe(0);
    // containerd's file on the host replaced its own for the time of the stack.
    expect(d.clients[0].sh("cat /etc/containerd/certs.d/docker.io/hosts.toml").out).toContain(`[host."https://${hubEndpoint()}"]`);
  });

  test("this machine's dockerd pulls the Docker Hub stand-in through registry-mirrors, its own settings kept", () => {
    const config = JSON.parse(fs.readFileSync(DAEMON_JSON, "utf8"));
    expect(config).toEqual({
      "max-concurrent-downloads": 3,
      "registry-mirrors": [`https://${hubEndpoint()}`, `https://${d.spec.dnsName}:${mirrorPort.hub}`],
    });
    expect(docker("info", "--format", "{{json .RegistryConfig.Mirrors}}")).toContain(`https://${hubEndpoint()}/`);
    docker("pull", "-q", "hubtest/app:1");
    expect(docker("image", "inspect", "--format", "{{json .RepoDigests}}", "hubtest/app:1")).toContain(digests.hub);
  });

  test("containerd's client pulls it with the hosts.toml written on this machine", () => {
    expect(fs.readFileSync("/etc/containerd/certs.d/docker.io/hosts.toml", "utf8")).toContain(
      `ca = "/etc/docker/certs.d/${hubEndpoint()}/ca.crt"`,
    );
    const fetched = ctr("content", "fetch", "--hosts-dir", "/etc/containerd/certs.d", "docker.io/hubtest/app:1");
    expect({ status: fetched.status, stderr: fetched.stderr }).toEqual({ status: 0, stderr: "" });
    expect(ctr("content", "ls", "--quiet").stdout).toContain(digests.hub);
  });

  test("a push to a mirror is refused with a message that says why (while its upstream answers: its blob check goes through first)", async () => {
    const c = d.clients[0];
    expect(c.sh(`${MAKE_IMAGE_SH}\nmake_image /tmp/refused 1 1024`).status).toBe(0);
    const push = c.sh(`skopeo copy oci:/tmp/refused:latest docker://${vendorEndpoint()}/team/new:1`);
    expect(push.status).not.toBe(0);
    expect(push.out).toMatch(/read-only mirror of .*: pushes go to the registry itself/);
    const open = c.sh(
      `curl -s --cacert /etc/docker/certs.d/${hubEndpoint()}/ca.crt -X POST -w ' %{http_code}' https://${hubEndpoint()}/v2/hubtest/app/blobs/uploads/`,
    );
    expect(open.out).toMatch(/UNSUPPORTED.* 405$/);
  });

  test("with both upstreams stopped, the second pulls come from the caches", () => {
    docker("stop", upstream.hub.container, upstream.vendor.container);
    expect(skopeoPull("docker.io/hubtest/app:1")).toEqual({ status: 0, out: digests.hub });
    expect(skopeoPull(`${vendorName()}/team/tool:1`)).toEqual({ status: 0, out: digests.vendor });
    docker("rmi", "hubtest/app:1");
    docker("pull", "-q", "hubtest/app:1");
    expect(docker("image", "inspect", "--format", "{{json .RepoDigests}}", "hubtest/app:1")).toContain(digests.hub);
    // Without the mirror the upstream is gone: the pull really came from the cache.
    expect(d.clients[0].sh(`curl -s --max-time 5 -o /dev/null https://${vendorName()}/v2/`).status).not.toBe(0);
  });

  test("destroy puts every client file back as it was: daemon.json byte for byte, the client host's hosts.toml, nothing of ours left", async () => {
    await d.destroy();
    expect(fs.readFileSync(DAEMON_JSON, "utf8")).toBe(OWN_DAEMON_JSON);
    expect(docker("info", "--format", "{{json .RegistryConfig.Mirrors}}")).not.toContain(hubEndpoint());
    expect(fs.existsSync("/etc/containerd/certs.d")).toBe(false);
    expect(fs.existsSync("/var/lib/private-registry")).toBe(false);
    const c = d.clients[0];
    expect(c.sh("cat /etc/containerd/certs.d/docker.io/hosts.toml").out).toBe(THEIR_HOSTS_TOML);
    expect(c.sh(`ls /etc/containerd/certs.d /etc/containers/registries.conf.d; ls /var/lib/private-registry 2>&1`).out).toBe(
      "/etc/containerd/certs.d:\ndocker.io\n\n/etc/containers/registries.conf.d:\nshortnames.conf\nls: cannot access '/var/lib/private-registry': No such file or directory\n",
    );
    // containerd's namespace of this suite goes too.
    for (const digest of ctr("content", "ls", "--quiet").stdout.split("\n").filter(Boolean)) ctr("content", "rm", digest);
    ctr("namespaces", "rm", d.id);
  });
});
