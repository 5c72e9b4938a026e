import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";

export interface TestPki {
  dir: string;
  caCert: string;
  chain: string;
  key: string;
}

/** A real CA and a server certificate with the given SANs, made with openssl. */
export function makeTestPki(dir: string, sans: string[]): TestPki {
  const p = (name: string) => path.join(dir, name);
  const openssl = (...args: string[]) => execFileSync("openssl", args, { stdio: ["ignore", "pipe", "pipe"] });
  openssl(
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    p("ca.key"),
    "-out",
    p("ca.crt"),
    "-days",
    "2",
    "-subj",
    "/CN=Test Registry CA",
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  );
  openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", p("server.key"), "-out", p("server.csr"), "-subj", "/CN=registry");
  fs.writeFileSync(p("ext.cnf"), `subjectAltName=${sans.join(",")}\nextendedKeyUsage=serverAuth\n`);
  openssl(
    "x509",
    "-req",
    "-in",
    p("server.csr"),
    "-CA",
    p("ca.crt"),
    "-CAkey",
    p("ca.key"),
    "-CAcreateserial",
    "-out",
    p("server.crt"),
    "-days",
    "1",
    "-extfile",
    p("ext.cnf"),
  );
  fs.writeFileSync(p("chain.pem"), fs.readFileSync(p("server.crt"), "utf8") + fs.readFileSync(p("ca.crt"), "utf8"));
  return { dir, caCert: p("ca.crt"), chain: p("chain.pem"), key: p("server.key") };
}

/** An EC P-256 CA (made in milliseconds) valid for two days: its key and certificate written in `dir`. */
export function makeEcCa(dir: string, o: { key: string; cert: string; commonName: string; keyUsage?: string }): void {
  execFileSync(
    "openssl",
    ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", o.key, "-out", o.cert, "-days", "2"]
      .concat(["-subj", `/CN=${o.commonName}`, "-addext", "basicConstraints=critical,CA:TRUE"])
      .concat(["-addext", `keyUsage=critical,${o.keyUsage ?? "keyCertSign,cRLSign"}`]),
    { cwd: dir, stdio: ["ignore", "pipe", "pipe"] },
  );
}

/** An EC P-256 certificate `<name>.pem` (key `<name>.key`) signed by the CA `<ca>.pem`/`<ca>.key` in `dir`, with the extensions `ext`. */
export function makeEcCert(dir: string, name: string, ca: string, commonName: string, ext: string): void {
  const openssl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
  openssl(
    "req",
    "-new",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-subj",
    `/CN=${commonName}`,
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.csr`,
  );
  fs.writeFileSync(path.join(dir, `${name}.ext`), ext);
  openssl(
    "x509",
    "-req",
    "-in",
    `${name}.csr`,
    "-CA",
    `${ca}.pem`,
    "-CAkey",
    `${ca}.key`,
    "-CAcreateserial",
    "-days",
    "2",
    "-extfile",
    `${name}.ext`,
    "-out",
    `${name}.pem`,
  );
}

/** Only a CA certificate (ECDSA P-256: made in milliseconds), for tests that install it but never dial a server. */
export function makeTestCa(dir: string, commonName = "Test Registry CA"): string {
  makeEcCa(dir, { key: "ca.key", cert: "ca.crt", commonName });
  return fs.readFileSync(path.join(dir, "ca.crt"), "utf8");
}
