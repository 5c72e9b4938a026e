// The deploy's image check (scripts/deploy.ts), before anything is created: every image
// the stack's layout runs is on the Docker host, or is pulled now. When one cannot be
// had and the stack uses the default images, the deploy switches to the local images
// (scripts/local-images.txt); images the user chose are never swapped: it stops instead.
// The same images as the program's pre-flight checks (lib/preflight.ts): nginxImage only
// with the proxy.
import { Run } from "./preflight";
import { Settings } from "./settings";

export type ImageCheck =
  | { action: "proceed" }
  /** The default images cannot be had here: build and use the local ones; `reason` says why. */
  | { action: "use-local-images"; image: string; reason: string }
  /** An image cannot be had and must not be swapped: `message` says what to do; nothing was created. */
  | { action: "stop"; message: string };

export interface ImageCheckOptions {
  stack: string;
  /** Pulumi.yaml's defaults of registryImage and nginxImage. */
  defaults: { registryImage?: string; nginxImage?: string };
  /** PRIVATE_REGISTRY_OFFLINE: a missing image counts as unpullable at once. */
  offline: boolean;
  /** How long a pull may take. */
  pullTimeoutMs?: number;
}

/** The images the layout runs, by config key: the proxy layout's nginx too. */
export function imagesInUse(
  settings: Pick<Settings, "tlsTermination" | "registryImage" | "nginxImage">,
): { key: "registryImage" | "nginxImage"; image: string }[] {
  const keys = settings.tlsTermination === "registry" ? (["registryImage"] as const) : (["registryImage", "nginxImage"] as const);
  return keys.map((key) => ({ key, image: settings[key] }));
}

function lastLine(text: string): string {
  return text.trim().split("\n").filter(Boolean).pop() ?? "";
}

/** Checks (and pulls) the images `settings` names on the Docker host `run`'s docker CLI reaches. */
export function checkImages(
  settings: Pick<Settings, "tlsTermination" | "registryImage" | "nginxImage" | "pullImages">,
  options: ImageCheckOptions,
  run: Run,
): ImageCheck {
  const { stack, defaults } = options;
  const chosen = settings.registryImage !== defaults.registryImage || settings.nginxImage !== defaults.nginxImage;
  for (const { image } of imagesInUse(settings)) {
    if (run("docker", ["image", "inspect", "--format", "{{.Id}}", image]).status === 0) continue;
    if (!settings.pullImages) {
      return {
        action: "stop",
        message: `image '${image}' (registryImage/nginxImage) is not on the Docker host and pullImages is false: load it there (docker load) or run: npm run deploy -- --stack ${stack} --local-images`,
      };
    }
    let reason: string;
    if (options.offline) {
      reason = "PRIVATE_REGISTRY_OFFLINE is set";
    } else {
      const pull = run("docker", ["pull", "-q", image], options.pullTimeoutMs ?? 300_000);
      if (pull.status === 0) continue;
      reason =
        lastLine(pull.stderr) || (pull.errorCode === "ETIMEDOUT" ? "timed out" : `docker pull exited ${pull.status ?? pull.errorCode}`);
    }
    if (chosen) {
      return {
        action: "stop",
        message: `image '${image}' (registryImage/nginxImage on stack ${stack}) is not on the Docker host and cannot be pulled (${reason}); nothing was created. Load it there, or run: npm run deploy -- --stack ${stack} --local-images`,
      };
    }
    return { action: "use-local-images", image, reason };
  }
  return { action: "proceed" };
}
