// The swarm layout's pure parts (lib/swarm.ts, the swarm setting, the S3 config, the
// proxy's and the edge's nginx.conf), read and checked by Debian's real nginx and sh.
// The real deployment on a two-node swarm is tests/swarm.test.ts.
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { parseSettings, Settings } from "../lib/settings";
import { argsFromSettings } from "../lib/registryArgs";
import { renderRegistryConfig } from "../lib/registryConfig";
import { renderNginxConf } from "../lib/nginxConf";
import { renderEdgeConf, swarmNames, swarmProxyStartScript, tasksName } from "../lib/swarm";
import { makeTestPki } from "./helpers/pki";
import { scratchDir } from "./helpers/scratch";

// js-yaml is a dependency of @pulumi/pulumi; it ships no types.
// eslint-disable-next-line @typescript-eslint/no-var-requires
const yaml = require("js-yaml") as { load(text: string): unknown };
const NGINX = ["/usr/sbin/nginx", "/usr/bin/nginx"].find((p) => fs.existsSync(p)) ?? "nginx";
const parse = (raw: Record<string, string>, secretKeys: string[] = ["swarm"]) => parseSettings(raw, "private-registry", "dev", secretKeys);
function messageFor(raw: Record<string, string>, secretKeys: string[] = ["swarm"]): string {
  try {
    parse(raw, secretKeys);
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error("no error");
}
const ACCESS = "AKIDEXAMPLEACCESS1";
const SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY";
const SWARM = { s3Endpoint: "https://s3.example.com:9000", s3Bucket: "registry-images", s3AccessKey: ACCESS, s3SecretKey: SECRET };
const swarmConfig = (fields: Record<string, unknown>, more: Record<string, string> = {}) => ({ swarm: JSON.stringify(fields), ...more });
const reveal = <T>(o: pulumi.Output<T>): Promise<T> => new Promise((resolve) => o.apply((v) => resolve(v)));

describe("the swarm setting", () => {
  test("unset or {}: the single-host layouts, no swarm in the args", () => {
    expect(parse({}).swarm).toBeUndefined();
    expect(parse({ swarm: "{}" }).swarm).toBeUndefined();
    expect(argsFromSettings(parse({})).swarm).toBeUndefined();
  });

  test("set: the replicas (2 by default), the bucket, path-style addressing, keys as secrets", async () => {
    const s = parse(swarmConfig(SWARM)).swarm as NonNullable<Settings["swarm"]>;
    expect({ ...s, s3: { ...s.s3, accessKey: "", secretKey: "" } }).toEqual({
      replicas: 2,
      proxyReplicas: 2,
      s3: {
        endpoint: "https://s3.example.com:9000",
        bucket: "registry-images",
        region: "us-east-1",
        accessKey: "",
        secretKey: "",
        forcePathStyle: true,
        rootDirectory: "",
      },
    });
    expect(await reveal(s.s3.secretKey)).toBe(SECRET);
    const args = argsFromSettings(parse(swarmConfig({ ...SWARM, replicas: 3, proxyReplicas: 1 })));
    expect(args.swarm?.replicas).toBe(3);
    expect(args.swarm?.proxyReplicas).toBe(1);
    expect(args.swarm?.storage.bucket).toBe("registry-images");
    expect(args.proxy).toBeDefined();
  });

  test("keys set in plain text are refused, naming the key and never showing a value", () => {
    const message = messageFor(swarmConfig(SWARM), []);
    expect(message).toContain('"private-registry:swarm.s3SecretKey"');
    expect(message).toContain('"private-registry:swarm.s3AccessKey"');
    expect(message).toContain("config set --secret --path 'swarm.s3SecretKey'");
    expect(message).not.toContain(SECRET);
    expect(message).not.toContain(ACCESS);
  });

  test("bad fields: one message each, with the value where it is not secret", () => {
    const message = messageFor(
      swarmConfig({
        ...SWARM,
        s3Endpoint: "ftp://s3.example.com/path",
        s3Bucket: "Bad_Bucket",
        replicas: 0,
        s3Region: "US East",
        color: "x",
      }),
    );
    expect(message).toContain('"private-registry:swarm.s3Endpoint" = "ftp://s3.example.com/path"');
    expect(message).toContain('"private-registry:swarm.s3Bucket" = "Bad_Bucket"');
    expect(message).toContain('"private-registry:swarm.replicas" = 0: must be a whole number from 1 to 32');
    expect(message).toContain('"private-registry:swarm.s3Region" = "US East"');
    expect(message).toContain("swarm.color");
    expect(message).not.toContain(SECRET);
    const missing = messageFor(swarmConfig({ s3AccessKey: ACCESS, s3SecretKey: SECRET }));
    expect(missing).toContain('"private-registry:swarm.s3Endpoint" = "(missing)": is required');
    expect(missing).toContain('"private-registry:swarm.s3Bucket" = "(missing)": is required');
  });

  test("what the layout cannot do is refused before anything is created", () => {
    const message = messageFor(
      swarmConfig(SWARM, {
        tlsTermination: "registry",
        metrics: "true",
        clientCertificates: "true",
        listenAddress: "192.0.2.10",
        mirrors: JSON.stringify([{ upstream: "https://registry-1.docker.io", port: 5001 }]),
      }),
    );
    for (const key of ["tlsTermination", "metrics", "clientCertificates", "listenAddress", "mirrors"]) {
      expect(message).toMatch(new RegExp(`"private-registry:${key}" = [^\\n]* in the swarm layout`));
    }
    expect(message).not.toContain(SECRET);
  });
});

describe("the registry replicas' config", () => {
  const config = renderRegistryConfig({
    httpSecret: "shared-http-secret",
    listen: { net: "tcp", addr: ":5000" },
    dataDir: "/var/lib/registry",
    deleteEnabled: true,
    drainTimeout: "10s",
    s3: {
      endpoint: "http://10.0.0.5:8333",
      region: "us-east-1",
      bucket: "images",
      accessKey: "ak",
      secretKey: "sk",
      forcePathStyle: true,
      rootDirectory: "/reg",
    },
  });
  const parsed = yaml.load(config) as {
    storage: Record<string, Record<string, unknown>>;
    http: Record<string, unknown>;
  };

  test("S3 storage with redirects off, no filesystem, one shared secret, a drain time", () => {
    expect(parsed.storage.s3).toEqual({
      regionendpoint: "http://10.0.0.5:8333",
      region: "us-east-1",
      bucket: "images",
      accesskey: "ak",
      secretkey: "sk",
      forcepathstyle: true,
      secure: false,
      v4auth: true,
      rootdirectory: "/reg",
    });
    expect(parsed.storage.redirect).toEqual({ disable: true });
    expect(parsed.storage.filesystem).toBeUndefined();
    expect(parsed.storage.delete).toEqual({ enabled: true });
    expect(parsed.http.secret).toBe("shared-http-secret");
    expect(parsed.http.draintimeout).toBe("10s");
    expect(parsed.http.addr).toBe(":5000");
  });
});

describe("nginx.conf of the TLS proxy replicas and of the edge, on Debian's real nginx", () => {
  const dir = scratchDir("swarm-nginx-");
  const pki = makeTestPki(dir, ["DNS:registry.example.com", "IP:192.0.2.10"]);
  const names = swarmNames("reg");
  const proxy = renderNginxConf({
    serverNames: ["registry.example.com", "192.0.2.10"],
    upstream: `${tasksName(names.registryService)}:5000`,
    listenPort: 18443,
    certificatePath: pki.chain,
    privateKeyPath: pki.key,
    usersDirectory: path.join(dir, "users"),
    swarm: { resolver: "127.0.0.11", proxyProtocolFrom: ["10.0.9.0/24"] },
    pidPath: path.join(dir, "proxy.pid"),
    accessLogPath: path.join(dir, "access.log"),
  });
  const edge = renderEdgeConf({
    listenPort: 18444,
    upstream: `${tasksName(names.proxyService)}:443`,
    resolver: "127.0.0.11",
    pidPath: path.join(dir, "edge.pid"),
  });

  test.each([
    ["proxy", proxy],
    ["edge", edge],
  ])("the %s's config passes nginx -t", (name, conf) => {
    const file = path.join(dir, `${name}.conf`);
    fs.writeFileSync(file, conf);
    const result = spawnSync(NGINX, ["-t", "-p", dir, "-c", file], { encoding: "utf8" });
    expect(result.stderr).toContain("test is successful");
    expect(result.status).toBe(0);
  });

  test("the proxy finds the registry replicas by DNS on each request, skips one that refuses, trusts PROXY headers from the overlay only", () => {
    expect(proxy).not.toContain("upstream registry_upstream");
    expect(proxy).toContain("resolver 127.0.0.11 valid=1s ipv6=off;");
    expect(proxy).toContain("proxy_pass http://tasks.reg-registry:5000$request_uri;");
    expect(proxy).toContain("proxy_next_upstream error timeout non_idempotent;");
    expect(proxy).toContain("listen 18443 ssl proxy_protocol;");
    expect(proxy).toContain("set_real_ip_from 10.0.9.0/24;");
    expect(proxy).toContain("real_ip_header proxy_protocol;");
  });

  test("the edge holds no certificate and passes TCP on with the client's address", () => {
    expect(edge).not.toMatch(/ssl_certificate|auth_basic/);
    expect(edge).toContain("proxy_protocol on;");
    expect(edge).toContain('default "tasks.reg-proxy:443";');
    expect(edge).toContain("proxy_next_upstream on;");
  });

  test("the single-host config is unchanged: a kept-alive upstream, no PROXY protocol", () => {
    const single = renderNginxConf({
      serverNames: ["192.0.2.10"],
      upstream: "unix:/run/registry/registry.sock",
      listenPort: 443,
      certificatePath: pki.chain,
      privateKeyPath: pki.key,
      usersDirectory: path.join(dir, "users"),
    });
    expect(single).toContain("upstream registry_upstream");
    expect(single).not.toContain("proxy_protocol");
    expect(single).not.toContain("resolver ");
  });
});

describe("the TLS proxy replica's start script", () => {
  test("is valid sh that stages the users' files, runs the users writer, then execs nginx in the foreground", () => {
    const script = swarmProxyStartScript("/etc/nginx/registry/users");
    expect(spawnSync("sh", ["-n", "-c", script]).status).toBe(0);
    expect(script).toContain("cp '/run/secrets/registry-htpasswd' '/etc/nginx/registry/users/.next/htpasswd'");
    expect(script).toContain("mv -f '.next/htpasswd' 'htpasswd'");
    expect(script.trim().split("\n").pop()).toBe("exec nginx -g 'daemon off;'");
  });
});
