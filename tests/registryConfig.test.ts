// The registry's rendered config and health check, for distribution 2.8 and 3 alike.
import { execFileSync, spawnSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import {
  REGISTRY_CONFIG_PATH,
  REGISTRY3_CONFIG_PATH,
  REGISTRY_CONFIG_PATHS,
  REGISTRY_TLS_PATHS,
  htpasswdDigestLine,
  registryHealthTest,
  registrySocketHealthTest,
  renderRegistryConfig,
} from "../lib/registryConfig";
import { scratchDir } from "./helpers/scratch";

const tls = {
  certificatePath: REGISTRY_TLS_PATHS.certificateChain,
  privateKeyPath: REGISTRY_TLS_PATHS.privateKey,
  htpasswdPath: REGISTRY_TLS_PATHS.htpasswd,
  realm: "Registry realm",
};
const SOCKET = "/run/registry/registry.sock";
const base = {
  httpSecret: "s3cret",
  listen: { net: "unix" as const, addr: SOCKET },
  debugAddress: "127.0.0.1:5001",
  dataDir: "/var/lib/registry",
  deleteEnabled: true,
};

describe("config paths", () => {
  test("the config goes where registry:2 and registry:3 read it", () => {
    expect(REGISTRY_CONFIG_PATH).toBe("/etc/docker/registry/config.yml");
    expect(REGISTRY3_CONFIG_PATH).toBe("/etc/distribution/config.yml");
    expect([...REGISTRY_CONFIG_PATHS]).toEqual([REGISTRY_CONFIG_PATH, REGISTRY3_CONFIG_PATH]);
  });

  test("the htpasswd digest file sits beside the htpasswd, outside the data volume", () => {
    expect(REGISTRY_TLS_PATHS.htpasswdDigest).toBe(`${REGISTRY_TLS_PATHS.htpasswd}.sha256`);
  });
});

describe("renderRegistryConfig: one config for both majors", () => {
  test("behind the proxy: plain HTTP on a unix socket, the debug server on loopback, no TLS, no auth", () => {
    const yml = renderRegistryConfig(base);
    expect(yml).toContain(`\nhttp:\n  net: unix\n  addr: ${SOCKET}\n  debug:\n    addr: 127.0.0.1:5001\n`);
    expect(yml).toContain('\n  secret: "s3cret"\n');
    expect(yml).toContain("\n  delete:\n    enabled: true\n");
    expect(yml).not.toMatch(/\n  tls:|\nauth:/);
  });

  test("metrics: the debug server serves Prometheus at /metrics; without them no prometheus section", () => {
    expect(renderRegistryConfig({ ...base, prometheus: true })).toContain(
      "\n  debug:\n    addr: 127.0.0.1:5001\n    prometheus:\n      enabled: true\n      path: /metrics\n  secret:",
    );
    expect(renderRegistryConfig(base)).not.toContain("prometheus");
  });

  test("registry layout: minimumtls tls1.2 (a value 2.8 and 3 both accept) and the htpasswd at the uploaded path", () => {
    const yml = renderRegistryConfig({ ...base, listen: { net: "tcp", addr: ":5000" }, debugAddress: undefined, tls });
    expect(yml).toContain("\n    minimumtls: tls1.2\n");
    expect(yml).toContain(`\n    path: "${REGISTRY_TLS_PATHS.htpasswd}"\n`);
    expect(yml).toContain('\n    realm: "Registry realm"\n');
    // Cipher suites under the names both majors' http.tls.ciphersuites know.
    expect(yml).toContain("      - TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\n");
  });
});

describe("htpasswdDigestLine", () => {
  test("is sha256sum's check line for the content at the configured path", () => {
    const content = "admin:$2a$04$abc\n";
    const hex = crypto.createHash("sha256").update(content).digest("hex");
    expect(htpasswdDigestLine(content)).toBe(`${hex}  /etc/docker/registry/htpasswd\n`);
    expect(htpasswdDigestLine(content, "/x/y")).toBe(`${hex}  /x/y\n`);
  });

  test("sha256sum -c accepts the uploaded file and refuses a generated or missing one", () => {
    const dir = scratchDir("registry-config-test-");
    const file = path.join(dir, "htpasswd");
    const ours = "admin:$2a$04$0123456789012345678901uLhZyWcDgG5w8lT8sL7sJx0d3Gk6lqS\n";
    fs.writeFileSync(path.join(dir, "check"), htpasswdDigestLine(ours, file));
    const check = () => spawnSync("sha256sum", ["-c", path.join(dir, "check")], { encoding: "utf8" }).status;
    expect(check()).not.toBe(0); // missing
    fs.writeFileSync(file, ours);
    expect(check()).toBe(0);
    // What distribution v3 writes when the file is missing: one user "docker", no newline.
    fs.writeFileSync(file, "docker:$2a$10$GQEvuF0T7RQ3AQE4g583n.MEfNsNT8Bmm1zJn/U/JW9XuJqFckPEC");
    expect(check()).not.toBe(0);
  });
});

describe("registryHealthTest", () => {
  test("behind the proxy: the socket opened to nginx's workers, then distribution's own health on its debug server", () => {
    expect(registrySocketHealthTest(SOCKET, "127.0.0.1:5001")).toBe(
      `chmod 0666 ${SOCKET} && wget -q -O /dev/null http://127.0.0.1:5001/debug/health || exit 1`,
    );
  });

  test("with metrics: health first, then the Prometheus page copied whole by a rename; a failed copy keeps the last one and the registry healthy", () => {
    const dir = scratchDir("registry-metrics-test-");
    const socket = path.join(dir, "registry.sock");
    const metrics = path.join(dir, "metrics.prom");
    fs.writeFileSync(socket, "");
    // A wget stand-in on the PATH: /debug/health as $HEALTH says, /metrics as $METRICS says ("fail": exit 8, as wget on a 5xx).
    fs.mkdirSync(path.join(dir, "bin"));
    fs.writeFileSync(
      path.join(dir, "bin", "wget"),
      '#!/bin/sh\nout=""; while [ $# -gt 0 ]; do case "$1" in -O) out=$2; shift;; http*) url=$1;; esac; shift; done\n' +
        'case "$url" in */debug/health) [ "$HEALTH" = ok ] || exit 8;; */metrics) [ "$METRICS" = fail ] && exit 8; printf "%s" "$METRICS" >"$out";; esac\n',
      { mode: 0o755 },
    );
    const script = registrySocketHealthTest(socket, "127.0.0.1:5001", metrics);
    expect(script).toContain("http://127.0.0.1:5001/metrics");
    const run = (health: string, page: string) =>
      spawnSync("sh", ["-c", script], { env: { PATH: `${path.join(dir, "bin")}:${process.env.PATH}`, HEALTH: health, METRICS: page } })
        .status;
    expect(run("ok", "registry_up 1\n")).toBe(0);
    expect(fs.readFileSync(metrics, "utf8")).toBe("registry_up 1\n");
    expect(fs.statSync(metrics).mode & 0o777).toBe(0o644);
    expect(fs.statSync(socket).mode & 0o777).toBe(0o666);
    expect(run("ok", "fail")).toBe(0);
    expect(fs.readFileSync(metrics, "utf8")).toBe("registry_up 1\n");
    expect(run("bad", "registry_up 2\n")).toBe(1);
    expect(fs.readFileSync(metrics, "utf8")).toBe("registry_up 1\n");
  });

  test("with TLS: the htpasswd must match its digest before the GET counts", () => {
    expect(registryHealthTest(5000)).toBe(
      "sha256sum -c /etc/docker/registry/htpasswd.sha256 >/dev/null 2>&1 && " +
        "wget -q --no-check-certificate -O /dev/null https://127.0.0.1:5000/ || exit 1",
    );
  });

  test("the TLS check fails in sh when the digest does not match, whatever wget would say", () => {
    const dir = scratchDir("registry-health-test-");
    const script = registryHealthTest(5000)
      .replaceAll(REGISTRY_TLS_PATHS.htpasswdDigest, path.join(dir, "missing.sha256"))
      .replace(/wget [^|]*/, "true ");
    expect(spawnSync("sh", ["-c", script]).status).toBe(1);
    execFileSync("sh", ["-c", `printf 'x' >${dir}/h && sha256sum ${dir}/h >${dir}/missing.sha256`]);
    expect(spawnSync("sh", ["-c", script]).status).toBe(0);
  });
});
