// The local images (scripts/local-images.txt): read once, by build name.
import * as fs from "fs";
import * as path from "path";

export interface LocalImage {
  /** The name scripts/build-local-images.sh knows it by (PRIVATE_REGISTRY_IMAGES). */
  build: string;
  /** NAME:TAG as built. */
  image: string;
  /** The official image it stands in for, or undefined for a test-only image. */
  standsInFor?: string;
}

/** Parses the manifest's text: one image per line, `#` comments and blank lines skipped. */
export function parseLocalImages(text: string): LocalImage[] {
  const lines = text.split("\n").map((line, i) => ({ number: i + 1, line: line.replace(/#.*/, "").trim() }));
  return lines
    .filter(({ line }) => line !== "")
    .map(({ number, line }) => {
      const [build, image, standsInFor, ...rest] = line.split(/\s+/);
      if (!image || !standsInFor || rest.length > 0)
        throw new Error(`scripts/local-images.txt: line ${number} is not "build image stands-in-for": ${line}`);
      return { build, image, standsInFor: standsInFor === "-" ? undefined : standsInFor };
    });
}

const MANIFEST = path.join(__dirname, "..", "scripts", "local-images.txt");

/** The build names of the manifest's images. */
export const LOCAL_IMAGE_NAMES = ["registry", "registry3", "nginx", "ssh-client-host", "swarm-node", "seaweedfs"] as const;
export type LocalImageName = (typeof LOCAL_IMAGE_NAMES)[number];

/** The local images by build name: registry (2.x), registry3, nginx, ssh-client-host, swarm-node, seaweedfs. */
export function localImages(): Record<LocalImageName, string> {
  const byName = Object.fromEntries(parseLocalImages(fs.readFileSync(MANIFEST, "utf8")).map((i) => [i.build, i.image]));
  for (const name of LOCAL_IMAGE_NAMES) {
    if (!byName[name]) throw new Error(`scripts/local-images.txt names no image "${name}"`);
  }
  return byName as Record<LocalImageName, string>;
}
