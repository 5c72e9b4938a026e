// Tag retention (`npm run gc -- --retention`): which tags of a repository go, and why.
// Pure: scripts/retention.ts lists the tags with regctl, hands them here with their
// image's `created` time, prints the decisions and deletes what they say.
//
// The rules, per project (the first path component of a repository: `team-a` in
// `team-a/app`; a policy for `*` covers every project without one of its own):
// - a tag stays when any rule keeps it: it is among the `keepLast` newest, it was
//   created within `maxAgeDays`, it matches `keep` (a regular expression matched
//   against the whole tag), or its image has no `created` time (it cannot be dated,
//   so it is never deleted, and it does not count among the newest);
// - every other tag goes. A policy with neither `keepLast` nor `maxAgeDays` deletes no
//   tag (the parser refuses `keep` alone: it only protects tags from those two).
// "Newest" is the `created` time in the image's config (the registry API keeps no push
// time); ties are broken by tag name, the greater one being newer.

/** A project's policy, as lib/settings.ts parsed it. */
export interface RetentionPolicy {
  /** Keep the newest N tags. */
  keepLast?: number;
  /** Keep tags created within D days. */
  maxAgeDays?: number;
  /** Keep tags matching this regular expression (the whole tag). */
  keep?: string;
  /** Delete manifests that no tag refers to (nor a kept index or image through `subject`). */
  deleteUntagged: boolean;
}

/** Policies by project, `*` for every project without its own. */
export type RetentionSettings = Record<string, RetentionPolicy>;

/** A tag of a repository, as listed: its manifest digest and its image's `created` time (undefined: none). */
export interface TagInfo {
  tag: string;
  digest: string;
  created?: Date;
}

export interface TagDecision extends TagInfo {
  keep: boolean;
  /** Why, for the report: every rule that keeps it, or every rule that lets it go. */
  reason: string;
}

const DAY_MS = 24 * 60 * 60 * 1000;

/** The project of a repository: its first path component (`team-a` of `team-a/app`; `app` of `app`). */
export function projectOf(repository: string): string {
  return repository.split("/")[0];
}

/** The policy that applies to `repository`'s project: its own, else `*`'s, else none. */
export function policyFor(settings: RetentionSettings, repository: string): { project: string; policy: RetentionPolicy } | undefined {
  const project = projectOf(repository);
  if (Object.prototype.hasOwnProperty.call(settings, project)) return { project, policy: settings[project] };
  if (Object.prototype.hasOwnProperty.call(settings, "*")) return { project: "*", policy: settings["*"] };
  return undefined;
}

/** Newest first: by `created`, then by tag name (greater is newer); undated tags last. */
function newestFirst(a: TagInfo, b: TagInfo): number {
  const ta = a.created?.getTime();
  const tb = b.created?.getTime();
  if (ta !== undefined && tb !== undefined && ta !== tb) return tb - ta;
  if ((ta === undefined) !== (tb === undefined)) return ta === undefined ? 1 : -1;
  return a.tag < b.tag ? 1 : a.tag > b.tag ? -1 : 0;
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/**
 * Every tag with keep or delete and the reason, newest first. `now` is the time the
 * ages are measured from.
 */
export function decideRetention(tags: readonly TagInfo[], policy: RetentionPolicy, now: Date): TagDecision[] {
  const keepPattern = policy.keep !== undefined ? new RegExp(`^(?:${policy.keep})$`) : undefined;
  const limits = policy.keepLast !== undefined || policy.maxAgeDays !== undefined;
  let rank = 0; // among the dated tags that no pattern keeps
  return [...tags].sort(newestFirst).map((t): TagDecision => {
    const keeps: string[] = [];
    const drops: string[] = [];
    const created = t.created?.toISOString();
    if (!t.created || Number.isNaN(t.created.getTime())) {
      return { ...t, keep: true, reason: "its image has no created time: never deleted" };
    }
    if (keepPattern?.test(t.tag)) keeps.push(`matches keep /${policy.keep}/`);
    else rank++;
    if (policy.keepLast !== undefined && !keepPattern?.test(t.tag)) {
      if (rank <= policy.keepLast) keeps.push(`newest ${rank} of ${plural(policy.keepLast, "kept tag")} (keepLast)`);
      else drops.push(`not among the newest ${policy.keepLast} (number ${rank})`);
    }
    if (policy.maxAgeDays !== undefined) {
      const ageDays = (now.getTime() - t.created.getTime()) / DAY_MS;
      if (ageDays <= policy.maxAgeDays) keeps.push(`created ${created}, within ${plural(policy.maxAgeDays, "day")} (maxAgeDays)`);
      else drops.push(`created ${created}, ${Math.floor(ageDays)} days ago, more than maxAgeDays ${policy.maxAgeDays}`);
    }
    if (keeps.length > 0) return { ...t, keep: true, reason: keeps.join("; ") };
    if (!limits) return { ...t, keep: true, reason: "no keepLast or maxAgeDays in the policy" };
    return { ...t, keep: false, reason: `${drops.join("; ")}${policy.maxAgeDays === undefined ? ` (created ${created})` : ""}` };
  });
}

/** What deleting the tags decided against takes: a manifest by digest, or a tag alone. */
export interface RetentionDeletions {
  /** Digests that only deleted tags refer to: the manifest goes (and its tags with it). */
  manifests: { digest: string; tags: string[] }[];
  /** Deleted tags whose manifest a kept tag also refers to: only the tag goes. */
  tagsOnly: string[];
}

/** How to delete what `decisions` let go, keeping every manifest that a kept tag refers to. */
export function deletionsFor(decisions: readonly TagDecision[]): RetentionDeletions {
  const keptDigests = new Set(decisions.filter((d) => d.keep).map((d) => d.digest));
  const manifests = new Map<string, string[]>();
  const tagsOnly: string[] = [];
  for (const d of decisions) {
    if (d.keep) continue;
    if (keptDigests.has(d.digest)) tagsOnly.push(d.tag);
    else manifests.set(d.digest, [...(manifests.get(d.digest) ?? []), d.tag]);
  }
  return { manifests: [...manifests].map(([digest, tags]) => ({ digest, tags })), tagsOnly };
}

/** A manifest as far as retention needs it: the children of an index, the subject of a referrer. */
export interface ManifestLinks {
  digest: string;
  children: string[];
  subject?: string;
}

/**
 * The untagged manifests to delete: those of `stored` (every manifest of the repository)
 * that no kept tag refers to, directly or as a child of a kept index, and that are not
 * a referrer (signature, SBOM) of a manifest that stays. `links` has what is known of
 * each manifest's children and subject; a manifest it does not know is kept.
 */
export function untaggedToDelete(stored: readonly string[], keptDigests: readonly string[], links: readonly ManifestLinks[]): string[] {
  const byDigest = new Map(links.map((l) => [l.digest, l]));
  const stays = new Set<string>();
  const visit = (digest: string) => {
    if (stays.has(digest)) return;
    stays.add(digest);
    for (const child of byDigest.get(digest)?.children ?? []) visit(child);
  };
  keptDigests.forEach(visit);
  // A referrer stays with its subject (and its own children with it); repeat until nothing changes.
  for (let changed = true; changed;) {
    changed = false;
    for (const l of links) {
      if (!stays.has(l.digest) && l.subject !== undefined && stays.has(l.subject)) {
        visit(l.digest);
        changed = true;
      }
    }
  }
  return stored.filter((digest) => !stays.has(digest) && byDigest.has(digest)).sort();
}

/**
 * The user retention lists and deletes as: the first of `users` who may push to every
 * project (and so read the catalog and delete anywhere): one listed in `rights` with
 * `*: push`, or one not listed there and not in `pullOnlyUsers`. Undefined if none.
 */
export function retentionUser(
  users: readonly string[],
  pullOnlyUsers: readonly string[],
  rights: Readonly<Record<string, Readonly<Record<string, string>>>>,
): string | undefined {
  return users.find((u) => (Object.prototype.hasOwnProperty.call(rights, u) ? rights[u]["*"] === "push" : !pullOnlyUsers.includes(u)));
}
