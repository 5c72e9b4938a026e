// The client-host scripts, checked by sh -n, shellcheck, and by running them against a scratch directory.
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { asCommand, renderInstallScript, renderRemoveScript, shellQuote } from "../lib/clientTrustScript";
import { registryEndpoints } from "../lib/endpoints";
import { makeTestPki } from "./helpers/pki";

const endpoints = registryEndpoints(["192.0.2.10", "2001:db8::1"], ["registry.example.com"], 5443);
const variants = [false, true].map((trustOs) => ({ trustOs, input: { endpoints, trustOs, anchorName: "registry-test" } }));

function sh(script: string, stdin = "") {
  return spawnSync("sh", ["-c", script], { input: stdin, encoding: "utf8" });
}

describe("endpoints", () => {
  test("port 443 means the bare host; other ports are host:port; IPv6 in brackets", () => {
    expect(registryEndpoints(["192.0.2.10", "2001:db8::1"], ["registry.example.com"], 443))
      .toEqual(["192.0.2.10", "[2001:db8::1]", "registry.example.com"]);
    expect(endpoints).toEqual(["192.0.2.10:5443", "[2001:db8::1]:5443", "registry.example.com:5443"]);
  });
});

describe.each(variants)("client trust scripts (trustOs: $trustOs)", ({ input }) => {
  const scripts = { install: renderInstallScript(input), remove: renderRemoveScript(input) };

  test.each(Object.keys(scripts))("%s script passes sh -n", (name) => {
    const result = spawnSync("sh", ["-n"], { input: scripts[name as keyof typeof scripts], encoding: "utf8" });
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
  });

  test.each(Object.keys(scripts))("%s script passes shellcheck", (name) => {
    const result = spawnSync("shellcheck", ["--shell=sh", "-"], { input: scripts[name as keyof typeof scripts], encoding: "utf8" });
    expect(result.stdout).toBe("");
    expect(result.status).toBe(0);
  });

  test("the wrapped command line passes shellcheck too", () => {
    const result = spawnSync("shellcheck", ["--shell=sh", "-"], { input: asCommand(scripts.install, true), encoding: "utf8" });
    expect(result.stdout).toBe("");
  });
});

describe("running the scripts against a scratch certs.d", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "client-trust-"));
  const certsDir = path.join(dir, "certs.d");
  const pki = makeTestPki(dir, ["DNS:registry.example.com"]);
  const ca = fs.readFileSync(pki.caCert, "utf8");
  const input = { endpoints, trustOs: false, anchorName: "registry-test", dockerCertsDir: certsDir };
  const install = asCommand(renderInstallScript(input), false);
  const remove = asCommand(renderRemoveScript(input), false);
  const installed = () => endpoints.map((e) => path.join(certsDir, e, "ca.crt"));

  test("install puts the CA where Docker looks for each endpoint", () => {
    const result = sh(install, ca);
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
    for (const file of installed()) {
      expect(fs.readFileSync(file, "utf8")).toBe(ca);
      expect(fs.statSync(file).mode & 0o777).toBe(0o644);
    }
    expect(fs.readdirSync(certsDir).sort()).toEqual(["192.0.2.10:5443", "[2001:db8::1]:5443", "registry.example.com:5443"]);
  });

  test("install twice is the same as once (no duplicates, no leftovers)", () => {
    expect(sh(install, ca).status).toBe(0);
    expect(sh(install, ca).status).toBe(0);
    for (const e of endpoints) expect(fs.readdirSync(path.join(certsDir, e))).toEqual(["ca.crt"]);
  });

  test("a new CA replaces the old one in place", () => {
    const other = makeTestPki(fs.mkdtempSync(path.join(dir, "other-")), ["DNS:x.example.com"]);
    const newCa = fs.readFileSync(other.caCert, "utf8");
    expect(sh(install, newCa).status).toBe(0);
    for (const file of installed()) expect(fs.readFileSync(file, "utf8")).toBe(newCa);
  });

  test("install refuses stdin that is not a certificate, and changes nothing", () => {
    const before = installed().map((f) => fs.readFileSync(f, "utf8"));
    const result = sh(install, "not a certificate");
    expect(result.status).toBe(1);
    expect(result.stderr).toContain("expected the CA certificate (PEM) on stdin");
    expect(installed().map((f) => fs.readFileSync(f, "utf8"))).toEqual(before);
  });

  test("remove deletes what install put there, and is safe to run again", () => {
    fs.mkdirSync(path.join(certsDir, "other.example.com"));
    fs.writeFileSync(path.join(certsDir, "other.example.com", "ca.crt"), "someone else's");
    expect(sh(remove).status).toBe(0);
    expect(fs.readdirSync(certsDir)).toEqual(["other.example.com"]);
    expect(sh(remove).status).toBe(0);
  });

  test("the CA is never on the command line", () => {
    expect(install).not.toContain(ca.split("\n")[1]);
  });
});

describe("shellQuote", () => {
  test("round-trips quotes and spaces through sh", () => {
    const value = `it's a "test" $HOME \\ end`;
    expect(sh(`printf '%s' ${shellQuote(value)}`).stdout).toBe(value);
  });
});
