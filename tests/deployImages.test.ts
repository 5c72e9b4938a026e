// The deploy's image check (lib/deployImages.ts), with a fake docker CLI.
import { checkImages, imagesInUse } from "../lib/deployImages";
import { Run, RunResult } from "../lib/preflight";

const DEFAULTS = { registryImage: "registry:3.1.1", nginxImage: "nginx:1.30.4" };
const proxy = { tlsTermination: "proxy" as const, ...DEFAULTS, pullImages: true };

/** A docker CLI with `present` images; a pull gives `pull` (its result), and every call is recorded. */
function fakeDocker(present: string[], pull: Partial<RunResult> = { status: 1, stderr: "Error response from daemon: no route\n" }) {
  const calls: string[][] = [];
  const run: Run = (cmd, args) => {
    calls.push([cmd, ...args]);
    if (args[0] === "image" && args[1] === "inspect")
      return { status: present.includes(args[args.length - 1]) ? 0 : 1, stdout: "", stderr: "" };
    if (args[0] === "pull") return { status: 1, stdout: "", stderr: "", ...pull };
    throw new Error(`unexpected docker ${args.join(" ")}`);
  };
  return { run, calls };
}
const options = { stack: "s1", defaults: DEFAULTS, offline: false };

test("the direct layout runs no nginx, so its image is not checked", () => {
  expect(imagesInUse({ ...proxy, tlsTermination: "registry" }).map((i) => i.key)).toEqual(["registryImage"]);
  expect(imagesInUse(proxy).map((i) => i.key)).toEqual(["registryImage", "nginxImage"]);
  const { run, calls } = fakeDocker(["registry:3.1.1"]);
  expect(checkImages({ ...proxy, tlsTermination: "registry" }, options, run)).toEqual({ action: "proceed" });
  expect(calls).toHaveLength(1);
});

test("present images: nothing pulled", () => {
  const { run, calls } = fakeDocker(["registry:3.1.1", "nginx:1.30.4"]);
  expect(checkImages(proxy, options, run)).toEqual({ action: "proceed" });
  expect(calls.some((c) => c[1] === "pull")).toBe(false);
});

test("a missing image that pulls: proceed", () => {
  const { run, calls } = fakeDocker(["registry:3.1.1"], { status: 0 });
  expect(checkImages(proxy, options, run)).toEqual({ action: "proceed" });
  expect(calls).toContainEqual(["docker", "pull", "-q", "nginx:1.30.4"]);
});

test("the default images cannot be pulled: the local images, with the pull's last line as the reason", () => {
  const { run } = fakeDocker([], { status: 1, stderr: "pulling\nError response from daemon: no route\n" });
  expect(checkImages(proxy, options, run)).toEqual({
    action: "use-local-images",
    image: "registry:3.1.1",
    reason: "Error response from daemon: no route",
  });
  expect(checkImages(proxy, options, fakeDocker([], { status: null, errorCode: "ETIMEDOUT" }).run)).toEqual({
    action: "use-local-images",
    image: "registry:3.1.1",
    reason: "timed out",
  });
});

test("offline: no pull is tried", () => {
  const { run, calls } = fakeDocker([]);
  expect(checkImages(proxy, { ...options, offline: true }, run)).toEqual({
    action: "use-local-images",
    image: "registry:3.1.1",
    reason: "PRIVATE_REGISTRY_OFFLINE is set",
  });
  expect(calls.some((c) => c[1] === "pull")).toBe(false);
});

test("an image the user chose is never swapped: it stops, saying what to run", () => {
  const { run } = fakeDocker(["registry:3.1.1"]);
  const check = checkImages({ ...proxy, nginxImage: "example.com/my/nginx:1" }, options, run);
  expect(check).toEqual({
    action: "stop",
    message: expect.stringContaining(
      "image 'example.com/my/nginx:1' (registryImage/nginxImage on stack s1) is not on the Docker host and cannot be pulled (Error response from daemon: no route); nothing was created",
    ),
  });
  expect(check.action === "stop" && check.message).toMatch(/npm run deploy -- --stack s1 --local-images$/);
});

test("pullImages false and an image missing: it stops without pulling", () => {
  const { run, calls } = fakeDocker(["registry:3.1.1"]);
  expect(checkImages({ ...proxy, pullImages: false }, options, run)).toEqual({
    action: "stop",
    message:
      "image 'nginx:1.30.4' (registryImage/nginxImage) is not on the Docker host and pullImages is false: load it there (docker load) or run: npm run deploy -- --stack s1 --local-images",
  });
  expect(calls.some((c) => c[1] === "pull")).toBe(false);
});
