// The manifest of the local images (scripts/local-images.txt), which the scripts and
// the tests read instead of naming the images themselves.
import * as fs from "fs";
import * as path from "path";
import { localImages, parseLocalImages } from "../lib/localImages";

test("the manifest names the six images, each a NAME:TAG of private-registry/", () => {
  const images = localImages();
  expect(Object.keys(images).sort()).toEqual(["nginx", "registry", "registry3", "seaweedfs", "ssh-client-host", "swarm-node"]);
  for (const image of Object.values(images)) expect(image).toMatch(/^private-registry\/[a-z0-9-]+:[\w.-]+$/);
});

test("comments and blank lines are skipped; '-' means a test-only image", () => {
  expect(parseLocalImages("# the images\n\nnginx  private-registry/nginx:1  nginx   # stands in for nginx\nhost x:1 -\n")).toEqual([
    { build: "nginx", image: "private-registry/nginx:1", standsInFor: "nginx" },
    { build: "host", image: "x:1", standsInFor: undefined },
  ]);
});

test("a bad line is named by its line number in the file, comments counted", () => {
  expect(() => parseLocalImages("# one\n# two\nnginx private-registry/nginx:1\n")).toThrow(
    'scripts/local-images.txt: line 3 is not "build image stands-in-for": nginx private-registry/nginx:1',
  );
});

test("no script or test names an image the manifest holds: they read the manifest", () => {
  const root = path.join(__dirname, "..");
  const named = (dir: string): string[] =>
    fs
      .readdirSync(path.join(root, dir), { withFileTypes: true })
      .flatMap((e) => (e.isDirectory() ? named(path.join(dir, e.name)) : [path.join(dir, e.name)]));
  const files = ["scripts", "tests", "benchmarks", "lib", "components"]
    .flatMap(named)
    .filter((f) => /\.(ts|sh)$/.test(f) && f !== path.join("tests", "localImages.test.ts"));
  const images = Object.values(localImages());
  const offenders = files.filter((f) => images.some((image) => fs.readFileSync(path.join(root, f), "utf8").includes(image)));
  expect(offenders).toEqual([]);
});
