// The swarm layout for real (docs/swarm.md): this machine's engine as the swarm manager, a
// second Docker engine in a container joined as a worker, a SeaweedFS S3 server the suite
// starts (tests/helpers/swarmCluster.ts, through the shared fixture's spec.swarm), the real
// Pulumi engine and providers, registry 3 replicas on the bucket, nginx TLS proxy replicas,
// an edge on each node, and an SSH client host that gets the CA and pushes and pulls with
// skopeo over verified TLS. Traffic goes only to loopback and to this suite's containers.
import { spawnSync } from "child_process";
import { deployment } from "./helpers/deployment";
import { docker } from "./helpers/e2e";
import { MAKE_IMAGE_SH } from "./helpers/ociImage";

jest.setTimeout(900_000);

const d = deployment({
  tag: "swarm",
  dnsName: "registry.example.com",
  clients: [{}],
  registry: "registry3",
  swarm: { workers: 1 },
  config: { "swarm.replicas": 2, "swarm.proxyReplicas": 2 },
});
const client = (script: string, stdin = "") => d.clients[0].sh(script, stdin);
const services = () => ({
  registry: d.names("registry"),
  proxy: d.names("proxy"),
  edge: d.names("edge"),
});
/** The worker's address: its own edge, a node of its own. */
const workerEndpoint = () => `${d.swarm?.workers[0].address}:${d.port}`;

/** Running containers of a service, by node ("" = this machine). */
function running(service: string): { node: string; id: string }[] {
  return (d.swarm?.serviceContainers(service) ?? []).filter((c) => c.state === "running").map(({ node, id }) => ({ node, id }));
}

async function until(what: string, ok: () => boolean, limitMs = 120_000): Promise<void> {
  for (const end = Date.now() + limitMs; !ok(); await new Promise((r) => setTimeout(r, 500))) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
  }
}

/**
 * A loop in the client host: `docker login`-free GETs of /v2/ with the admin password, one
 * every 50 ms over TLS verified with the CA the program installed, each answer's status
 * code on a line of /tmp/<name>.log, until /tmp/<name>.stop exists.
 */
function startRequestLoop(name: string, endpoint: string): void {
  client(`printf '%s' "$(cat)" > /tmp/${name}.pw`, d.passwords.admin);
  const script =
    `rm -f /tmp/${name}.log /tmp/${name}.stop; while [ ! -e /tmp/${name}.stop ]; do ` +
    `curl -s -o /dev/null -w '%{http_code}\\n' --max-time 10 --cacert /etc/docker/certs.d/${endpoint}/ca.crt ` +
    `-u "admin:$(cat /tmp/${name}.pw)" https://${endpoint}/v2/ >> /tmp/${name}.log; sleep 0.05; done`;
  const r = spawnSync("docker", ["exec", "-d", d.clients[0].name, "sh", "-c", script]);
  expect(r.status).toBe(0);
}
function stopRequestLoop(name: string): { ok: number; failed: string[] } {
  client(`touch /tmp/${name}.stop`);
  spawnSync("sleep", ["1"]);
  const codes = client(`cat /tmp/${name}.log`).out.split("\n").filter(Boolean);
  return { ok: codes.filter((c) => c === "200").length, failed: codes.filter((c) => c !== "200") };
}

/** The serial of the certificate served at `endpoint`, as the client host sees it. */
function servedSerial(endpoint: string): string {
  const r = spawnSync("sh", ["-c", `openssl s_client -connect ${endpoint} </dev/null 2>/dev/null | openssl x509 -noout -serial`], {
    encoding: "utf8",
  });
  return r.stdout.trim();
}

describe("the swarm layout on two engines with S3 storage", () => {
  test("up: registry and TLS proxy replicas spread over both nodes, an edge on each, the outputs of every layout", () => {
    const s = services();
    expect(d.outputs.containers.value).toEqual({ registry: s.registry, proxy: s.proxy });
    expect(d.outputs.endpoints.value).toEqual([d.endpoint, workerEndpoint(), d.nameEndpoint]);
    for (const service of [s.registry, s.proxy, s.edge]) {
      expect(
        running(service)
          .map((c) => c.node)
          .sort(),
      ).toEqual(["", d.swarm?.workers[0].name].sort());
    }
    expect(d.outputs.clientHosts.value).toEqual([`root@${d.clients[0].ip}:22`]);
  });

  test("login and push through this machine's edge, pull through the worker's: the same digest, the blobs in the bucket", () => {
    expect(d.clients[0].login("admin").status).toBe(0);
    expect(d.clients[0].login("admin", workerEndpoint()).status).toBe(0);
    expect(d.clients[0].login("admin", d.nameEndpoint).status).toBe(0);
    const digest = d.clients[0].push("team/app", 3, 256 << 10);
    expect(d.clients[0].pull("team/app", workerEndpoint())).toBe(digest);
    expect(d.clients[0].pull("team/app", d.nameEndpoint)).toBe(digest);
    const keys = d.swarm?.s3List("docker/registry/v2/repositories/team/app/") ?? [];
    expect(keys.length).toBeGreaterThan(0);
    // No password, no access: the proxy replicas check every request.
    expect(
      client(
        `curl -s -o /dev/null -w '%{http_code}' --cacert /etc/docker/certs.d/${workerEndpoint()}/ca.crt https://${workerEndpoint()}/v2/`,
      ).out,
    ).toBe("401");
  });

  test("a registry replica killed: pulls go to the other one meanwhile, and swarm starts a new one", async () => {
    const digest = d.clients[0].pull("team/app");
    const here = running(services().registry).find((c) => c.node === "");
    expect(here).toBeDefined();
    docker("kill", (here as { id: string }).id);
    for (let i = 0; i < 3; i++) expect(d.clients[0].pull("team/app")).toBe(digest);
    await until("two registry replicas again", () => running(services().registry).length === 2);
  });

  test("pushes while registry replicas are killed, then while the worker node loses power: each push succeeds or fails cleanly and succeeds on a retry, every digest checks", async () => {
    const made = client(
      `${MAKE_IMAGE_SH}\nfor i in 1 2 3 4 5 6 7 8; do make_image /tmp/loop-$i 2 131072 >/tmp/loop-$i.digest; done; echo made`,
    );
    expect(made.out.trim().split("\n").pop()).toBe("made");
    // Up to 3 tries each; a try that failed says why (skopeo's message).
    const pushLoop =
      "for i in 1 2 3 4 5 6 7 8; do n=0; until skopeo copy --digestfile /tmp/loop-$i.pushed oci:/tmp/loop-$i:latest " +
      `docker://${d.endpoint}/loop/img-$i >/dev/null 2>>/tmp/loop.err; do n=$((n+1)); [ $n -ge 3 ] && break; sleep 1; done; ` +
      'echo "$i $n $(cat /tmp/loop-$i.pushed 2>/dev/null)"; done';
    // Round 1: a registry replica killed on each node while the pushes run.
    const killer = setTimeout(() => {
      for (const c of running(services().registry)) {
        if (c.node === "") spawnSync("docker", ["kill", c.id]);
        else d.swarm?.onWorker(0, ["kill", c.id]);
      }
    }, 1500);
    const round1 = client(pushLoop);
    clearTimeout(killer);
    // Round 2: the worker node (its engine, its edge, its replicas) gone during the pushes.
    client("rm -f /tmp/loop-*.pushed");
    const power = setTimeout(() => d.swarm?.killWorker(0), 1500);
    const round2 = client(pushLoop);
    clearTimeout(power);
    for (const round of [round1, round2]) {
      const lines = round.out.trim().split("\n");
      expect(lines).toHaveLength(8);
      for (const line of lines) {
        const [i, , pushed] = line.split(" ");
        const want = client(`cat /tmp/loop-${i}.digest`).out.trim();
        expect({ i, pushed }).toEqual({ i, pushed: want });
        expect(d.clients[0].pull(`loop/img-${i}`)).toBe(want);
      }
    }
    await d.swarm?.startWorker(0);
    await until("the registry and proxy replicas back on both nodes", () =>
      [services().registry, services().proxy, services().edge].every((s) => running(s).length === 2),
    );
  });

  test("a new server certificate and a new user roll through the replicas: a client asking every 50 ms sees no failure", async () => {
    const before = servedSerial(d.endpoint);
    startRequestLoop("renewal", d.endpoint);
    await new Promise((r) => setTimeout(r, 2000));
    const urn = (await d.stack.exportStack()).deployment.resources.find(
      (r: { urn: string; type: string }) => r.type === "tls:index/locallySignedCert:LocallySignedCert" && r.urn.includes("registry-server"),
    ).urn;
    const renewal = await d.up({}, d.stack, { replace: [urn] });
    expect(renewal.plan.replaced).toContain(urn.split("::").pop());
    await d.up({ "users[1]": "ci" });
    await new Promise((r) => setTimeout(r, 2000));
    const loop = stopRequestLoop("renewal");
    expect(loop.failed).toEqual([]);
    expect(loop.ok).toBeGreaterThan(100);
    const after = servedSerial(d.endpoint);
    expect(after).not.toBe(before);
    expect(servedSerial(workerEndpoint())).toBe(after);
    expect(d.clients[0].login("ci").status).toBe(0);
    await d.expectNoChanges();
  });

  test("npm run gc refuses the swarm layout in one line and changes nothing", () => {
    const before = running(services().registry)
      .map((c) => c.id)
      .sort();
    const gc = d.npmRun("gc", ["--stack", d.stack.name]);
    expect(gc.status).not.toBe(0);
    expect(gc.stderr).toContain("uses the swarm layout");
    expect(
      running(services().registry)
        .map((c) => c.id)
        .sort(),
    ).toEqual(before);
  });

  test("destroy removes every service, secret and config, and keeps the bucket's contents", async () => {
    await d.destroy();
    for (const kind of ["service", "secret", "config"]) expect(docker(kind, "ls", "--format", "{{.Name}}")).toBe("");
    expect((d.swarm?.s3List("docker/registry/v2/repositories/team/app/") ?? []).length).toBeGreaterThan(0);
  });
});
