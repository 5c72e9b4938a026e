// Mutual TLS on a real deployment (the shared fixture, tests/helpers/deployment.ts:
// real `pulumi up` through the Automation API, registry and nginx from the local
// images, two SSH client hosts with skopeo, which reads certs.d, client certificates
// included, like Docker): one certificate per host installed where Docker looks,
// nothing served without one, and a host removed from the config refused at the next
// `up` although its certificate is still signed by the CA (nginx's allow list of the
// current hosts' certificates).
// Traffic goes only to this test's own network and containers.
import { spawnSync } from "child_process";
import { deployment } from "./helpers/deployment";
import { Samples, startSampling } from "./helpers/processSampler";
import { MAKE_IMAGE_SH } from "./helpers/ociImage";

jest.setTimeout(900_000);

// The first `up` runs below, inside the sampling.
const d = deployment({
  tag: "mtls",
  dnsName: "registry.mtls.test",
  clients: [{}, {}],
  config: { keyAlgorithm: "ECDSA", clientCertificates: true },
  up: false,
});
let ENDPOINT = "";
let CERTS = "";
let CLIENT_IPS: string[] = [];
let password = "";
let digest = "";
const client = (i: number, script: string, stdin = "") => d.clients[i].sh(script, stdin);

/** The status line nginx answers GET /v2/ with, verifying TLS with the installed CA, with the given extra curl options. */
function status(i: number, curlOptions: string): string {
  const r = client(
    i,
    `curl -sS --noproxy '*' --max-time 10 --cacert ${CERTS}/ca.crt ${curlOptions} -o /tmp/body -w '%{http_code}' https://${ENDPOINT}/v2/; echo; cat /tmp/body`,
  );
  return r.out.trim();
}

let samples: Samples = { host: "", clients: {} };

beforeAll(async () => {
  ENDPOINT = d.endpoint;
  CERTS = `/etc/docker/certs.d/${ENDPOINT}`;
  CLIENT_IPS = d.clients.map((c) => c.ip);
  // What other users could read while the keys travel: process lists and environments, here and on both hosts.
  const stopSampling = startSampling(
    d.workDir,
    d.clients.map((c) => c.name),
    true,
  );
  try {
    const up = await d.up();
    password = up.outputs.credentials.value.admin;
    // Controls: a process with a marker in its environment and its arguments, on each machine, for a second.
    const control = "env SAMPLER_CONTROL=sampler-control-env sh -c 'sleep 1; : sampler-control-args'";
    spawnSync("sh", ["-c", control]);
    for (const c of d.clients) c.sh(control);
  } finally {
    samples = await stopSampling();
  }
});

describe("clientCertificates: mutual TLS with one certificate per client host", () => {
  test("no client key anywhere but stdin: no PRIVATE KEY text in the process lists or process environments of this machine or the client hosts during `up`", () => {
    for (const [where, text] of [["this machine", samples.host], ...Object.entries(samples.clients)]) {
      // The sampler saw both kinds of place (the controls).
      expect({ where, env: text.includes("SAMPLER_CONTROL=sampler-control-env"), args: text.includes("sampler-control-args") }).toEqual({
        where,
        env: true,
        args: true,
      });
      // No key of the kind the tls provider makes (the CA's, the server's, the hosts' client keys), anywhere.
      expect({ where, keyLines: text.split("\n").filter((l) => /BEGIN (RSA |EC )?PRIVATE KEY/.test(l)) }).toEqual({ where, keyLines: [] });
      // The only PRIVATE KEY text at all: the configured SSH key (a config secret) in PULUMI_CONFIG, the
      // environment in which Pulumi's language host hands the decrypted config to the program on this
      // machine (/proc/PID/environ is readable by that user and root only). Never on a client host.
      const other = text
        .split("\n")
        .filter((l) => l.includes("PRIVATE KEY") && !(where === "this machine" && l.startsWith("PULUMI_CONFIG=")));
      expect({ where, other }).toEqual({ where, other: [] });
    }
  });

  test("each host has its own client.cert (0644) and client.key (0600, root) beside ca.crt, for client authentication only", () => {
    const serials: string[] = [];
    for (const i of [0, 1]) {
      expect(client(i, `stat -c '%n %a %U' ${CERTS}/ca.crt ${CERTS}/client.cert ${CERTS}/client.key`).out.trim().split("\n")).toEqual([
        `${CERTS}/ca.crt 644 root`,
        `${CERTS}/client.cert 644 root`,
        `${CERTS}/client.key 600 root`,
      ]);
      const text = client(i, `openssl x509 -in ${CERTS}/client.cert -noout -subject -serial -ext extendedKeyUsage -nameopt multiline`).out;
      expect(text).toMatch(new RegExp(`commonName\\s*=\\s*root@${CLIENT_IPS[i].replace(/\./g, "\\.")}:22`));
      expect(text).toContain("TLS Web Client Authentication");
      expect(text).not.toContain("Server Authentication");
      serials.push((/serial=(\S+)/.exec(text) ?? ["", ""])[1]);
      // The key belongs to the certificate.
      expect(
        client(
          i,
          `[ "$(openssl pkey -in ${CERTS}/client.key -pubout)" = "$(openssl x509 -in ${CERTS}/client.cert -noout -pubkey)" ] && echo match`,
        ).out,
      ).toBe("match\n");
    }
    expect(serials[0]).not.toBe(serials[1]);
  });

  test("skopeo (reading certs.d like Docker) pushes from one host and pulls the same digest on the other", () => {
    for (const i of [0, 1]) expect(client(i, `skopeo login --username admin --password-stdin ${ENDPOINT}`, password).status).toBe(0);
    const made = client(0, `${MAKE_IMAGE_SH}\nmake_image /tmp/app 2 65536`);
    digest = made.out.trim();
    expect(client(0, `skopeo copy oci:/tmp/app:latest docker://${ENDPOINT}/mtls/app:1 >/dev/null`).status).toBe(0);
    const pulled = client(
      1,
      `skopeo copy --digestfile /tmp/pd docker://${ENDPOINT}/mtls/app:1 oci:/tmp/pulled:x >/dev/null && cat /tmp/pd`,
    );
    expect(pulled.out.trim()).toBe(digest);
  });

  test("with its certificate a host gets to basic auth (401 without a password); without one, or with one from another CA, nothing is served", () => {
    // (A copy without the colon of host:port in its path, which curl's --cert would read as a password.)
    expect(client(0, `mkdir -p /tmp/mine && cp ${CERTS}/client.cert ${CERTS}/client.key /tmp/mine/`).status).toBe(0);
    expect(status(0, "--cert /tmp/mine/client.cert --key /tmp/mine/client.key")).toMatch(/^401\n/);
    const none = status(0, "");
    expect(none).toMatch(/^400\n/);
    expect(none).toContain("No required SSL certificate was sent");
    // A certificate for the same name from a CA of the host's own making.
    expect(
      client(
        0,
        "cd /tmp && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout rogue.key -out rogue.crt " +
          `-days 1 -subj '/CN=root@${CLIENT_IPS[0]}:22' -addext extendedKeyUsage=clientAuth 2>/dev/null && echo made`,
      ).out,
    ).toBe("made\n");
    const rogue = status(0, "--cert /tmp/rogue.crt --key /tmp/rogue.key");
    expect(rogue).toMatch(/^400\n/);
    expect(rogue).toContain("The SSL certificate error");
    // skopeo with the CA alone (no client certificate) cannot pull.
    expect(
      client(
        0,
        `mkdir -p /tmp/ca-only && cp ${CERTS}/ca.crt /tmp/ca-only/ && skopeo inspect --cert-dir /tmp/ca-only docker://${ENDPOINT}/mtls/app:1`,
      ).status,
    ).not.toBe(0);
  });

  test("a host removed from the config is refused at the next `up`, although its certificate is still signed by the CA", async () => {
    // What an attacker who kept the removed host's files would hold.
    expect(client(1, `mkdir -p /tmp/kept && cp ${CERTS}/client.cert ${CERTS}/client.key ${CERTS}/ca.crt /tmp/kept/`).status).toBe(0);
    const before = status(1, "--cert /tmp/kept/client.cert --key /tmp/kept/client.key");
    expect(before).toMatch(/^401\n/);
    const up = await d.up({ "clients[1]": null });
    expect(up.result.summary.result).toBe("succeeded");
    expect(up.outputs.clientHosts.value).toEqual([`root@${CLIENT_IPS[0]}:22`]);
    // The host's own files went with it (its remove script ran).
    expect(client(1, `ls ${CERTS} 2>/dev/null; true`).out.trim()).toBe("");
    const after = client(
      1,
      `curl -sS --noproxy '*' --max-time 10 --cacert /tmp/kept/ca.crt --cert /tmp/kept/client.cert --key /tmp/kept/client.key ` +
        `-H @- -o /tmp/body -w '%{http_code}' https://${ENDPOINT}/v2/; echo; cat /tmp/body`,
      `Authorization: Basic ${Buffer.from(`admin:${password}`).toString("base64")}\n`,
    ).out;
    expect(after).toMatch(/^403\n/);
    expect(after).toContain('"code":"DENIED"');
    // The host that stays still pulls.
    const pulled = client(
      0,
      `rm -rf /tmp/p && skopeo copy --digestfile /tmp/pd docker://${ENDPOINT}/mtls/app:1 oci:/tmp/p:x >/dev/null && cat /tmp/pd`,
    );
    expect(pulled.out.trim()).toBe(digest);
    const quiet = await d.stack.preview({ expectNoChanges: true });
    expect(Object.keys(quiet.changeSummary)).toEqual(["same"]);
  });
});
