// The pure parts of PrivateRegistry: resource names (part of every URN: a change here
// replaces resources on existing stacks), the trust bundle, the trustOs warning and the
// login lines. No Pulumi here.
import {
  caCommonName,
  caResourceName,
  clientCertificateResourceName,
  clientId,
  clientIds,
  trustedCaGenerations,
} from "../lib/registryNames";
import { osTrustHosts, osTrustWarning, trustBundle } from "../lib/trustBundle";
import { dockerLoginCommand, dockerLoginCommands } from "../lib/loginCommands";

describe("resource names per CA generation", () => {
  test("generation 1 keeps the name and common name the stack's first CA always had", () => {
    expect(caResourceName("registry", 1)).toBe("registry-ca");
    expect(caCommonName("Private Registry CA", 1)).toBe("Private Registry CA");
  });

  test("later generations are named for their generation", () => {
    expect(caResourceName("registry", 2)).toBe("registry-ca-g2");
    expect(caResourceName("lab", 17)).toBe("lab-ca-g17");
    expect(caCommonName("Private Registry CA", 2)).toBe("Private Registry CA (generation 2)");
  });

  test("the generations in use: the signing one first, then those also trusted, in order", () => {
    expect(trustedCaGenerations(1, [])).toEqual([1]);
    expect(trustedCaGenerations(2, [1])).toEqual([2, 1]);
    expect(trustedCaGenerations(3, [2, 1])).toEqual([3, 2, 1]);
  });
});

describe("client ids and their certificates' names", () => {
  const clients = [
    { user: "deploy", host: "198.51.100.21", port: 22 },
    { user: "root", host: "ci.example.com", port: 2222 },
  ];

  test("a client is user@host:port; the local machine is `local`, last", () => {
    expect(clientId(clients[0])).toBe("deploy@198.51.100.21:22");
    expect(clientIds(clients, true)).toEqual(["deploy@198.51.100.21:22", "root@ci.example.com:2222", "local"]);
    expect(clientIds(clients, false)).toEqual(["deploy@198.51.100.21:22", "root@ci.example.com:2222"]);
    expect(clientIds([], true)).toEqual(["local"]);
  });

  test("a certificate is named for host and port (not the user), or `local`", () => {
    expect(clientCertificateResourceName("registry", "deploy@198.51.100.21:22")).toBe("registry-client-198.51.100.21-22");
    expect(clientCertificateResourceName("registry", "root@ci.example.com:2222")).toBe("registry-client-ci.example.com-2222");
    expect(clientCertificateResourceName("lab", "local")).toBe("lab-client-local");
  });

  test("only the user part before the last @ and the port after the last colon are rewritten", () => {
    // An IPv6 host keeps its colons but the port's.
    expect(clientCertificateResourceName("r", "u@2001:db8::5:22")).toBe("r-client-2001:db8::5-22");
    expect(clientCertificateResourceName("r", "a@b@host.example.com:22")).toBe("r-client-host.example.com-22");
  });
});

describe("the trust bundle", () => {
  const [a, b] = [
    "-----BEGIN CERTIFICATE-----\nA\n-----END CERTIFICATE-----",
    "-----BEGIN CERTIFICATE-----\nB\n-----END CERTIFICATE-----\n",
  ];

  test("one CA is passed on exactly as it is (no newline added: existing stacks see no change)", () => {
    expect(trustBundle([a])).toBe(a);
    expect(trustBundle([b])).toBe(b);
  });

  test("several are joined in order, each ending in exactly one newline", () => {
    expect(trustBundle([a, b])).toBe(`${a}\n${b}`);
    expect(trustBundle([b, a])).toBe(`${b}${a}\n`);
  });
});

describe("the trustOs warning", () => {
  test("names each remote host with trustOs, then this machine", () => {
    const hosts = osTrustHosts(
      [
        { host: "198.51.100.21", trustOs: false },
        { host: "203.0.113.22", trustOs: true },
        { host: "ci.example.com", trustOs: true },
      ],
      { trustOs: true },
    );
    expect(hosts).toEqual(["203.0.113.22", "ci.example.com", "this machine"]);
    expect(osTrustWarning(hosts)).toBe(
      "trustOs: every program on 203.0.113.22, ci.example.com, this machine will trust any certificate " +
        "this stack's CA signs, for any name (the CA carries no name constraints: Pulumi's tls provider cannot add them). " +
        "Guard the stack's state and passphrase like that trust store, or set trustOs to false (Docker needs only certs.d).",
    );
  });

  test("no warning when no host gets the CA in its OS store", () => {
    expect(osTrustHosts([{ host: "198.51.100.21", trustOs: false }], { trustOs: false })).toEqual([]);
    expect(osTrustHosts([], undefined)).toEqual([]);
    expect(osTrustWarning([])).toBeUndefined();
  });
});

describe("the login lines", () => {
  test("the password goes from the stack's outputs to docker login on stdin, never on a command line", () => {
    expect(dockerLoginCommand("lab", "192.0.2.10:5443", "ci")).toBe(
      "npm run --silent pulumi -- stack output --stack lab --show-secrets --json credentials | " +
        'node -e \'process.stdout.write(JSON.parse(require("fs").readFileSync(0, "utf8"))[process.argv[1]])\' ci | ' +
        "docker login 192.0.2.10:5443 --username ci --password-stdin",
    );
  });

  test("one line per user, in the users' order, all at the given endpoint", () => {
    const lines = dockerLoginCommands("dev", "registry.example.com", ["admin", "ci"]);
    expect(Object.keys(lines)).toEqual(["admin", "ci"]);
    expect(lines.admin).toBe(dockerLoginCommand("dev", "registry.example.com", "admin"));
    expect(lines.ci).toContain("docker login registry.example.com --username ci --password-stdin");
  });
});
