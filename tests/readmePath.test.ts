// The README's path as a new user walks it: a copy of the repository as committed
// (the tracked files, with the stack files exactly as they are), `../shared` beside it,
// a fresh HOME (no passphrase, no Pulumi login, no ~/.config, no docker login), no
// Pulumi CLI on PATH; only the machine's download caches are allowed. The commands are
// read from the README's "Quick start" section and run in its order, each one checked.
// Then what a stack file salted with someone else's passphrase does to a deploy.
// Traffic goes only to this machine's loopback (the dev stack's endpoints).
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { docker, dockerQuiet } from "./helpers/e2e";

jest.setTimeout(1_200_000);

const projectDir = path.join(__dirname, "..");
const root = fs.mkdtempSync(path.join(os.tmpdir(), "readme-path-"));
const clone = path.join(root, "private-registry");
const home = path.join(root, "home");
const realHome = os.homedir();

/** The fenced sh lines of the README's "Quick start" section, in order (comments kept: they mark the login step). */
function quickStartLines(readme: string): string[] {
  const section = readme.split(/^## /m).find((s) => s.startsWith("Quick start"));
  if (!section) throw new Error('README.md has no "## Quick start" section');
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)]
    .flatMap((m) => m[1].split("\n"))
    .map((l) => l.trim())
    .filter(Boolean);
}

/** The environment of a new user on this machine: fresh HOME, no Pulumi anything, the machine's caches. */
function userEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(PULUMI_|PRIVATE_REGISTRY_|DOCKER_|XDG_|npm_|NPM_|JEST|GO)/i.test(k)) continue;
    env[k] = v;
  }
  // No Pulumi CLI of ours on PATH: the scripts find or build it as they would for a user.
  env.PATH = (process.env.PATH ?? "")
    .split(":")
    .filter((dir) => !fs.existsSync(path.join(dir, "pulumi")))
    .join(":");
  env.HOME = home;
  // Caches a machine keeps between users: downloads and builds, never state or secrets.
  env.npm_config_cache = path.join(realHome, ".npm");
  env.PRIVATE_REGISTRY_CACHE = path.join(realHome, ".cache", "private-registry");
  env.GOMODCACHE = spawnSync("go", ["env", "GOMODCACHE"], { encoding: "utf8" }).stdout.trim() || path.join(realHome, "go", "pkg", "mod");
  env.GOCACHE = spawnSync("go", ["env", "GOCACHE"], { encoding: "utf8" }).stdout.trim() || path.join(realHome, ".cache", "go-build");
  env.CI = "true";
  return env;
}

function run(command: string): { status: number; out: string } {
  const r = spawnSync("bash", ["-c", command], { cwd: clone, env: userEnv(), encoding: "utf8", timeout: 900_000, maxBuffer: 64 << 20 });
  return { status: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

const devLabel = "private-registry.stack=private-registry/dev";

beforeAll(() => {
  // The repository as committed (tracked files, as they are in the working tree), ../shared beside it.
  const files = spawnSync("git", ["ls-files", "-z"], { cwd: projectDir, encoding: "utf8" }).stdout.split("\0").filter(Boolean);
  for (const file of files) {
    if (!fs.existsSync(path.join(projectDir, file))) continue;
    fs.mkdirSync(path.dirname(path.join(clone, file)), { recursive: true });
    fs.copyFileSync(path.join(projectDir, file), path.join(clone, file));
  }
  const shared = path.join(projectDir, "..", "shared");
  if (fs.existsSync(shared)) fs.symlinkSync(shared, path.join(root, "shared"));
  fs.mkdirSync(home);
  expect(docker("ps", "-a", "-q", "--filter", `label=${devLabel}`)).toBe("");
});

afterAll(() => {
  // Whatever a failed step left: the dev stack's containers, network, volumes; the pushed image.
  const leftovers = docker("ps", "-a", "-q", "--filter", `label=${devLabel}`).split("\n").filter(Boolean);
  if (leftovers.length) dockerQuiet("rm", "-f", ...leftovers);
  // The dev stack's names: namePrefix is empty there, so registry-<stack>.
  dockerQuiet("network", "rm", "registry-dev-net");
  dockerQuiet("volume", "rm", "registry-dev-data", "registry-dev-users", "registry-dev-socket");
  dockerQuiet("rmi", "127.0.0.1:5443/hello:1");
  for (const endpoint of ["127.0.0.1:5443", "localhost:5443"])
    fs.rmSync(`/etc/docker/certs.d/${endpoint}`, { recursive: true, force: true });
  fs.rmSync(root, { recursive: true, force: true });
});

describe("the README's quick start, on a fresh HOME with the committed stack files", () => {
  test("no committed stack file carries a salt or a secret bound to a passphrase the repository does not share", () => {
    for (const file of fs.readdirSync(clone).filter((f) => /^Pulumi\..+\.yaml$/.test(f))) {
      const text = fs.readFileSync(path.join(clone, file), "utf8");
      expect({ file, salt: /^encryptionsalt:/m.test(text), secret: /secure:/.test(text) }).toEqual({ file, salt: false, secret: false });
    }
  });

  test("every command succeeds, in the README's order: deploy, the endpoints, the printed login line, a push and a pull, destroy", () => {
    const lines = quickStartLines(fs.readFileSync(path.join(clone, "README.md"), "utf8"));
    expect(lines[0]).toBe("npm run deploy");
    expect(lines[lines.length - 1]).toBe("npm run destroy");
    let deployOutput = "";
    const ran: string[] = [];
    for (const line of lines) {
      let command = line;
      if (line.startsWith("#")) {
        if (!/docker login/.test(line)) continue;
        // "the docker login line the deploy printed": exactly that line.
        const printed = deployOutput
          .split("\n")
          .map((l) => l.trim())
          .filter((l) => / \| docker login /.test(l));
        expect(printed).toHaveLength(1);
        command = printed[0];
      }
      const result = run(command);
      if (result.status !== 0) throw new Error(`\`${command}\` failed (exit ${result.status}):\n${result.out.slice(-3000)}`);
      if (command === "npm run deploy") deployOutput = result.out;
      if (/stack output endpoints/.test(command)) expect(result.out).toContain("127.0.0.1:5443");
      if (/docker login/.test(command)) expect(result.out).toContain("Login Succeeded");
      if (command === "npm run destroy") {
        // Pulumi's hint names a command the user has: npm run pulumi, not a bare pulumi.
        expect(result.out).not.toMatch(/`pulumi /);
        expect(result.out).toContain("`npm run pulumi -- stack rm dev`");
      }
      ran.push(command.split(" |")[0]);
    }
    expect(ran.some((c) => c.includes("docker push"))).toBe(true);
    expect(ran.some((c) => c.includes("docker pull"))).toBe(true);
    // A new machine could not pull the default images: the deploy said so in one line and used the local ones.
    expect(deployOutput).toMatch(/\[deploy\] the default image \S+ cannot be pulled here .*: using private-registry\/registry:/);
    // Nothing of the stack is left but the data volume, which destroy keeps by default (keepDataOnDestroy).
    expect(docker("ps", "-a", "-q", "--filter", `label=${devLabel}`)).toBe("");
    expect(
      docker("volume", "ls", "-q")
        .split("\n")
        .filter((v) => v.startsWith("registry-dev-")),
    ).toEqual(["registry-dev-data"]);
    for (const endpoint of ["127.0.0.1:5443", "localhost:5443"]) expect(fs.existsSync(`/etc/docker/certs.d/${endpoint}`)).toBe(false);
  });
});

describe("a stack file salted with another passphrase", () => {
  // Made with a passphrase nobody here has (the salt commit c5fd362 brought into Pulumi.dev.yaml).
  const FOREIGN_SALT = "encryptionsalt: v1:EBHShA46Zzc=:v1:F4JbemoAUVnpINUn:PyPJ4jmWjd0+u9FEWKvXyKl2KDdexg==\n";

  test("with no secrets in it: salted again for this passphrase, said in one line, and the deploy goes on", () => {
    // A port that cannot be: the run must get as far as the program's own check, and stop there, creating nothing.
    fs.writeFileSync(path.join(clone, "Pulumi.resalt.yaml"), `config:\n  private-registry:port: "0"\n${FOREIGN_SALT}`);
    const result = run("npm run deploy -- --stack resalt --local-images");
    expect(result.out).toContain(
      "[stack] Pulumi.resalt.yaml was salted for another passphrase and holds no secrets: salted it again for this backend's passphrase",
    );
    expect(result.out).not.toContain("incorrect passphrase");
    expect(result.out).toContain('Invalid config "private-registry:port" = "0": must be a whole number from 1 to 65535.');
    expect(result.status).not.toBe(0);
    const text = fs.readFileSync(path.join(clone, "Pulumi.resalt.yaml"), "utf8");
    expect(text).toMatch(/^encryptionsalt: /m);
    expect(text).not.toContain(FOREIGN_SALT.trim());
    expect(docker("ps", "-a", "-q", "--filter", "label=private-registry.stack=private-registry/resalt")).toBe("");
  });

  test("with secrets in it: stops before anything is created, saying which passphrase is needed", () => {
    fs.writeFileSync(
      path.join(clone, "Pulumi.foreign.yaml"),
      `config:\n  private-registry:clients:\n    - host: 127.0.0.1\n      privateKey:\n        secure: v1:AAAAAAAAAAAAAAAA:AAAAAAAAAAAAAAAAAAAAAAAA\n${FOREIGN_SALT}`,
    );
    const before = fs.readFileSync(path.join(clone, "Pulumi.foreign.yaml"), "utf8");
    const result = run("npm run deploy -- --stack foreign");
    expect(result.status).not.toBe(0);
    expect(result.out).toContain("[stack] error: Pulumi.foreign.yaml holds secrets encrypted with another passphrase than this backend's");
    expect(result.out).toContain(
      "set PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE to the passphrase that stack file was made with",
    );
    expect(fs.readFileSync(path.join(clone, "Pulumi.foreign.yaml"), "utf8")).toBe(before);
    expect(docker("ps", "-a", "-q", "--filter", "label=private-registry.stack=private-registry/foreign")).toBe("");
  });
});
