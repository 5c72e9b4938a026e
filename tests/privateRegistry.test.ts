import * as crypto from "crypto";
// Wiring of the whole program under Pulumi's mocks: what each resource receives.
import * as pulumi from "@pulumi/pulumi";
import * as bcrypt from "bcryptjs";
import { recordResources, recordOptions, valueOf, waitForResource, RecordedResource, isSecretInput, plain } from "./helpers/mocks";
import { parseSettings, Settings } from "../lib/settings";
import { uiFiles } from "../lib/uiFiles";
import { renderNginxConf } from "../lib/nginxConf";
import {
  asCommand,
  renderCheckScript,
  renderInstallScript,
  renderRemoveScript,
  scriptFromStdin,
  scriptThenInput,
} from "../lib/clientTrustScript";
import { renderUsersWriterScript } from "../lib/usersDirectory";
import { renderRegistryConfig, REGISTRY_TLS12_CIPHER_SUITES, htpasswdDigestLine } from "../lib/registryConfig";
// A dependency of jest's own (no types of its own here): only to read the rendered YAML back.
// eslint-disable-next-line @typescript-eslint/no-var-requires
const yaml = require("js-yaml") as { load(text: string): any };

const recorded = recordResources();
// What every component registers as its outputs, by component (see "registered outputs" below).
const registeredOutputs = new Map<pulumi.ComponentResource, Record<string, unknown>>();
type WithRegisterOutputs = { registerOutputs(outputs: Record<string, unknown>): void };
const componentPrototype = pulumi.ComponentResource.prototype as unknown as WithRegisterOutputs;
const registerOutputs = componentPrototype.registerOutputs;
componentPrototype.registerOutputs = function (this: pulumi.ComponentResource, outputs: Record<string, unknown>) {
  // The first call counts (the SDK ignores later ones, such as its own after the constructor).
  if (!registeredOutputs.has(this)) registeredOutputs.set(this, outputs);
  return registerOutputs.call(this, outputs);
};
// Imported after the mocks are set, as Pulumi's testing guide requires.
import { PrivateRegistry } from "../components/privateRegistry";
import { argsFromSettings } from "../lib/registryArgs";

const TEST_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n";

function labSettings(overrides: Record<string, string> = {}): Settings {
  return parseSettings(
    {
      ipAddresses: JSON.stringify(["192.0.2.10", "198.51.100.10"]),
      dnsNames: JSON.stringify(["registry.example.com", "localhost"]),
      port: "5443",
      users: JSON.stringify(["admin", "ci"]),
      // sudo and trustOs differ on every client, so that one cannot pass for the other.
      clients: JSON.stringify([
        { host: "198.51.100.21", user: "deploy", sudo: true, trustOs: false, privateKey: TEST_KEY },
        { host: "203.0.113.22", port: 2222, sudo: false, trustOs: true, privateKey: TEST_KEY },
      ]),
      localClient: "true",
      localClientSudo: "true",
      localClientTrustOs: "false",
      namePrefix: "reg-t",
      ...overrides,
    },
    "private-registry",
    "test",
  );
}

/** A recorded resource with secrets unwrapped in `inputs` and kept in `raw`. */
type Seen = RecordedResource & { raw: Record<string, any> };

interface Deployment {
  registry: PrivateRegistry;
  resources: (type: string) => Seen[];
  one: (type: string, nameContains?: string) => Seen;
  options: Map<string, pulumi.CustomResourceOptions>;
  /** Each resource's inputs as the program handed them over (Outputs not yet resolved), by name. */
  props: Map<string, Record<string, any>>;
}

/** Records the input properties of every resource, before serialization merges their secrets. */
function recordProps(into: Map<string, Record<string, any>>): pulumi.ResourceTransformation {
  return (args) => {
    into.set(args.name, args.props);
    return undefined;
  };
}

async function deploy(name: string, settings: Settings): Promise<Deployment> {
  const options = new Map<string, pulumi.CustomResourceOptions>();
  const props = new Map<string, Record<string, any>>();
  const registry = new PrivateRegistry(name, argsFromSettings(settings), { transformations: [recordOptions(options), recordProps(props)] });
  // The proxy is the last resource to be registered; its inputs depend on all the others.
  // Without a proxy the registry container is, for the same reason.
  const last = settings.tlsTermination === "registry" ? `${name}-registry-container` : `${name}-proxy-container`;
  await waitForResource(recorded, (r) => r.name === last);
  await valueOf(registry.credentials);
  await valueOf(registry.endpoints);
  const mine = () => recorded.filter((r) => r.name.startsWith(`${name}-`)).map((r) => ({ ...r, raw: r.inputs, inputs: plain(r.inputs) }));
  const resources = (type: string) => mine().filter((r) => r.type === type);
  const one = (type: string, nameContains = "") => {
    const found = resources(type).filter((r) => r.name.includes(nameContains));
    expect(found).toHaveLength(1);
    return found[0];
  };
  return { registry, resources, one, options, props };
}

const T = {
  key: "tls:index/privateKey:PrivateKey",
  caCert: "tls:index/selfSignedCert:SelfSignedCert",
  csr: "tls:index/certRequest:CertRequest",
  leaf: "tls:index/locallySignedCert:LocallySignedCert",
  password: "random:index/randomPassword:RandomPassword",
  network: "docker:index/network:Network",
  volume: "docker:index/volume:Volume",
  image: "docker:index/remoteImage:RemoteImage",
  container: "docker:index/container:Container",
  remote: "command:remote:Command",
  local: "command:local:Command",
};

describe("PrivateRegistry wiring", () => {
  let d: Deployment;
  const settings = labSettings();
  beforeAll(async () => {
    d = await deploy("lab", settings);
  });

  test("the server certificate names exactly the configured IPs and DNS names", () => {
    const csr = d.one(T.csr);
    expect(csr.inputs.ipAddresses).toEqual(["192.0.2.10", "198.51.100.10"]);
    expect(csr.inputs.dnsNames).toEqual(["registry.example.com", "localhost"]);
    expect(csr.inputs.privateKeyPem).toBe("PRIVATE-KEY(lab-server-key)");
  });

  test("the leaf is signed by the CA's key and certificate, for server auth only", () => {
    const leaf = d.one(T.leaf);
    expect(leaf.inputs.caCertPem).toBe("CERT(lab-ca-cert)");
    expect(leaf.inputs.caPrivateKeyPem).toBe("PRIVATE-KEY(lab-ca-key)");
    expect(leaf.inputs.certRequestPem).toBe("CSR(lab-server-csr)");
    // An ECDSA server key (the default): no key_encipherment, which only RSA key exchange uses.
    expect(leaf.inputs.allowedUses).toEqual(["digital_signature", "server_auth"]);
    expect(leaf.inputs.isCaCertificate ?? false).toBe(false);
    expect(leaf.inputs.validityPeriodHours).toBe(365 * 24);
    expect(leaf.inputs.earlyRenewalHours).toBe(30 * 24);
  });

  test("the CA is a self-signed CA certificate with the configured subject", () => {
    const ca = d.one(T.caCert);
    expect(ca.inputs.isCaCertificate).toBe(true);
    expect(ca.inputs.allowedUses).toEqual(expect.arrayContaining(["cert_signing", "crl_signing"]));
    expect(ca.inputs.privateKeyPem).toBe("PRIVATE-KEY(lab-ca-key)");
    expect(ca.inputs.subject).toEqual({ commonName: "Private Registry CA", organization: "Private Registry" });
    expect(ca.inputs.validityPeriodHours).toBe(3650 * 24);
    // The CA's key RSA 4096 (keyAlgorithm), the server's ECDSA P-256 (serverKeyAlgorithm), by default.
    expect(Object.fromEntries(d.resources(T.key).map((k) => [k.name, k.inputs]))).toEqual({
      "lab-ca-key": { algorithm: "RSA", rsaBits: 4096 },
      "lab-server-key": { algorithm: "ECDSA", ecdsaCurve: "P256" },
    });
  });

  test("the registry listens on its socket only, keeps its data in the named volume, and publishes no port", () => {
    const registry = d.one(T.container, "registry-container");
    expect(registry.inputs.ports ?? []).toEqual([]);
    expect(registry.inputs.name).toBe("reg-t-registry");
    expect(registry.inputs.restart).toBe("always");
    expect(registry.inputs.volumes[0]).toEqual({ volumeName: "reg-t-data", containerPath: "/var/lib/registry" });
    // The HTTP secret is in the uploaded config, not in the environment `docker inspect` shows.
    expect(registry.inputs.envs).toEqual(["OTEL_TRACES_EXPORTER=none"]);
    // The same config where registry:2 and registry:3 read it.
    const config = { permissions: "0600", content: expect.stringContaining('  secret: "password-of-lab-registry-http-secret"\n') };
    expect(registry.inputs.uploads).toEqual([
      { file: "/etc/docker/registry/config.yml", ...config },
      { file: "/etc/distribution/config.yml", ...config },
    ]);
    expect(registry.inputs.uploads[1].content).toBe(registry.inputs.uploads[0].content);
    expect(registry.inputs.uploads[0].content).toContain("\n  net: unix\n  addr: /run/registry/registry.sock\n");
    expect(registry.inputs.healthcheck.tests[0]).toBe("CMD-SHELL");
    // metrics off by default: the config and the health check as they were before the setting.
    expect(registry.inputs.uploads[0].content).not.toContain("prometheus");
    expect(registry.inputs.healthcheck.tests[1]).not.toContain("metrics");
    expect(d.one(T.volume, "registry-data").inputs.name).toBe("reg-t-data");
    expect(d.options.get("lab-registry-data")?.retainOnDelete).toBe(true);
    expect(d.options.get("lab-registry-container")?.deleteBeforeReplace).toBe(true);
  });

  test("the registry has no network, only its socket in a volume it shares with nginx; nginx is on the private network and publishes the port", () => {
    const network = d.one(T.network);
    expect(network.inputs.name).toBe("reg-t-net");
    const [registry, proxy] = [d.one(T.container, "registry"), d.one(T.container, "proxy-container")];
    expect(registry.inputs.networkMode).toBe("none");
    expect(registry.inputs.networksAdvanced ?? []).toEqual([]);
    expect(registry.inputs.ports ?? []).toEqual([]);
    expect(d.one(T.volume, "registry-socket").inputs.name).toBe("reg-t-socket");
    expect(registry.inputs.volumes).toEqual([
      { volumeName: "reg-t-data", containerPath: "/var/lib/registry" },
      { volumeName: "reg-t-socket", containerPath: "/run/registry" },
    ]);
    expect(proxy.inputs.networkMode).toBeUndefined();
    expect(proxy.inputs.networksAdvanced).toEqual([{ name: "reg-t-net" }]);
    expect(proxy.inputs.ports).toEqual([{ internal: 443, external: 5443, ip: "0.0.0.0" }]);
    // Neither container waits for the other at start: no container: network mode, no links.
    expect(JSON.stringify([registry.inputs, proxy.inputs])).not.toContain("container:");
  });

  test("nginx receives exactly the rendered config, the chain and the key, and reads the users from their volume", () => {
    const proxy = d.one(T.container, "proxy-container");
    const uploads = Object.fromEntries(proxy.inputs.uploads.map((u: { file: string }) => [u.file, u]));
    expect(Object.keys(uploads).sort()).toEqual([
      "/etc/nginx/nginx.conf",
      "/etc/nginx/registry/chain.pem",
      "/etc/nginx/registry/key.pem",
      // The registry browser (ui, on by default), as in ui/.
      "/etc/nginx/registry/ui/app.js",
      "/etc/nginx/registry/ui/index.html",
      "/etc/nginx/registry/ui/style.css",
    ]);
    for (const f of uiFiles())
      expect(uploads[`/etc/nginx/registry/ui/${f.name}`]).toEqual({
        file: `/etc/nginx/registry/ui/${f.name}`,
        content: f.content,
        permissions: "0644",
      });
    expect(uploads["/etc/nginx/nginx.conf"].content).toBe(
      renderNginxConf({
        serverNames: ["registry.example.com", "localhost", "192.0.2.10", "198.51.100.10"],
        upstream: "unix:/run/registry/registry.sock",
        listenPort: 443,
        certificatePath: "/etc/nginx/registry/chain.pem",
        privateKeyPath: "/etc/nginx/registry/key.pem",
        usersDirectory: "/etc/nginx/registry/users",
        ui: {
          directory: "/etc/nginx/registry/ui",
          deleteEnabled: false,
          endpoints: ["192.0.2.10:5443", "198.51.100.10:5443", "registry.example.com:5443", "localhost:5443"],
        },
      }),
    );
    expect(uploads["/etc/nginx/registry/chain.pem"].content).toBe("CERT(lab-server-cert)\nCERT(lab-ca-cert)\n");
    expect(uploads["/etc/nginx/registry/key.pem"].content).toBe("PRIVATE-KEY(lab-server-key)");
    expect(uploads["/etc/nginx/registry/key.pem"].permissions).toBe("0600");
    expect(proxy.inputs.volumes).toEqual([
      { volumeName: "reg-t-users", containerPath: "/etc/nginx/registry/users", readOnly: true },
      { volumeName: "reg-t-socket", containerPath: "/run/registry", readOnly: true },
    ]);
    const opts = d.options.get("lab-proxy-container");
    expect(opts?.deleteBeforeReplace).toBe(true);
    expect(opts?.replaceOnChanges).toEqual(["uploads", "networkMode", "healthcheck", "ports", "networksAdvanced", "volumes"]);
  });

  test("the users writer stages the htpasswd and the push list in the users volume, runs once to the end, offline", () => {
    const writer = d.one(T.container, "proxy-users-writer");
    expect(d.one(T.volume, "proxy-users").inputs.name).toBe("reg-t-users");
    expect(writer.inputs).toMatchObject({
      name: "reg-t-users-writer",
      image: "sha256:id-of-nginx:1.30.4",
      networkMode: "none",
      restart: "no",
      mustRun: false,
      attach: true,
      command: ["sh", "-c", renderUsersWriterScript("/etc/nginx/registry/users")],
      volumes: [{ volumeName: "reg-t-users", containerPath: "/etc/nginx/registry/users" }],
    });
    const uploads = Object.fromEntries(writer.inputs.uploads.map((u: { file: string }) => [u.file, u]));
    expect(Object.keys(uploads).sort()).toEqual([
      "/etc/nginx/registry/users/.next/htpasswd",
      "/etc/nginx/registry/users/.next/may-push.list",
      "/etc/nginx/registry/users/.next/rights.list",
    ]);
    // Hashed by the program at the configured cost (default 4) with the salt kept in the state,
    // each checking the user's own password.
    const lines = uploads["/etc/nginx/registry/users/.next/htpasswd"].content.split("\n");
    expect(lines).toEqual([
      expect.stringMatching(/^admin:\$2a\$04\$labusersadminsalt/),
      expect.stringMatching(/^ci:\$2a\$04\$labusersci/),
      "",
    ]);
    expect(bcrypt.compareSync("password-of-lab-users-admin", lines[0].slice("admin:".length))).toBe(true);
    expect(bcrypt.compareSync("password-of-lab-users-ci", lines[1].slice("ci:".length))).toBe(true);
    expect(bcrypt.compareSync("password-of-lab-users-ci", lines[0].slice("admin:".length))).toBe(false);
    expect(uploads["/etc/nginx/registry/users/.next/may-push.list"].content).toBe("admin\nci\n");
    // No rights per project: every user pulls from, pushes to and mounts across every project, as before.
    expect(uploads["/etc/nginx/registry/users/.next/rights.list"].content).toBe(
      ["admin", "ci"].map((u) => `${u}/_all/mount-from/_all\n${u}/_all/pull\n${u}/_all/push\n`).join(""),
    );
    expect(d.options.get("lab-proxy-users-writer")?.replaceOnChanges).toEqual(["uploads", "command", "labels"]);
  });

  test("images are pulled by default and the containers run the pulled image IDs", () => {
    expect(d.resources(T.image).map((i) => i.inputs)).toEqual([
      { name: "registry:3.1.1", keepLocally: true },
      { name: "nginx:1.30.4", keepLocally: true },
    ]);
    expect(d.one(T.container, "registry").inputs.image).toBe("sha256:id-of-registry:3.1.1");
    expect(d.one(T.container, "proxy-container").inputs.image).toBe("sha256:id-of-nginx:1.30.4");
  });

  const sha256 = (text: string) => crypto.createHash("sha256").update(text).digest("hex");
  /** The install command whose name ends so (its check's name ends in -check). */
  const installOf = (type: string, ending: string) => {
    const found = d.resources(type).filter((r) => r.name.endsWith(ending));
    expect(found).toHaveLength(1);
    return found[0];
  };

  test("per client host, an install command (the CA for every endpoint, with a delete) and then a check command", async () => {
    const endpoints = ["192.0.2.10:5443", "198.51.100.10:5443", "registry.example.com:5443", "localhost:5443"];
    const all = d.resources(T.remote);
    const commands = all.filter((c) => !c.name.endsWith("-check"));
    const checks = all.filter((c) => c.name.endsWith("-check"));
    expect(commands.map((c) => c.inputs.connection)).toEqual([
      expect.objectContaining({ host: "198.51.100.21", port: 22, user: "deploy", privateKey: TEST_KEY }),
      expect.objectContaining({ host: "203.0.113.22", port: 2222, user: "root", privateKey: TEST_KEY }),
    ]);
    expect(checks.map((c) => c.inputs.connection)).toEqual(commands.map((c) => c.inputs.connection));
    const [sudoOnly, trustOsOnly] = commands;
    const scriptInput = { endpoints, anchorName: "reg-t" };
    const ca = "CERT(lab-ca-cert)\n";
    // The scripts travel on stdin before the CA; the command line is a short reader.
    expect(sudoOnly.inputs.create).toBe(scriptFromStdin(true));
    expect(sudoOnly.inputs.stdin).toBe(scriptThenInput(renderInstallScript({ ...scriptInput, trustOs: false }), ca));
    expect(sudoOnly.inputs.delete).toBe(asCommand(renderRemoveScript({ ...scriptInput, trustOs: false }), true));
    expect(trustOsOnly.inputs.create).toBe(scriptFromStdin(false));
    expect(trustOsOnly.inputs.stdin).toBe(scriptThenInput(renderInstallScript({ ...scriptInput, trustOs: true }), ca));
    expect(trustOsOnly.inputs.delete).toBe(asCommand(renderRemoveScript({ ...scriptInput, trustOs: true }), false));
    const local = installOf(T.local, "trust-local");
    for (const c of [...commands, local]) {
      // A new CA re-runs the install in place; a new set of files replaces the command.
      expect(c.inputs.update).toBe(c.inputs.create);
      expect(c.inputs.triggers[0]).toBe(renderRemoveScript({ ...scriptInput, trustOs: c === trustOsOnly }));
      expect(d.options.get(c.name)?.replaceOnChanges).toContain("triggers[*]");
      expect(c.inputs.create.length).toBeLessThan(300);
      for (const e of endpoints) expect(c.inputs.stdin).toContain(`'${e}'`);
      expect(d.options.get(c.name)?.deleteBeforeReplace).toBe(true);
    }
    // verifyFromClients is on by default: a check per host, after its install, that changes nothing.
    for (const check of [...checks, d.one(T.local, "local-check")]) {
      expect(check.inputs.stdin).toBe(
        scriptThenInput(
          `# with the CA bundle of SHA-256 ${sha256("CERT(lab-ca-cert)")}\n${renderCheckScript({ ...scriptInput, trustOs: false })}`,
        ),
      );
      expect(check.inputs.delete).toBeUndefined();
      expect(check.inputs.update).toBe(check.inputs.create);
      expect(check.inputs.triggers).toEqual([`${check.name.replace(/-check$/, "")}-id`]);
    }
    expect(local.inputs.create).toBe(scriptFromStdin(true));
    expect(local.inputs.delete).toBe(asCommand(renderRemoveScript({ ...scriptInput, trustOs: false }), true));
    expect(await valueOf(pulumi.output(d.registry.clientHosts))).toEqual(["deploy@198.51.100.21:22", "root@203.0.113.22:2222", "local"]);
  });

  test("sudo -n is used exactly for the hosts that ask for sudo, the OS trust store exactly for those that ask for it", () => {
    const hosts = [
      { command: installOf(T.remote, "198.51.100.21-22"), sudo: true, trustOs: false },
      { command: installOf(T.remote, "203.0.113.22-2222"), sudo: false, trustOs: true },
      { command: installOf(T.local, "trust-local"), sudo: true, trustOs: false },
    ];
    for (const { command, sudo, trustOs } of hosts) {
      for (const [line, script] of [
        [command.inputs.create, command.inputs.stdin],
        [command.inputs.delete, command.inputs.delete],
      ] as string[][]) {
        const seen = {
          name: command.name,
          sudo: line.startsWith("sudo -n sh -c "),
          anySudo: line.includes("sudo"),
          trustOs: script.includes("update-ca-certificates"),
          anchor: script.includes("reg-t.crt"),
        };
        expect(seen).toEqual({ name: command.name, sudo, anySudo: sudo, trustOs, anchor: trustOs });
      }
    }
  });

  test("keys, passwords, the htpasswd and the SSH keys are secrets", async () => {
    expect(isSecretInput(d.one(T.leaf).raw.caPrivateKeyPem)).toBe(true);
    // One secret element makes the whole uploads list secret in the state.
    expect(isSecretInput(d.one(T.container, "proxy-container").raw.uploads)).toBe(true);
    // So each upload is checked as the program hands it to the container: the htpasswd and the key themselves are secrets.
    const uploads: { file: string; content: pulumi.Input<string> }[] = [
      ...d.props.get("lab-proxy-container")?.uploads,
      ...d.props.get("lab-proxy-users-writer")?.uploads,
    ];
    const content = (file: string) => {
      const found = uploads.filter((u) => u.file === file);
      expect(found).toHaveLength(1);
      return pulumi.output(found[0].content);
    };
    const htpasswd = content("/etc/nginx/registry/users/.next/htpasswd");
    expect(await pulumi.isSecret(htpasswd)).toBe(true);
    expect((await valueOf(htpasswd)).split("\n")).toEqual([
      expect.stringMatching(/^admin:\$2a\$04\$\S+$/),
      expect.stringMatching(/^ci:\$2a\$04\$\S+$/),
      "",
    ]);
    expect(await pulumi.isSecret(content("/etc/nginx/registry/key.pem"))).toBe(true);
    expect(await pulumi.isSecret(content("/etc/nginx/nginx.conf"))).toBe(false);
    expect(isSecretInput(d.one(T.container, "registry").raw.uploads)).toBe(true);
    const registryUploads: { content: pulumi.Input<string> }[] = d.props.get("lab-registry-container")?.uploads;
    expect(await pulumi.isSecret(pulumi.output(registryUploads[0].content))).toBe(true);
    for (const c of d.resources(T.remote)) expect(isSecretInput(c.raw.connection)).toBe(true);
    expect(await pulumi.isSecret(d.registry.credentials)).toBe(true);
    expect(await valueOf(d.registry.credentials)).toEqual({
      admin: "password-of-lab-users-admin",
      ci: "password-of-lab-users-ci",
    });
    expect(await pulumi.isSecret(d.registry.caCertPem)).toBe(false);
    for (const client of settings.clients) {
      expect(await pulumi.isSecret(pulumi.output(client.privateKey))).toBe(true);
    }
  });

  test("outputs name every endpoint and a login command that keeps the password off the command line", async () => {
    expect(await valueOf(d.registry.endpoints)).toEqual([
      "192.0.2.10:5443",
      "198.51.100.10:5443",
      "registry.example.com:5443",
      "localhost:5443",
    ]);
    expect(await valueOf(d.registry.dockerLoginCommand)).toContain("docker login 192.0.2.10:5443 --username admin --password-stdin");
    expect(await valueOf(d.registry.serverCertExpiresAt)).toBe("2027-11-28T00:00:00Z");
  });
});

describe("PrivateRegistry options", () => {
  test("ui off and metrics on: no browser files, the metrics locations, the registry's Prometheus page copied by its health check", async () => {
    const d = await deploy("pages", labSettings({ ui: "false", metrics: "true" }));
    const proxy = d.one(T.container, "proxy-container");
    const files = proxy.inputs.uploads.map((u: { file: string }) => u.file);
    expect(files.filter((f: string) => f.includes("/ui/"))).toEqual([]);
    const conf = proxy.inputs.uploads.find((u: { file: string }) => u.file === "/etc/nginx/nginx.conf").content;
    expect(conf).not.toContain("location /ui/");
    expect(conf).toContain("location = /metrics/registry {");
    expect(conf).toContain("alias /run/registry/metrics.prom;");
    const registry = d.one(T.container, "registry-container");
    expect(registry.inputs.uploads[0].content).toContain("\n    prometheus:\n      enabled: true\n      path: /metrics\n");
    expect(registry.inputs.healthcheck.tests[1]).toContain("http://127.0.0.1:5001/metrics && chmod 0644 /run/registry/metrics.prom.next");
  });

  test("an RSA server key when asked: key_encipherment added", async () => {
    const d = await deploy("rsa", labSettings({ serverKeyAlgorithm: "RSA", rsaBits: "3072" }));
    expect(Object.fromEntries(d.resources(T.key).map((k) => [k.name, k.inputs]))).toEqual({
      "rsa-ca-key": { algorithm: "RSA", rsaBits: 3072 },
      "rsa-server-key": { algorithm: "RSA", rsaBits: 3072 },
    });
    expect(d.one(T.leaf).inputs.allowedUses).toEqual(["digital_signature", "key_encipherment", "server_auth"]);
  });

  test("ECDSA keys, local images, no clients, data deleted on destroy, port 443 endpoints", async () => {
    const d = await deploy(
      "alt",
      labSettings({
        keyAlgorithm: "ECDSA",
        pullImages: "false",
        clients: "[]",
        localClient: "false",
        keepDataOnDestroy: "false",
        port: "443",
      }),
    );
    expect(d.resources(T.key).map((k) => k.inputs)).toEqual([
      { algorithm: "ECDSA", ecdsaCurve: "P256" },
      { algorithm: "ECDSA", ecdsaCurve: "P256" },
    ]);
    expect(d.one(T.leaf).inputs.allowedUses).toEqual(["digital_signature", "server_auth"]);
    expect(d.resources(T.image)).toEqual([]);
    expect(d.one(T.container, "registry").inputs.image).toBe("registry:3.1.1");
    expect(d.resources(T.remote)).toEqual([]);
    expect(d.resources(T.local)).toEqual([]);
    expect(d.options.get("alt-registry-data")?.retainOnDelete).toBe(false);
    expect(await valueOf(d.registry.endpoints)).toEqual(["192.0.2.10", "198.51.100.10", "registry.example.com", "localhost"]);
  });
});

describe("mirrors: a registry in proxy mode per upstream behind nginx, every client's runtimes pointed at them", () => {
  let d: Deployment;
  const UPSTREAM_CA = "-----BEGIN CERTIFICATE-----\nMIIBup\n-----END CERTIFICATE-----\n";
  // The upstream's password is a secret in the stack: `mirrors` is then secret as a whole.
  const secretSettings = parseSettings(
    {
      ipAddresses: JSON.stringify(["192.0.2.10"]),
      dnsNames: JSON.stringify(["registry.example.com"]),
      port: "5443",
      namePrefix: "reg-m",
      localClient: "true",
      clients: JSON.stringify([{ host: "198.51.100.21", user: "deploy", sudo: true, privateKey: TEST_KEY }]),
      mirrors: JSON.stringify([
        { upstream: "https://registry-1.docker.io", port: 5001, anonymousPull: true },
        { upstream: "https://vendor.example.com:5000", port: 5002, username: "puller", password: "upstream-pw", ca: UPSTREAM_CA },
      ]),
    },
    "private-registry",
    "test",
    ["mirrors", "clients"],
  );
  beforeAll(async () => {
    d = await deploy("mir", secretSettings);
    await waitForResource(recorded, (r) => r.name.startsWith("mir-client-mirrors-") && r.type === T.local);
  });

  test("one registry per upstream, in proxy mode, on the stack's network, its socket beside the registry's, a cache volume each", async () => {
    const hub = d.one(T.container, "mirror-docker.io-container");
    const vendor = d.one(T.container, "mirror-vendor.example.com-5000-container");
    expect(hub.inputs.name).toBe("reg-m-mirror-docker.io");
    expect(hub.inputs.networksAdvanced).toEqual([{ name: "reg-m-net" }]);
    expect(hub.inputs.ports ?? []).toEqual([]);
    expect(hub.inputs.volumes).toEqual([
      { volumeName: "reg-m-mirror-docker.io-data", containerPath: "/var/lib/registry" },
      { volumeName: "reg-m-socket", containerPath: "/run/registry" },
    ]);
    const config = (c: Seen) =>
      yaml.load(c.inputs.uploads.find((u: { file: string }) => u.file === "/etc/distribution/config.yml").content);
    expect(config(hub).proxy).toEqual({ remoteurl: "https://registry-1.docker.io" });
    expect(config(hub).http).toMatchObject({ net: "unix", addr: "/run/registry/mirror-docker.io.sock" });
    expect(config(vendor).proxy).toEqual({ remoteurl: "https://vendor.example.com:5000", username: "puller", password: "upstream-pw" });
    // The upstream's CA is added to the image's roots, not put in their place.
    expect(vendor.inputs.uploads.find((u: { file: string }) => u.file.endsWith("upstream-ca.pem")).content).toBe(UPSTREAM_CA);
    expect(vendor.inputs.envs).toContain("SSL_CERT_DIR=/etc/ssl/certs:/etc/distribution/upstream-ca");
    expect(hub.inputs.envs.join(" ")).not.toContain("SSL_CERT_DIR");
    // The upstream's password travels only inside the secret config.
    expect(isSecretInput(vendor.raw.uploads)).toBe(true);
    const vendorConfig = d.props.get("mir-mirror-vendor.example.com-5000-container")?.uploads[0].content;
    expect(await pulumi.isSecret(pulumi.output(vendorConfig))).toBe(true);
  });

  test("nginx publishes each mirror's port and serves it read-only: the open one without a login, the other with the users", () => {
    const proxy = d.one(T.container, "proxy-container");
    expect(proxy.inputs.ports).toEqual([
      { internal: 443, external: 5443, ip: "0.0.0.0" },
      { internal: 5001, external: 5001, ip: "0.0.0.0" },
      { internal: 5002, external: 5002, ip: "0.0.0.0" },
    ]);
    const conf: string = proxy.inputs.uploads.find((u: { file: string }) => u.file === "/etc/nginx/nginx.conf").content;
    expect(conf).toContain("server unix:/run/registry/mirror-docker.io.sock;");
    expect(conf).toContain("server unix:/run/registry/mirror-vendor.example.com-5000.sock;");
    const [, hub, vendor] = conf.split("# Pull-through mirror of ");
    expect(hub).toContain("listen 5001 ssl;");
    expect(hub).not.toContain("auth_basic_user_file");
    expect(vendor).toContain("listen 5002 ssl;");
    expect(vendor).toContain("auth_basic_user_file /etc/nginx/registry/users/htpasswd;");
    expect(d.options.get("mir-proxy-container")?.dependsOn).toBeDefined();
  });

  test("each client gets the CA for the mirrors' endpoints too, then its runtimes pointed at them (removed on destroy)", async () => {
    const install = d.resources(T.remote).find((c) => c.name === "mir-trust-198.51.100.21-22") as Seen;
    for (const e of ["192.0.2.10:5001", "registry.example.com:5001", "192.0.2.10:5002"]) expect(install.inputs.stdin).toContain(`'${e}'`);
    const step = d.resources(T.remote).find((c) => c.name.startsWith("mir-client-mirrors-")) as Seen;
    expect(step.inputs.create).toBe(scriptFromStdin(true));
    expect(step.inputs.stdin).toContain('[[registry]]\nprefix = "vendor.example.com:5000"');
    expect(step.inputs.stdin).toContain('https://192.0.2.10:5001","https://registry.example.com:5001"');
    expect(step.inputs.delete).toContain("restore");
    expect(d.options.get(step.name)?.deleteBeforeReplace).toBe(true);
    expect(d.resources(T.local).filter((c) => c.name.startsWith("mir-client-mirrors-"))).toHaveLength(1);
    expect(await valueOf(d.registry.mirrors)).toEqual({
      "docker.io": ["192.0.2.10:5001", "registry.example.com:5001"],
      "vendor.example.com:5000": ["192.0.2.10:5002", "registry.example.com:5002"],
    });
  });
});

describe("the registry's config file", () => {
  const base = {
    httpSecret: 'se"cret',
    listen: { net: "unix" as const, addr: "/run/registry/registry.sock" },
    debugAddress: "127.0.0.1:5001",
    dataDir: "/var/lib/registry",
    deleteEnabled: false,
  };

  test("behind the proxy: plain HTTP on the socket, the debug server on the registry's own loopback", () => {
    expect(renderRegistryConfig(base)).toBe(`# Rendered by the private-registry Pulumi program; changes here are overwritten.
version: 0.1
log:
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: /var/lib/registry
  delete:
    enabled: false
http:
  net: unix
  addr: /run/registry/registry.sock
  debug:
    addr: 127.0.0.1:5001
  secret: "se\\"cret"
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
`);
  });

  test("terminating TLS itself: the certificate, the key, TLS 1.2 and up with AEAD ciphers, and htpasswd auth", () => {
    const text = renderRegistryConfig({
      ...base,
      listen: { net: "tcp", addr: ":5000" },
      debugAddress: undefined,
      deleteEnabled: true,
      tls: {
        certificatePath: "/etc/docker/registry/tls/chain.pem",
        privateKeyPath: "/etc/docker/registry/tls/key.pem",
        htpasswdPath: "/etc/docker/registry/htpasswd",
        realm: "Registry realm",
      },
    });
    const config = yaml.load(text);
    expect(config.http).toEqual({
      addr: ":5000",
      secret: 'se"cret',
      headers: { "X-Content-Type-Options": ["nosniff"] },
      tls: {
        certificate: "/etc/docker/registry/tls/chain.pem",
        key: "/etc/docker/registry/tls/key.pem",
        minimumtls: "tls1.2",
        ciphersuites: [...REGISTRY_TLS12_CIPHER_SUITES],
      },
    });
    expect(config.auth).toEqual({ htpasswd: { realm: "Registry realm", path: "/etc/docker/registry/htpasswd" } });
    expect(config.storage.delete).toEqual({ enabled: true });
    expect(config.health).toEqual({ storagedriver: { enabled: true, interval: "10s", threshold: 3 } });
    // Only forward-secret AEAD suites, as nginx's intermediate list.
    for (const suite of REGISTRY_TLS12_CIPHER_SUITES)
      expect(suite).toMatch(/^TLS_ECDHE_(RSA|ECDSA)_WITH_(AES_(128|256)_GCM_SHA(256|384)|CHACHA20_POLY1305_SHA256)$/);
  });
});

describe("tlsTermination registry: no proxy, the registry terminates TLS and checks passwords", () => {
  let proxied: Deployment;
  let d: Deployment;
  beforeAll(async () => {
    proxied = await deploy("same", labSettings());
    d = await deploy("direct", labSettings({ tlsTermination: "registry", deleteEnabled: "true" }));
  });

  test("no nginx: no proxy container, no nginx image", () => {
    expect(d.resources(T.container).map((c) => c.name)).toEqual(["direct-registry-container"]);
    expect(d.resources(T.image).map((i) => i.inputs)).toEqual([{ name: "registry:3.1.1", keepLocally: true }]);
  });

  test("the same resources as behind the proxy, less the proxy's: switching keeps the volume (same name, same URN)", () => {
    const names = (x: Deployment, prefix: string) =>
      [...new Set(recorded.filter((r) => r.name.startsWith(`${prefix}-`)).map((r) => `${r.type} ${r.name.slice(prefix.length)}`))].sort();
    // Less the socket volume too, which only the proxy needs.
    expect(names(d, "direct")).toEqual(names(proxied, "same").filter((n) => !n.includes("-proxy-") && !n.endsWith("-registry-socket")));
    expect(d.one(T.volume, "registry-data").inputs.name).toBe("reg-t-data");
    expect(d.one(T.network).inputs.name).toBe("reg-t-net");
    expect(d.options.get("direct-registry-data")?.retainOnDelete).toBe(true);
  });

  test("the registry publishes its own TLS port at listenAddress:port and keeps its name, network and volume", () => {
    const registry = d.one(T.container, "registry-container");
    expect(registry.inputs.ports).toEqual([{ internal: 5000, external: 5443, ip: "0.0.0.0" }]);
    expect(registry.inputs.networkMode).toBeUndefined();
    expect(registry.inputs.name).toBe("reg-t-registry");
    expect(registry.inputs.networksAdvanced).toEqual([{ name: "reg-t-net" }]);
    expect(registry.inputs.volumes).toEqual([{ volumeName: "reg-t-data", containerPath: "/var/lib/registry" }]);
    // Nothing about TLS or auth in the environment `docker inspect` shows.
    expect(registry.inputs.envs).toEqual(["OTEL_TRACES_EXPORTER=none"]);
    expect(d.options.get("direct-registry-container")?.deleteBeforeReplace).toBe(true);
    expect(d.options.get("direct-registry-container")?.replaceOnChanges).toEqual(["uploads", "healthcheck", "networkMode"]);
  });

  test("it gets its config (TLS on every interface, htpasswd auth), the chain, the key and the htpasswd as files", () => {
    const registry = d.one(T.container, "registry-container");
    const uploads = Object.fromEntries(registry.inputs.uploads.map((u: { file: string }) => [u.file, u]));
    expect(Object.keys(uploads).sort()).toEqual([
      "/etc/distribution/config.yml",
      "/etc/docker/registry/config.yml",
      "/etc/docker/registry/htpasswd",
      "/etc/docker/registry/htpasswd.sha256",
      "/etc/docker/registry/tls/chain.pem",
      "/etc/docker/registry/tls/key.pem",
    ]);
    expect(uploads["/etc/distribution/config.yml"].content).toBe(uploads["/etc/docker/registry/config.yml"].content);
    expect(uploads["/etc/docker/registry/config.yml"].content).toBe(
      renderRegistryConfig({
        httpSecret: "password-of-direct-registry-http-secret",
        listen: { net: "tcp", addr: ":5000" },
        dataDir: "/var/lib/registry",
        deleteEnabled: true,
        tls: {
          certificatePath: "/etc/docker/registry/tls/chain.pem",
          privateKeyPath: "/etc/docker/registry/tls/key.pem",
          htpasswdPath: "/etc/docker/registry/htpasswd",
          realm: "Registry realm",
        },
      }),
    );
    expect(uploads["/etc/docker/registry/tls/chain.pem"].content).toBe("CERT(direct-server-cert)\nCERT(direct-ca-cert)\n");
    expect(uploads["/etc/docker/registry/tls/key.pem"].content).toBe("PRIVATE-KEY(direct-server-key)");
    expect(Object.fromEntries(Object.values(uploads).map((u: any) => [u.file, u.permissions]))).toEqual({
      "/etc/distribution/config.yml": "0600",
      "/etc/docker/registry/config.yml": "0600",
      "/etc/docker/registry/htpasswd": "0600",
      "/etc/docker/registry/htpasswd.sha256": "0600",
      "/etc/docker/registry/tls/chain.pem": "0644",
      "/etc/docker/registry/tls/key.pem": "0600",
    });
    // The digest the health check compares the htpasswd with.
    expect(uploads["/etc/docker/registry/htpasswd.sha256"].content).toBe(
      htpasswdDigestLine(uploads["/etc/docker/registry/htpasswd"].content),
    );
    const lines = uploads["/etc/docker/registry/htpasswd"].content.split("\n");
    expect(lines).toEqual([expect.stringMatching(/^admin:\$2a\$04\$/), expect.stringMatching(/^ci:\$2a\$04\$/), ""]);
    expect(bcrypt.compareSync("password-of-direct-users-admin", lines[0].slice("admin:".length))).toBe(true);
    expect(bcrypt.compareSync("password-of-direct-users-ci", lines[1].slice("ci:".length))).toBe(true);
  });

  test("the key, the htpasswd and the config are secrets; the chain is not", async () => {
    const uploads: { file: string; content: pulumi.Input<string> }[] = d.props.get("direct-registry-container")?.uploads;
    const secretness = await Promise.all(uploads.map(async (u) => [u.file, await pulumi.isSecret(pulumi.output(u.content))]));
    expect(Object.fromEntries(secretness)).toEqual({
      "/etc/distribution/config.yml": true,
      "/etc/docker/registry/config.yml": true,
      "/etc/docker/registry/htpasswd": true,
      "/etc/docker/registry/htpasswd.sha256": true,
      "/etc/docker/registry/tls/chain.pem": false,
      "/etc/docker/registry/tls/key.pem": true,
    });
    expect(isSecretInput(d.one(T.container, "registry-container").raw.uploads)).toBe(true);
  });

  test("the health check checks the htpasswd against its digest, then asks the TLS port (a 200 on `/` means serving with working storage)", () => {
    const registry = d.one(T.container, "registry-container");
    expect(registry.inputs.healthcheck.tests).toEqual([
      "CMD-SHELL",
      "sha256sum -c /etc/docker/registry/htpasswd.sha256 >/dev/null 2>&1 && wget -q --no-check-certificate -O /dev/null https://127.0.0.1:5000/ || exit 1",
    ]);
    // Behind the proxy: the socket opened to nginx's workers, then distribution's own health.
    expect(proxied.one(T.container, "registry-container").inputs.healthcheck.tests).toEqual([
      "CMD-SHELL",
      "chmod 0666 /run/registry/registry.sock && wget -q -O /dev/null http://127.0.0.1:5001/debug/health || exit 1",
    ]);
  });

  test("outputs have the same shape: endpoints, login lines, client hosts; no proxy container", async () => {
    expect(await valueOf(d.registry.endpoints)).toEqual([
      "192.0.2.10:5443",
      "198.51.100.10:5443",
      "registry.example.com:5443",
      "localhost:5443",
    ]);
    expect(Object.keys(await valueOf(d.registry.dockerLoginCommands))).toEqual(["admin", "ci"]);
    expect(await valueOf(d.registry.dockerLoginCommand)).toContain("docker login 192.0.2.10:5443 --username admin --password-stdin");
    expect(await valueOf(d.registry.containers)).toEqual({ registry: "reg-t-registry", proxy: "" });
    expect(await valueOf(proxied.registry.containers)).toEqual({ registry: "reg-t-registry", proxy: "reg-t-nginx" });
    expect(await valueOf(pulumi.output(d.registry.clientHosts))).toEqual(["deploy@198.51.100.21:22", "root@203.0.113.22:2222", "local"]);
    expect(d.resources(T.remote).map((c) => c.name)).toEqual([
      "direct-trust-198.51.100.21-22",
      "direct-trust-203.0.113.22-2222",
      "direct-trust-198.51.100.21-22-check",
      "direct-trust-203.0.113.22-2222-check",
    ]);
  });
});

describe("dockerHost: the Docker resources on another engine", () => {
  // The provider reference each registration carries, by resource name (read from the mock monitor).
  const providerOf = new Map<string, string>();
  const monitor = pulumi.runtime.getMonitor() as unknown as { mocks: { newResource: (args: pulumi.runtime.MockResourceArgs) => unknown } };
  const newResource = monitor.mocks.newResource.bind(monitor.mocks);
  monitor.mocks.newResource = (args) => {
    providerOf.set(args.name, args.provider ?? "");
    return newResource(args);
  };
  const CA = "-----BEGIN CERTIFICATE-----\nMIIBca\n-----END CERTIFICATE-----\n";
  const CERT = "-----BEGIN CERTIFICATE-----\nMIIBcert\n-----END CERTIFICATE-----\n";
  const KEY = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----\n";
  let remote: Deployment;
  let local: Deployment;
  beforeAll(async () => {
    remote = await deploy(
      "far",
      parseSettings(
        {
          ipAddresses: '["198.51.100.7"]',
          dnsNames: '["registry.example.com"]',
          port: "5443",
          namePrefix: "reg-far",
          dockerHost: "tcp://198.51.100.7:2376",
          dockerTlsCaCert: CA,
          dockerTlsCert: CERT,
          dockerTlsKey: KEY,
        },
        "private-registry",
        "test",
        ["dockerTlsCaCert", "dockerTlsCert", "dockerTlsKey"],
      ),
    );
    local = await deploy("near", labSettings());
  });
  const dockerNamesOf = (d: Deployment, prefix: string) =>
    [T.network, T.volume, T.image, T.container]
      .flatMap((t) => d.resources(t))
      .map((r) => r.name)
      .filter((n) => n.startsWith(prefix));

  test("one explicit docker provider with the host and the client TLS material, all three secrets", () => {
    const providers = remote.resources("pulumi:providers:docker");
    expect(providers.map((p) => p.name)).toEqual(["far-docker"]);
    expect(providers[0].inputs).toMatchObject({ host: "tcp://198.51.100.7:2376", caMaterial: CA, certMaterial: CERT, keyMaterial: KEY });
    for (const k of ["caMaterial", "certMaterial", "keyMaterial"]) expect(isSecretInput(providers[0].raw[k])).toBe(true);
    expect(providers[0].inputs.sshOpts).toBeUndefined();
  });

  test("every Docker resource (network, volume, images, containers) uses it; the others keep their own providers", () => {
    const names = dockerNamesOf(remote, "far-");
    expect(names.sort()).toEqual([
      "far-proxy-container",
      "far-proxy-image",
      "far-proxy-users",
      "far-proxy-users-writer",
      "far-registry-container",
      "far-registry-data",
      "far-registry-image",
      "far-registry-network",
      "far-registry-socket",
    ]);
    for (const n of names) expect(providerOf.get(n)).toMatch(/::far-docker::/);
    for (const n of ["far-ca-key", "far-server-key", "far-registry-http-secret"]) expect(providerOf.get(n) ?? "").not.toMatch(/far-docker/);
  });

  test("without dockerHost there is no explicit provider: a stack made before keeps its resources as they are", () => {
    expect(local.resources("pulumi:providers:docker")).toEqual([]);
    for (const n of dockerNamesOf(local, "near-")) expect(providerOf.get(n) ?? "").not.toMatch(/providers:docker::(?!default)/);
  });

  test("ssh:// gets batch-mode SSH options and no TLS material", async () => {
    const d = await deploy(
      "viassh",
      parseSettings({ dockerHost: "ssh://deploy@registry.example.com", namePrefix: "reg-ssh" }, "private-registry", "test"),
    );
    const [provider] = d.resources("pulumi:providers:docker");
    expect(provider.inputs.host).toBe("ssh://deploy@registry.example.com");
    // A provider's list settings reach the engine as JSON text.
    expect(JSON.parse(provider.inputs.sshOpts)).toEqual(["-o", "BatchMode=yes", "-o", "ConnectTimeout=10"]);
    expect(provider.inputs.keyMaterial).toBeUndefined();
  });

  test("outputs have the same shape as on the local engine", async () => {
    expect(await valueOf(remote.registry.endpoints)).toEqual(["198.51.100.7:5443", "registry.example.com:5443"]);
    expect(await valueOf(remote.registry.containers)).toEqual({ registry: "reg-far-registry", proxy: "reg-far-nginx" });
  });
});

describe("registered outputs", () => {
  // Client certificates need a real certificate for their fingerprints.
  const CERT = `-----BEGIN CERTIFICATE-----
MIIBezCCASGgAwIBAgIUOr2JxXwsYRfQq43xWAaHg0fy49YwCgYIKoZIzj0EAwIw
EzERMA8GA1UEAwwIc25hcHNob3QwHhcNMjYxMjAyMTA0MjI3WhcNMzYxMTI5MTA0
MjI3WjATMREwDwYDVQQDDAhzbmFwc2hvdDBZMBMGByqGSM49AgEGCCqGSM49AwEH
A0IABGZw70NM6M6OzhumyQIzi/ETriKqZbcu2ZhsIwcJoiK+/kgxie+7kprH78tx
obABeh6pDUXXIfhA/09C4M/M6sujUzBRMB0GA1UdDgQWBBRc187mNdpwGd7YQcZK
5StEa+uIvjAfBgNVHSMEGDAWgBRc187mNdpwGd7YQcZK5StEa+uIvjAPBgNVHRMB
Af8EBTADAQH/MAoGCCqGSM49BAMCA0gAMEUCIQD+WLCs1YiV/wxHRXMP/IC0vVda
f0u82/kuwo2RtL9VcwIgA2c+AxSBGitkfw6QdAb7fJNGyTwRMCDXSe0xj5kg0Xs=
-----END CERTIFICATE-----
`;
  const monitor = pulumi.runtime.getMonitor() as unknown as { mocks: { newResource: (args: pulumi.runtime.MockResourceArgs) => any } };
  const newResource = monitor.mocks.newResource.bind(monitor.mocks);
  monitor.mocks.newResource = (args) => {
    const result = newResource(args);
    return /^outs-client-.*-cert$/.test(args.name) ? { ...result, state: { ...result.state, certPem: CERT } } : result;
  };

  /** A component's public properties: its own fields less the SDK's (`urn`, `__...`). */
  const publicProperties = (c: pulumi.ComponentResource) =>
    Object.fromEntries(Object.entries(c).filter(([k]) => k !== "urn" && !k.startsWith("__")));
  const componentsOf = (prefix: string) =>
    [...registeredOutputs.keys()].filter((c) => (c as unknown as { __name: string }).__name.startsWith(prefix));

  test.each([
    [
      "every component of both layouts, with mutual TLS, a CA rotation and another engine",
      "outs-",
      {
        clientCertificates: "true",
        caGeneration: "2",
        caAlsoTrust: "[1]",
        dockerHost: "ssh://deploy@registry.example.com",
      },
    ],
    ["the registry layout", "outsd-", { tlsTermination: "registry" }],
  ])("%s: each registers exactly its public readonly properties", async (_what, prefix, overrides) => {
    const name = prefix.slice(0, -1);
    await deploy(name, labSettings(overrides));
    const components = componentsOf(prefix);
    const kinds = new Set(components.map((c) => c.constructor.name));
    expect([...kinds].sort()).toEqual(
      prefix === "outs-"
        ? ["CertificateAuthority", "ClientCertificate", "ClientTrust", "Registry", "RegistryCredentials", "ServerCertificate", "TlsProxy"]
        : ["CertificateAuthority", "ClientTrust", "Registry", "RegistryCredentials", "ServerCertificate"],
    );
    for (const component of [...components]) {
      const outputs = registeredOutputs.get(component) as Record<string, unknown>;
      const properties = publicProperties(component);
      expect({ [component.constructor.name]: Object.keys(outputs).sort() }).toEqual({
        [component.constructor.name]: Object.keys(properties).sort(),
      });
      for (const [key, value] of Object.entries(properties)) expect(outputs[key]).toBe(value);
    }
    // PrivateRegistry itself is registered from the top.
    const top = [...registeredOutputs.keys()].find((c) => (c as unknown as { __name: string }).__name === name) as pulumi.ComponentResource;
    expect(Object.keys(registeredOutputs.get(top) as object).sort()).toEqual(Object.keys(publicProperties(top)).sort());
    expect(Object.keys(publicProperties(top)).sort()).toEqual([
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
  });
});
