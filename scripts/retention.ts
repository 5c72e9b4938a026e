// The tag-deleting half of `npm run gc -- --stack NAME --retention [--dry-run] [--endpoint HOST[:PORT]]`:
// lists every repository and tag with regclient's regctl (REGCTL, built by
// scripts/ensure-regctl.sh), decides by the stack's `retention` setting (lib/retention.ts),
// prints every tag with keep or delete and why, and deletes (unless --dry-run). The
// garbage collection that gives the space back is scripts/gc.sh's, after this.
//
// regctl talks to the registry as clients do: through the stack's first endpoint (or
// --endpoint), verifying TLS with the stack's CA, as the first user in `users` who may
// push to every project (lib/retention.ts's retentionUser). Its configuration, with
// that user's password, is in a private temporary folder (HOME and REGCTL_CONFIG point
// there; removed at the end): the password goes to `regctl registry login --pass-stdin`,
// never onto a command line.
//
// Run by scripts/gc.sh after use_stack_engine (the untagged manifests are read from the
// registry's storage with `docker exec`).
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { decideRetention, deletionsFor, ManifestLinks, policyFor, retentionUser, TagInfo, untaggedToDelete } from "../lib/retention";
import { parseSettings } from "../lib/settings";
import { runMain, stackArg, stackConfig, stackOutputs, workspace } from "./stackData";

/** Untagged manifests younger than this are left alone: a client may be pushing the index that will refer to them. */
const UNTAGGED_GRACE_MINUTES = 60;

const log = (line: string) => process.stderr.write(`[retention] ${line}\n`);

class Regctl {
  constructor(
    private readonly bin: string,
    private readonly env: NodeJS.ProcessEnv,
  ) {}

  /** Runs regctl; its stdout, or throws with its stderr's last lines. */
  run(args: string[], input = ""): string {
    const r = spawnSync(this.bin, args, { env: this.env, input, encoding: "utf8", timeout: 120_000 });
    if (r.status !== 0) {
      const why = (r.stderr || r.error?.message || "").trim().split("\n").slice(-3).join(" ");
      throw new Error(`regctl ${args[0]} ${args[1]} ${args.slice(2).find((a) => !a.startsWith("-")) ?? ""} failed: ${why}`);
    }
    return r.stdout;
  }

  lines(args: string[]): string[] {
    return this.run(args)
      .split("\n")
      .map((l) => l.trim())
      .filter(Boolean);
  }

  /** The image's `created` time; undefined when its config has none (or it is not an image). */
  created(ref: string): Date | undefined {
    let config: { created?: string };
    try {
      config = JSON.parse(this.run(["image", "config", ref, "--format", "{{json .}}"]));
    } catch {
      return undefined;
    }
    const created = config.created ? new Date(config.created) : undefined;
    return created && !Number.isNaN(created.getTime()) ? created : undefined;
  }

  /** The children (of an index) and the subject (of a referrer) of a manifest. */
  links(ref: string, digest: string): ManifestLinks | undefined {
    try {
      const m = JSON.parse(this.run(["manifest", "get", ref, "--format", "raw-body"])) as {
        manifests?: { digest: string }[];
        subject?: { digest: string };
      };
      return { digest, children: (m.manifests ?? []).map((c) => c.digest), ...(m.subject ? { subject: m.subject.digest } : {}) };
    } catch {
      return undefined;
    }
  }
}

function docker(args: string[]): string {
  const r = spawnSync("docker", args, { encoding: "utf8", timeout: 120_000 });
  if (r.status !== 0) throw new Error(`docker ${args.slice(0, 2).join(" ")} failed: ${(r.stderr || "").trim()}`);
  return r.stdout;
}

/** The manifests stored in `repo` for longer than the grace time, from the registry's storage. */
function storedManifests(registry: string, repo: string): string[] {
  const root = docker(["exec", registry, "sh", "-c", "sed -n 's/^ *rootdirectory: *//p' /etc/docker/registry/config.yml"]).trim();
  if (!root.startsWith("/")) throw new Error(`no rootdirectory in ${registry}'s config`);
  const dir = `${root}/docker/registry/v2/repositories/${repo}/_manifests/revisions/sha256`;
  // The repository name was listed by the registry (its grammar has no quote or space); still passed as an argument.
  const out = docker([
    "exec",
    registry,
    "find",
    dir,
    "-mindepth",
    "2",
    "-maxdepth",
    "2",
    "-name",
    "link",
    "-mmin",
    `+${UNTAGGED_GRACE_MINUTES}`,
  ]);
  return out
    .split("\n")
    .filter(Boolean)
    .map((p) => `sha256:${path.basename(path.dirname(p))}`);
}

runMain("retention", async () => {
  const { stack, rest } = stackArg(process.argv.slice(2));
  const dryRun = rest.includes("--dry-run");
  const endpointArg = rest.find((a) => a.startsWith("--endpoint="))?.slice("--endpoint=".length);
  const ws = await workspace();
  const config = await stackConfig(ws, stack);
  const settings = parseSettings(config.values, config.project, stack, config.secretKeys);
  if (!settings.deleteEnabled) {
    throw new Error(
      `deleteEnabled is false on stack ${stack}: the registry refuses to delete manifests, so retention cannot delete a tag. ` +
        `Set it (npm run pulumi -- config set --stack ${stack} deleteEnabled true) and deploy, then run this again`,
    );
  }
  if (Object.keys(settings.retention).length === 0) {
    throw new Error(
      `stack ${stack} has no retention policy: set retention (see docs/configuration.md), e.g. --path 'retention.team-a.keepLast' 10`,
    );
  }
  if (settings.clientCertificates) {
    throw new Error(`stack ${stack} has clientCertificates: true; retention does not present a client certificate yet`);
  }
  const outputs = await stackOutputs(ws, stack);
  const endpoints = (outputs.endpoints?.value ?? []) as string[];
  const caPem = outputs.caCertPem?.value as string | undefined;
  const passwords = (outputs.credentials?.value ?? {}) as Record<string, string>;
  const registry = (outputs.containers?.value as { registry?: string } | undefined)?.registry;
  if (endpoints.length === 0 || !caPem || !registry)
    throw new Error(`stack ${stack} has no endpoints or CA in its outputs: deploy it first`);
  const endpoint = endpointArg ?? endpoints[0];
  const user = retentionUser(settings.users, settings.pullOnlyUsers, settings.rights);
  if (!user || !passwords[user]) {
    throw new Error(
      `stack ${stack} has no user who may push to every project (in users, not in pullOnlyUsers, and in rights only with "*": "push"): retention needs one`,
    );
  }

  const home = fs.mkdtempSync(path.join(os.tmpdir(), "private-registry-regctl-")); // mode 0700
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: home, REGCTL_CONFIG: path.join(home, "config.json") };
  try {
    const regctl = new Regctl(process.env.REGCTL ?? "regctl", env);
    regctl.run(["registry", "set", endpoint, "--cacert", caPem, "--skip-check"]); // the login below checks
    regctl.run(["registry", "login", endpoint, "--user", user, "--pass-stdin"], passwords[user]);
    log(`${dryRun ? "dry run: nothing is deleted; " : ""}registry ${endpoint} as ${user}`);

    const now = new Date();
    let deletedTags = 0;
    let deletedManifests = 0;
    let deletedUntagged = 0;
    let repositories = 0;
    for (const repo of regctl.lines(["repo", "ls", endpoint])) {
      const applies = policyFor(settings.retention, repo);
      if (!applies) {
        log(`${repo}: no policy for its project, untouched`);
        continue;
      }
      repositories++;
      const { project, policy } = applies;
      const tags: TagInfo[] = regctl.lines(["tag", "ls", `${endpoint}/${repo}`]).map((tag) => {
        const ref = `${endpoint}/${repo}:${tag}`;
        return { tag, digest: regctl.run(["manifest", "head", ref]).trim(), created: regctl.created(ref) };
      });
      const decisions = decideRetention(tags, policy, now);
      log(`${repo}: ${tags.length} tags, policy of ${project === "*" ? "* (every other project)" : `project ${project}`}`);
      for (const d of decisions) {
        const verb = d.keep ? "keep" : dryRun ? "would delete" : "delete";
        console.log(`${repo}:${d.tag} ${d.digest.slice(0, 19)} ${verb}: ${d.reason}`);
      }
      const { manifests, tagsOnly } = deletionsFor(decisions);
      if (!dryRun) {
        // A client may have pointed a tag at a manifest about to go since the listing (a
        // promotion of an old image): look again, and spare a manifest that a tag not
        // being deleted refers to now.
        const deleting = new Set(decisions.filter((d) => !d.keep).map((d) => d.tag));
        const now = new Map<string, string>();
        for (const tag of regctl.lines(["tag", "ls", `${endpoint}/${repo}`])) {
          if (!deleting.has(tag)) now.set(tag, regctl.run(["manifest", "head", `${endpoint}/${repo}:${tag}`]).trim());
        }
        const stillUsed = new Set(now.values());
        for (const m of manifests) {
          if (stillUsed.has(m.digest)) {
            for (const tag of m.tags) regctl.run(["tag", "delete", `${endpoint}/${repo}:${tag}`, "--ignore-missing"]);
            log(`${repo}@${m.digest}: a tag refers to it since the listing; deleted only the tags ${m.tags.join(", ")}`);
          } else {
            regctl.run(["manifest", "delete", `${endpoint}/${repo}@${m.digest}`]);
            deletedManifests++;
          }
          deletedTags += m.tags.length;
        }
        for (const tag of tagsOnly) regctl.run(["tag", "delete", `${endpoint}/${repo}:${tag}`, "--ignore-missing"]);
        deletedTags += tagsOnly.length;
      } else deletedTags += decisions.filter((d) => !d.keep).length;

      if (policy.deleteUntagged) {
        // What the tags refer to now (after the deletions, and whatever clients pushed meanwhile); in a dry run, what would stay.
        const stored = storedManifests(registry, repo);
        const kept = dryRun
          ? decisions.filter((d) => d.keep).map((d) => d.digest)
          : regctl
              .lines(["tag", "ls", `${endpoint}/${repo}`])
              .map((t) => regctl.run(["manifest", "head", `${endpoint}/${repo}:${t}`]).trim());
        const known = [...new Set([...kept, ...stored])];
        const links = known.flatMap((digest) => regctl.links(`${endpoint}/${repo}@${digest}`, digest) ?? []);
        const deletedByTags = new Set(dryRun ? manifests.map((m) => m.digest) : []);
        for (const digest of untaggedToDelete(stored, kept, links).filter((dg) => !deletedByTags.has(dg))) {
          console.log(
            `${repo}@${digest.slice(0, 19)} ${dryRun ? "would delete" : "delete"}: untagged, stored for more than ${UNTAGGED_GRACE_MINUTES} minutes`,
          );
          if (!dryRun) regctl.run(["manifest", "delete", `${endpoint}/${repo}@${digest}`]);
          deletedUntagged++;
        }
      }
    }
    log(
      `${dryRun ? "would delete" : "deleted"} ${deletedTags} tags (${dryRun ? "" : `${deletedManifests} manifests, `}` +
        `${deletedUntagged} untagged manifests) in ${repositories} repositories with a policy`,
    );
  } finally {
    fs.rmSync(home, { recursive: true, force: true });
  }
});
