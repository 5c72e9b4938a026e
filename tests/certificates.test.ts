// Day two for certificates on a real deployment (the shared fixture,
// tests/helpers/deployment.ts: real `pulumi up` through the Automation API, registry
// and nginx from the local images, an SSH client host with skopeo that reads certs.d
// like Docker): a server certificate renewed by a plain `up` inside its renewal
// window, and the CA rotated in three steps with a pull verified by the client's
// installed CA file after every step.
// Traffic goes only to this test's own network and containers.
import { spawnSync } from "child_process";
import { ConfigPatch, deployment } from "./helpers/deployment";

jest.setTimeout(1_200_000);

const d = deployment({
  tag: "cert",
  dnsName: "registry.day2.test",
  clients: [{}],
  config: { keyAlgorithm: "ECDSA" },
});
let digest = "";
const client = (script: string, stdin = "") => d.clients[0].sh(script, stdin);

/** The certificate nginx serves: serial, issuer CN and expiry, as openssl prints them. */
function servedCert(): { serial: string; issuer: string; notAfter: string } {
  const r = spawnSync(
    "sh",
    [
      "-c",
      `openssl s_client -connect ${d.endpoint} </dev/null 2>/dev/null | openssl x509 -noout -serial -issuer -enddate -nameopt multiline`,
    ],
    { encoding: "utf8" },
  );
  const field = (re: RegExp) => (re.exec(r.stdout) ?? ["", ""])[1].trim();
  return { serial: field(/serial=(\S+)/), issuer: field(/commonName\s*=\s*(.+)/), notAfter: field(/notAfter=(.+)/) };
}

/** The CA certificates in the client's certs.d file, by subject CN. */
function clientTrusts(): string[] {
  const r = client(
    `awk '/BEGIN CERT/{n++} {print > "/tmp/ca-part-" n}' /etc/docker/certs.d/${d.endpoint}/ca.crt && ` +
      "for f in /tmp/ca-part-*; do openssl x509 -noout -subject -nameopt multiline -in $f | sed -n 's/ *commonName *= *//p'; done; rm -f /tmp/ca-part-*",
  );
  expect(r.status).toBe(0);
  return r.out.trim().split("\n");
}

/** A pull that verifies TLS with the client's installed CA file only; returns the digest pulled. */
const pull = (): string => d.clients[0].pull("day2/app:1");

/** Whether a client holding only `pem` in its certs.d would verify the server. */
function verifiesWithOnly(pem: string): boolean {
  expect(client("rm -rf /tmp/only && mkdir -p /tmp/only && cat >/tmp/only/ca.crt", pem).status).toBe(0);
  return client(`skopeo inspect --cert-dir /tmp/only docker://${d.endpoint}/day2/app:1 >/dev/null`).status === 0;
}

/** An `up` with these keys changed (undefined removes one). */
async function upWith(changes: Record<string, string | undefined>) {
  const patch: ConfigPatch = Object.fromEntries(Object.entries(changes).map(([k, v]) => [k, v ?? null]));
  return d.up(patch);
}

beforeAll(() => {
  expect(d.clients[0].login().status).toBe(0);
  digest = d.clients[0].push("day2/app:1", 2, 65536);
  expect(pull()).toBe(digest);
});

describe("server certificate renewal", () => {
  test("inside the renewal window, a plain `up` issues a new certificate; nginx serves it; the client needs no change and loses nothing", async () => {
    // One hour of validity, renewed when an hour or less is left: every `up` is inside the window.
    const first = await upWith({ serverCertValidityHours: "1", serverCertEarlyRenewalHours: "1" });
    const before = servedCert();
    const clientFile = client(`sha256sum /etc/docker/certs.d/${d.endpoint}/ca.crt`).out;
    // How a user notices renewal is due: the preview plans to replace the certificate.
    const preview = await d.stack.preview();
    expect(preview.changeSummary.replace).toBeGreaterThanOrEqual(1);
    const renewed = await upWith({});
    expect(renewed.plan.replaced).toEqual(expect.arrayContaining(["registry-server-cert", "registry-proxy-container"]));
    expect(renewed.plan.replaced.filter((n) => n.startsWith("registry-trust"))).toEqual([]); // nothing on the client
    const after = servedCert();
    expect(after.serial).not.toBe(before.serial);
    expect(renewed.outputs.serverCertExpiresAt.value).not.toBe(first.outputs.serverCertExpiresAt.value);
    expect(Date.parse(renewed.outputs.serverCertExpiresAt.value) - Date.now()).toBeLessThanOrEqual(3_600_000);
    expect(client(`sha256sum /etc/docker/certs.d/${d.endpoint}/ca.crt`).out).toBe(clientFile);
    expect(pull()).toBe(digest);
    // Back to the days settings: a year's certificate again, and then a no-change preview.
    await upWith({ serverCertValidityHours: undefined, serverCertEarlyRenewalHours: undefined });
    expect(Date.parse(servedCert().notAfter) - Date.now()).toBeGreaterThan(300 * 86_400_000);
    const quiet = await d.stack.preview({ expectNoChanges: true });
    expect(Object.keys(quiet.changeSummary)).toEqual(["same"]);
    expect(pull()).toBe(digest);
  });
});

describe("CA rotation in three steps, every pull verified by the client's installed CA file", () => {
  let oldCa = "";
  let newCa = "";

  test("step 1 (caAlsoTrust: [2]): clients trust both CAs; the server is still signed by the old one", async () => {
    const { outputs, plan } = await upWith({ "caAlsoTrust[0]": "2" });
    expect(plan.created).toEqual(expect.arrayContaining(["registry-ca-g2-key", "registry-ca-g2-cert"]));
    expect(plan.replaced).toEqual([]); // the server certificate and nginx are untouched
    expect(clientTrusts()).toEqual(["Private Registry CA", "Private Registry CA (generation 2)"]);
    expect(servedCert().issuer).toBe("Private Registry CA");
    [oldCa, newCa] = (outputs.caCertPem.value as string).split(/(?<=-----END CERTIFICATE-----\n)/);
    expect(verifiesWithOnly(oldCa)).toBe(true);
    expect(verifiesWithOnly(newCa)).toBe(false);
    expect(pull()).toBe(digest);
  });

  test("step 2 (caGeneration: 2, caAlsoTrust: [1]): the server switches to a certificate from the new CA; clients still trust both", async () => {
    const { plan } = await upWith({ caGeneration: "2", "caAlsoTrust[0]": "1" });
    expect(plan.replaced).toEqual(expect.arrayContaining(["registry-server-cert", "registry-proxy-container"]));
    expect(plan.deleted).toEqual([]);
    expect(servedCert().issuer).toBe("Private Registry CA (generation 2)");
    expect(clientTrusts()).toEqual(["Private Registry CA (generation 2)", "Private Registry CA"]);
    expect(verifiesWithOnly(newCa)).toBe(true);
    expect(verifiesWithOnly(oldCa)).toBe(false);
    expect(pull()).toBe(digest);
  });

  test("step 3 (caAlsoTrust: []): the old CA is dropped from the clients and from the state", async () => {
    const { outputs, plan } = await upWith({ caAlsoTrust: undefined });
    expect(plan.deleted).toEqual(expect.arrayContaining(["registry-ca-key", "registry-ca-cert"]));
    expect(plan.replaced).toEqual([]);
    expect(clientTrusts()).toEqual(["Private Registry CA (generation 2)"]);
    expect(outputs.caCertPem.value).toBe(newCa);
    expect(pull()).toBe(digest);
    const quiet = await d.stack.preview({ expectNoChanges: true });
    expect(Object.keys(quiet.changeSummary)).toEqual(["same"]);
  });
});
