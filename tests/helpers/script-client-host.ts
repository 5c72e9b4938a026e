// A throw-away Debian client host (the local ssh-client-host image) to run the
// client scripts in for real: OS trust store, root-owned /etc/docker, sudo.
// No network at all (--network none); removed by the caller's afterAll.
import { spawnSync } from "child_process";
import { shellQuote } from "../../lib/clientTrustScript";
import { localImages } from "../../lib/localImages";

export const CLIENT_HOST_IMAGE = localImages()["ssh-client-host"];

export interface ExecResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export interface ClientHost {
  id: string;
  /** Runs `sh -c command` in the container, like an SSH session's login shell would. */
  exec(command: string, options?: { user?: string; stdin?: string }): ExecResult;
  /** Reads several files in one go (as root): their content, or undefined where there is no file. */
  readFiles(paths: string[]): (string | undefined)[];
  remove(): void;
}

function docker(args: string[], stdin?: string): ExecResult & { error?: Error } {
  const r = spawnSync("docker", args, { input: stdin ?? "", encoding: "utf8", timeout: 60000 });
  return { status: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? "", error: r.error };
}

/**
 * Starts the container. Throws (so that the tests FAIL, not skip) with a message
 * naming what is missing when there is no Docker engine or no image.
 */
export function startClientHost(image = CLIENT_HOST_IMAGE): ClientHost {
  const engine = docker(["version", "--format", "{{.Server.Version}}"]);
  if (engine.error || engine.status !== 0) {
    throw new Error(
      "These tests run the client scripts in a container and need a running Docker engine; " +
        `\`docker version\` failed: ${engine.error?.message ?? engine.stderr.trim()}`,
    );
  }
  const inspect = docker(["image", "inspect", "--format", "{{.Id}}", image]);
  if (inspect.status !== 0) {
    throw new Error(
      `These tests need the local image ${image}; build it with ` +
        `\`PRIVATE_REGISTRY_IMAGES=ssh-client-host bash scripts/build-local-images.sh\`. docker said: ${inspect.stderr.trim()}`,
    );
  }
  const run = docker([
    "run",
    "-d",
    "--rm",
    "--network",
    "none",
    "--label",
    "private-registry-test=client-trust-script",
    image,
    "sleep",
    "infinity",
  ]);
  if (run.status !== 0) throw new Error(`could not start a container of ${image}: ${run.stderr.trim()}`);
  const id = run.stdout.trim();
  const exec = (command: string, options: { user?: string; stdin?: string } = {}): ExecResult => {
    const args = ["exec", "-i", ...(options.user ? ["-u", options.user] : []), id, "sh", "-c", command];
    const r = docker(args, options.stdin);
    if (r.error) throw r.error;
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  // Without a network Docker lists no own host name; sudo would warn that it cannot resolve it.
  const hosts = exec(`printf '127.0.0.1 %s\\n' "$(hostname)" >>/etc/hosts`);
  if (hosts.status !== 0) {
    docker(["rm", "-f", id]);
    throw new Error(`could not prepare the container of ${image}: ${hosts.stderr.trim()}`);
  }
  return {
    id,
    exec,
    readFiles(paths) {
      // One line per file: its content in base64, or "-" when there is none.
      const r = exec(`for f in ${paths.map(shellQuote).join(" ")}; do if [ -f "$f" ]; then base64 -w0 "$f"; echo; else echo -; fi; done`);
      if (r.status !== 0) throw new Error(`reading ${paths.join(", ")} failed: ${r.stderr}`);
      const lines = r.stdout.split("\n");
      return paths.map((_p, i) => (lines[i] === "-" ? undefined : Buffer.from(lines[i], "base64").toString("utf8")));
    },
    remove() {
      docker(["rm", "-f", id]);
    },
  };
}

/** How many times the certificate `pem` occurs in a PEM bundle (whitespace ignored). */
export function countCerts(bundle: string, pem: string): number {
  const body = pem.replace(/-----[A-Z ]+-----/g, "").replace(/\s+/g, "");
  if (body === "") throw new Error("not a PEM certificate");
  return bundle.replace(/\s+/g, "").split(body).length - 1;
}
