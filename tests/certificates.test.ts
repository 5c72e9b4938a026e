// Day two for certificates on a real deployment (real `pulumi up` through the
// Automation API, registry and nginx from the local images, an SSH client host
// with skopeo that reads certs.d like Docker): a server certificate renewed by a
// plain `up` inside its renewal window, and the CA rotated in three steps with a
// pull verified by the client's installed CA file after every step.
// Traffic goes only to this test's own network and containers.
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { spawnSync } from "child_process";
import { LocalWorkspace, Stack, ConfigMap } from "@pulumi/pulumi/automation";
import { setAllConfigSafely } from "./helpers/config";
import { containerSh, docker, dockerQuiet, planRecorder, waitForSsh } from "./helpers/e2e";
import { MAKE_IMAGE_SH } from "./helpers/ociImage";

jest.setTimeout(1_200_000);

const projectDir = path.join(__dirname, "..");
const id = `cert${process.pid % 100000}`;
const SUBNET = "10.251.81.0/24";
const GATEWAY = "10.251.81.1"; // outside 127/8: the client verifies TLS
const CLIENT_IP = "10.251.81.21";
const PORT = 19743;
const ENDPOINT = `${GATEWAY}:${PORT}`;
const clientName = `${id}-client`;
const workDir = fs.mkdtempSync(path.join(os.tmpdir(), "certificates-test-"));
const sshKeyFile = path.join(workDir, "id_ed25519");
const env: Record<string, string> = {
  PULUMI_BACKEND_URL: `file://${path.join(workDir, "state")}`,
  PULUMI_CONFIG_PASSPHRASE: crypto.randomBytes(16).toString("hex"),
  PULUMI_SKIP_UPDATE_CHECK: "true",
  PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
};
fs.mkdirSync(path.join(workDir, "state"));

let stack: Stack;
let digest = "";
const client = (script: string, stdin = "") => containerSh(clientName, script, stdin);

/** The certificate nginx serves: serial, issuer CN and expiry, as openssl prints them. */
function servedCert(): { serial: string; issuer: string; notAfter: string } {
  const r = spawnSync("sh", ["-c", `openssl s_client -connect ${ENDPOINT} </dev/null 2>/dev/null | openssl x509 -noout -serial -issuer -enddate -nameopt multiline`],
    { encoding: "utf8" });
  const field = (re: RegExp) => (re.exec(r.stdout) ?? ["", ""])[1].trim();
  return { serial: field(/serial=(\S+)/), issuer: field(/commonName\s*=\s*(.+)/), notAfter: field(/notAfter=(.+)/) };
}

/** The CA certificates in the client's certs.d file, by subject CN. */
function clientTrusts(): string[] {
  const r = client(`awk '/BEGIN CERT/{n++} {print > "/tmp/ca-part-" n}' /etc/docker/certs.d/${ENDPOINT}/ca.crt && ` +
    "for f in /tmp/ca-part-*; do openssl x509 -noout -subject -nameopt multiline -in $f | sed -n 's/ *commonName *= *//p'; done; rm -f /tmp/ca-part-*");
  expect(r.status).toBe(0);
  return r.out.trim().split("\n");
}

/** A pull that verifies TLS with the client's installed CA file only; returns the digest pulled. */
function pull(): string {
  const r = client(`rm -rf /tmp/pulled && skopeo copy --digestfile /tmp/pd docker://${ENDPOINT}/day2/app:1 oci:/tmp/pulled:x >/dev/null && cat /tmp/pd`);
  expect(r.status).toBe(0);
  return r.out.trim();
}

/** Whether a client holding only `pem` in its certs.d would verify the server. */
function verifiesWithOnly(pem: string): boolean {
  expect(client("rm -rf /tmp/only && mkdir -p /tmp/only && cat >/tmp/only/ca.crt", pem).status).toBe(0);
  return client(`skopeo inspect --cert-dir /tmp/only docker://${ENDPOINT}/day2/app:1 >/dev/null`).status === 0;
}

function config(): ConfigMap {
  const c = (value: string, secret = false) => ({ value, secret });
  return {
    "private-registry:ipAddresses[0]": c(GATEWAY),
    "private-registry:dnsNames[0]": c("registry.day2.test"),
    "private-registry:port": c(String(PORT)),
    "private-registry:listenAddress": c(GATEWAY),
    "private-registry:keyAlgorithm": c("ECDSA"),
    "private-registry:registryImage": c("private-registry/registry:2.8.2-debian"),
    "private-registry:nginxImage": c("private-registry/nginx:1.22.1-debian"),
    "private-registry:pullImages": c("false"),
    "private-registry:namePrefix": c(id),
    "private-registry:keepDataOnDestroy": c("false"),
    "private-registry:clients[0].host": c(CLIENT_IP),
    "private-registry:clients[0].privateKey": c(fs.readFileSync(sshKeyFile, "utf8"), true),
  };
}

async function upWith(changes: Record<string, string | undefined>) {
  for (const [key, value] of Object.entries(changes)) {
    if (value === undefined) await stack.removeConfig(`private-registry:${key}`, true);
    else await stack.setConfig(`private-registry:${key}`, { value }, true);
  }
  const recorder = planRecorder();
  const result = await stack.up({ onEvent: recorder.onEvent });
  expect(result.summary.result).toBe("succeeded");
  return { outputs: result.outputs, plan: recorder.plan() };
}

beforeAll(async () => {
  spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", sshKeyFile]);
  docker("network", "create", "--subnet", SUBNET, "--gateway", GATEWAY, `${id}-clients`);
  docker("run", "-d", "--name", clientName, "--network", `${id}-clients`, "--ip", CLIENT_IP, "--add-host", `registry.day2.test:${GATEWAY}`,
    "-e", `AUTHORIZED_KEY=${fs.readFileSync(`${sshKeyFile}.pub`, "utf8").trim()}`, "private-registry/ssh-client-host:bookworm");
  waitForSsh(sshKeyFile, "root", CLIENT_IP);
  stack = await LocalWorkspace.createStack({ stackName: id, workDir: projectDir }, { envVars: env });
  await setAllConfigSafely(stack, config(), true);
  const up = await stack.up();
  expect(up.summary.result).toBe("succeeded");
  expect(client(`skopeo login --username admin --password-stdin ${ENDPOINT}`, up.outputs.credentials.value.admin).status).toBe(0);
  const made = client(`${MAKE_IMAGE_SH}\nmake_image /tmp/app 2 65536`);
  digest = made.out.trim();
  expect(client(`skopeo copy oci:/tmp/app:latest docker://${ENDPOINT}/day2/app:1 >/dev/null`).status).toBe(0);
  expect(pull()).toBe(digest);
});

afterAll(async () => {
  if (stack) {
    try { await stack.destroy(); } catch { /* removed below */ }
    try { await stack.workspace.removeStack(id, { force: true }); } catch { /* gone */ }
  }
  fs.rmSync(path.join(projectDir, `Pulumi.${id}.yaml`), { force: true });
  dockerQuiet("rm", "-f", clientName, `${id}-registry`, `${id}-nginx`, `${id}-users-writer`);
  dockerQuiet("network", "rm", `${id}-clients`);
  dockerQuiet("network", "rm", `${id}-net`);
  dockerQuiet("volume", "rm", `${id}-data`, `${id}-users`);
  fs.rmSync(workDir, { recursive: true, force: true });
});

describe("server certificate renewal", () => {
  test("inside the renewal window, a plain `up` issues a new certificate; nginx serves it; the client needs no change and loses nothing", async () => {
    // One hour of validity, renewed when an hour or less is left: every `up` is inside the window.
    const first = await upWith({ serverCertValidityHours: "1", serverCertEarlyRenewalHours: "1" });
    const before = servedCert();
    const clientFile = client(`sha256sum /etc/docker/certs.d/${ENDPOINT}/ca.crt`).out;
    // How a user notices renewal is due: the preview plans to replace the certificate.
    const preview = await stack.preview();
    expect(preview.changeSummary.replace).toBeGreaterThanOrEqual(1);
    const renewed = await upWith({});
    expect(renewed.plan.replaced).toEqual(expect.arrayContaining(["registry-server-cert", "registry-proxy-container"]));
    expect(renewed.plan.replaced.filter((n) => n.startsWith("registry-trust"))).toEqual([]); // nothing on the client
    const after = servedCert();
    expect(after.serial).not.toBe(before.serial);
    expect(renewed.outputs.serverCertExpiresAt.value).not.toBe(first.outputs.serverCertExpiresAt.value);
    expect(Date.parse(renewed.outputs.serverCertExpiresAt.value) - Date.now()).toBeLessThanOrEqual(3_600_000);
    expect(client(`sha256sum /etc/docker/certs.d/${ENDPOINT}/ca.crt`).out).toBe(clientFile);
    expect(pull()).toBe(digest);
    // Back to the days settings: a year's certificate again, and then a no-change preview.
    await upWith({ serverCertValidityHours: undefined, serverCertEarlyRenewalHours: undefined });
    expect(Date.parse(servedCert().notAfter) - Date.now()).toBeGreaterThan(300 * 86_400_000);
    const quiet = await stack.preview({ expectNoChanges: true });
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
    const quiet = await stack.preview({ expectNoChanges: true });
    expect(Object.keys(quiet.changeSummary)).toEqual(["same"]);
  });
});
