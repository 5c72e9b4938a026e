// The client-host scripts in a throw-away Debian bookworm container (needs the Docker
// engine: a suite of jest's "real" project): the OS trust store and sudo, for real.
import { asCommand, renderInstallScript, renderRemoveScript, shellQuote, ClientTrustScriptInput } from "../lib/clientTrustScript";
import { registryEndpoints } from "../lib/endpoints";
import { makeTestCa } from "./helpers/pki";
import { ClientHost, countCerts, startClientHost } from "./helpers/script-client-host";
import { scratchDir } from "./helpers/scratch";

const endpoints = registryEndpoints(["192.0.2.10", "2001:db8::1"], ["registry.example.com"], 5443);
const sharedCa = () => makeTestCa(scratchDir("client-trust-ca-"));

describe("in a Debian bookworm client host (a container): the OS trust store and sudo, for real", () => {
  const ANCHORS = "/usr/local/share/ca-certificates";
  const ANCHOR = `${ANCHORS}/registry-test.crt`;
  const BUNDLE = "/etc/ssl/certs/ca-certificates.crt";
  const CERTS_D = "/etc/docker/certs.d";
  const caFiles = endpoints.map((e) => `${CERTS_D}/${e}/ca.crt`);
  const ca = sharedCa();
  let host: ClientHost | undefined;
  let certsInBundle = 0;

  function scriptsFor(trustOs: boolean, sudo: boolean) {
    const input: ClientTrustScriptInput = { endpoints, trustOs, anchorName: "registry-test" };
    return { install: asCommand(renderInstallScript(input), sudo), remove: asCommand(renderRemoveScript(input), sudo) };
  }
  function container(): ClientHost {
    if (!host) throw new Error("the client host container did not start (see the beforeAll error)");
    return host;
  }
  /** Runs a command line in the container (as root unless a user is given), as SSH hands it to a shell. */
  const run = (command: string, options: { user?: string; stdin?: string } = {}) => container().exec(command, options);
  const read = (...files: string[]) => container().readFiles(files);
  /** Everything under certs.d and in the anchors folder (the image ships both empty). */
  const leftovers = () => run(`find ${CERTS_D} ${ANCHORS} -mindepth 1`).stdout.trim();

  beforeAll(() => {
    host = startClientHost();
    // deploy: a non-root user with passwordless sudo, the kind of login the README asks for.
    const setup = run(
      "useradd --create-home deploy && printf 'deploy ALL=(ALL) NOPASSWD:ALL\\n' >/etc/sudoers.d/90-deploy " +
        `&& chmod 440 /etc/sudoers.d/90-deploy && test -d ${CERTS_D} && grep -c 'BEGIN CERTIFICATE' ${BUNDLE}`,
    );
    if (setup.status !== 0) throw new Error(`setting up the client host container failed: ${setup.stderr}`);
    certsInBundle = Number(setup.stdout.trim());
    expect(certsInBundle).toBeGreaterThan(100);
  });
  afterAll(() => host?.remove());

  test("trustOs: install adds the CA as its own anchor, in the bundle exactly once, also after a second install", () => {
    const { install } = scriptsFor(true, false);
    const first = run(install, { stdin: ca });
    expect(first.status).toBe(0);
    expect(first.stdout).toContain("CA added to the OS trust store as registry-test.crt");
    const [anchor, bundle, ...installed] = read(ANCHOR, BUNDLE, ...caFiles);
    expect(anchor).toBe(ca);
    expect(countCerts(bundle ?? "", ca)).toBe(1);
    expect(installed).toEqual(caFiles.map(() => ca));
    expect(run(install, { stdin: ca }).status).toBe(0);
    expect(countCerts(read(BUNDLE)[0] ?? "", ca)).toBe(1);
    expect(run(`ls -A ${ANCHORS}`).stdout).toBe("registry-test.crt\n");
  });

  test("trustOs: remove takes the anchor away and the CA out of the bundle, and keeps everything else", () => {
    expect(run(scriptsFor(true, false).remove).status).toBe(0);
    const [anchor, bundle] = read(ANCHOR, BUNDLE);
    expect(anchor).toBeUndefined();
    expect(countCerts(bundle ?? "", ca)).toBe(0);
    expect((bundle ?? "").split("BEGIN CERTIFICATE").length - 1).toBe(certsInBundle);
    // Nor a link in /etc/ssl/certs (name or hash) still pointing at the removed anchor.
    expect(run("find /etc/ssl/certs -xtype l").stdout).toBe("");
    expect(leftovers()).toBe("");
    // The image ships /etc/docker/certs.d: a folder that was there before stays.
    expect(run(`test -d ${CERTS_D}`).status).toBe(0);
  });

  test("trustOs false: the CA goes to certs.d only, nothing into the OS trust store", () => {
    const { install, remove } = scriptsFor(false, false);
    const result = run(install, { stdin: ca });
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
    const [bundle, ...installed] = read(BUNDLE, ...caFiles);
    expect(installed).toEqual(caFiles.map(() => ca));
    expect(countCerts(bundle ?? "", ca)).toBe(0);
    expect(run(`ls -A ${ANCHORS}`).stdout).toBe("");
    expect(run(remove).status).toBe(0);
    expect(leftovers()).toBe("");
  });

  test("sudo: true runs the script through sudo -n: a non-root user with passwordless sudo installs and removes", () => {
    const { install, remove } = scriptsFor(false, true);
    const result = run(install, { user: "deploy", stdin: ca });
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
    expect(run(`stat -c '%U %a' ${caFiles.map(shellQuote).join(" ")}`).stdout).toBe(caFiles.map(() => "root 644\n").join(""));
    expect(read(...caFiles)).toEqual(caFiles.map(() => ca));
    expect(run(remove, { user: "deploy" }).status).toBe(0);
    expect(leftovers()).toBe("");
  });

  test("sudo: false does not elevate: the same user cannot write /etc/docker/certs.d", () => {
    const result = run(scriptsFor(false, false).install, { user: "deploy", stdin: ca });
    expect(result.stderr).toContain("Permission denied");
    expect(result.status).not.toBe(0);
    expect(leftovers()).toBe("");
  });
});
