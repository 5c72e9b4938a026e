// The retention policy's decisions (lib/retention.ts) and its setting (lib/settings.ts):
// pure, no engine. The real run is tests/retention.test.ts.
import { decideRetention, deletionsFor, policyFor, projectOf, retentionUser, TagInfo, untaggedToDelete } from "../lib/retention";
import { ConfigError, parseSettings } from "../lib/settings";

const NOW = new Date("2026-12-01T12:00:00Z");
const daysAgo = (n: number) => new Date(NOW.getTime() - n * 24 * 3600 * 1000);
/** Tags t01..tNN, t01 the oldest (created N days ago), tNN the newest (1 day ago), each its own digest. */
const series = (n: number): TagInfo[] =>
  Array.from({ length: n }, (_, i) => ({ tag: `t${String(i + 1).padStart(2, "0")}`, digest: `sha256:${i + 1}`, created: daysAgo(n - i) }));
const deleted = (tags: TagInfo[], policy: Parameters<typeof decideRetention>[1]) =>
  decideRetention(tags, policy, NOW)
    .filter((d) => !d.keep)
    .map((d) => d.tag)
    .sort();

describe("which tags go", () => {
  test("keepLast 5 of 12 deletes exactly the 7 oldest, saying why", () => {
    const decisions = decideRetention(series(12), { keepLast: 5, deleteUntagged: false }, NOW);
    expect(decisions.map((d) => d.tag)).toEqual(["t12", "t11", "t10", "t09", "t08", "t07", "t06", "t05", "t04", "t03", "t02", "t01"]);
    expect(decisions.filter((d) => !d.keep).map((d) => d.tag)).toEqual(["t07", "t06", "t05", "t04", "t03", "t02", "t01"]);
    expect(decisions[0].reason).toBe("newest 1 of 5 kept tags (keepLast)");
    expect(decisions[5].reason).toBe("not among the newest 5 (number 6) (created 2026-11-25T12:00:00.000Z)");
  });

  test("the order is the created time, not the tag name nor the listing order", () => {
    const tags = series(6).reverse();
    tags[0] = { ...tags[0], tag: "aaa" }; // the newest, with the smallest name
    expect(deleted(tags, { keepLast: 2, deleteUntagged: false })).toEqual(["t01", "t02", "t03", "t04"]);
  });

  test("fewer tags than keepLast: nothing goes", () => {
    expect(deleted(series(3), { keepLast: 5, deleteUntagged: false })).toEqual([]);
  });

  test("maxAgeDays alone deletes what is older", () => {
    // t10 is exactly 3 days old: kept (older than D days goes).
    expect(deleted(series(12), { maxAgeDays: 3, deleteUntagged: false })).toEqual([
      "t01",
      "t02",
      "t03",
      "t04",
      "t05",
      "t06",
      "t07",
      "t08",
      "t09",
    ]);
    const [oldest] = decideRetention(series(12), { maxAgeDays: 3, deleteUntagged: false }, NOW).slice(-1);
    expect(oldest.reason).toBe("created 2026-11-19T12:00:00.000Z, 12 days ago, more than maxAgeDays 3");
  });

  test("keepLast and maxAgeDays: a tag stays when either keeps it", () => {
    // The newest 2 by count, the last 4 days by age: t09..t12 stay.
    expect(deleted(series(12), { keepLast: 2, maxAgeDays: 4, deleteUntagged: false })).toEqual(
      ["t01", "t02", "t03", "t04", "t05", "t06", "t07", "t08"].sort(),
    );
    // All old: the newest 2 still stay.
    const old = series(5).map((t) => ({ ...t, created: new Date(t.created!.getTime() - 100 * 24 * 3600 * 1000) }));
    expect(deleted(old, { keepLast: 2, maxAgeDays: 30, deleteUntagged: false })).toEqual(["t01", "t02", "t03"]);
  });

  test("keep: matching tags stay and do not count among the newest", () => {
    const tags = [
      ...series(6),
      { tag: "v1.0", digest: "sha256:v1", created: daysAgo(400) },
      { tag: "v2.0", digest: "sha256:v2", created: daysAgo(0.5) },
    ];
    const decisions = decideRetention(tags, { keepLast: 2, keep: "v[0-9.]+", deleteUntagged: false }, NOW);
    expect(
      decisions
        .filter((d) => !d.keep)
        .map((d) => d.tag)
        .sort(),
    ).toEqual(["t01", "t02", "t03", "t04"]);
    expect(decisions.find((d) => d.tag === "v1.0")?.reason).toBe("matches keep /v[0-9.]+/");
    // The pattern matches the whole tag.
    expect(
      deleted([...series(3), { tag: "xv1.0", digest: "sha256:x", created: daysAgo(9) }], {
        keepLast: 3,
        keep: "v1.0",
        deleteUntagged: false,
      }),
    ).toEqual(["xv1.0"]);
  });

  test("an image without a created time is never deleted and does not count among the newest", () => {
    const tags = [...series(4), { tag: "undated", digest: "sha256:u" }];
    const decisions = decideRetention(tags, { keepLast: 2, maxAgeDays: 1, deleteUntagged: false }, NOW);
    expect(
      decisions
        .filter((d) => !d.keep)
        .map((d) => d.tag)
        .sort(),
    ).toEqual(["t01", "t02"]);
    expect(decisions.find((d) => d.tag === "undated")).toMatchObject({
      keep: true,
      reason: "its image has no created time: never deleted",
    });
  });

  test("equal created times: the greater tag name is the newer, so the result does not depend on the listing order", () => {
    const same = daysAgo(1);
    const tags: TagInfo[] = ["b", "c", "a"].map((tag) => ({ tag, digest: `sha256:${tag}`, created: same }));
    expect(deleted(tags, { keepLast: 1, deleteUntagged: false })).toEqual(["a", "b"]);
    expect(deleted([...tags].reverse(), { keepLast: 1, deleteUntagged: false })).toEqual(["a", "b"]);
  });

  test("a policy with only deleteUntagged deletes no tag", () => {
    expect(deleted(series(12), { deleteUntagged: true })).toEqual([]);
  });
});

describe("how they are deleted", () => {
  test("a manifest that only deleted tags refer to goes by digest; a tag whose manifest a kept tag shares goes alone", () => {
    const tags: TagInfo[] = [
      { tag: "new", digest: "sha256:A", created: daysAgo(1) },
      { tag: "alias-of-new", digest: "sha256:A", created: daysAgo(1) },
      { tag: "old", digest: "sha256:B", created: daysAgo(5) },
      { tag: "old-too", digest: "sha256:B", created: daysAgo(5) },
    ];
    // keepLast 1 keeps "new" (the greater name of the two newest); alias-of-new shares its manifest.
    const decisions = decideRetention(tags, { keepLast: 1, deleteUntagged: false }, NOW);
    expect(deletionsFor(decisions)).toEqual({ manifests: [{ digest: "sha256:B", tags: ["old-too", "old"] }], tagsOnly: ["alias-of-new"] });
  });

  test("untagged manifests: what no kept tag reaches, directly, through an index or as a referrer, goes", () => {
    const links = [
      { digest: "idx", children: ["amd64", "arm64"] },
      { digest: "amd64", children: [] },
      { digest: "arm64", children: [] },
      { digest: "sig", children: [], subject: "idx" },
      { digest: "sig-of-sig", children: [], subject: "sig" },
      { digest: "orphan", children: [] },
      { digest: "orphan-sig", children: [], subject: "orphan" },
    ];
    const stored = [...links.map((l) => l.digest), "unknown"];
    expect(untaggedToDelete(stored, ["idx"], links)).toEqual(["orphan", "orphan-sig"]);
    expect(untaggedToDelete(stored, [], links)).toEqual(["amd64", "arm64", "idx", "orphan", "orphan-sig", "sig", "sig-of-sig"]);
  });
});

describe("the user it runs as", () => {
  test("the first who may push to every project: not pull-only, and in rights only with * push", () => {
    expect(retentionUser(["admin", "ci"], [], {})).toBe("admin");
    expect(retentionUser(["reader", "admin"], ["reader"], {})).toBe("admin");
    expect(retentionUser(["ci-a", "admin"], [], { "ci-a": { "team-a": "push" } })).toBe("admin");
    expect(retentionUser(["ci-a", "ops"], [], { "ci-a": { "team-a": "push" }, ops: { "*": "push" } })).toBe("ops");
    expect(retentionUser(["ci-a", "auditor"], ["auditor"], { "ci-a": { "*": "pull", "team-a": "push" } })).toBeUndefined();
  });
});

describe("projects", () => {
  test("the first path component; a project's own policy wins over *", () => {
    expect(projectOf("team-a/app/web")).toBe("team-a");
    expect(projectOf("app")).toBe("app");
    const settings = { "team-a": { keepLast: 5, deleteUntagged: false }, "*": { maxAgeDays: 30, deleteUntagged: true } };
    expect(policyFor(settings, "team-a/app")).toEqual({ project: "team-a", policy: settings["team-a"] });
    expect(policyFor(settings, "team-b/app")).toEqual({ project: "*", policy: settings["*"] });
    expect(policyFor({ "team-a": settings["team-a"] }, "team-b/app")).toBeUndefined();
  });
});

describe("the retention setting", () => {
  const parse = (retention: unknown) => parseSettings({ retention: JSON.stringify(retention) }, "private-registry", "dev").retention;
  const problems = (retention: unknown): string[] => {
    try {
      parse(retention);
      return [];
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      return e.problems;
    }
  };

  test("none by default; policies parsed with deleteUntagged defaulting to false", () => {
    expect(parseSettings({}, "private-registry", "dev").retention).toEqual({});
    expect(parse({ "team-a": { keepLast: 5 }, "*": { maxAgeDays: 30, keep: "^v", deleteUntagged: true } })).toEqual({
      "team-a": { keepLast: 5, deleteUntagged: false },
      "*": { maxAgeDays: 30, keep: "^v", deleteUntagged: true },
    });
    expect(parse({ base: { deleteUntagged: true } })).toEqual({ base: { deleteUntagged: true } });
  });

  test.each([
    [
      [5],
      'Invalid config "private-registry:retention" = [5]: must be an object of policies by project, e.g. {"team-a": {"keepLast": 10}}.',
    ],
    [
      { "Team-A": { keepLast: 5 } },
      "Invalid config \"private-registry:retention.Team-A\" = \"Team-A\": is not a project: the first path component of a repository name (lower-case letters, digits, '.', '_', '-'), or *.",
    ],
    [{ a: { keepLast: 0 } }, 'Invalid config "private-registry:retention.a.keepLast" = 0: must be a whole number from 1 to 100000.'],
    [{ a: { keepLast: "5" } }, 'Invalid config "private-registry:retention.a.keepLast" = "5": must be a whole number from 1 to 100000.'],
    [{ a: { maxAgeDays: 1.5 } }, 'Invalid config "private-registry:retention.a.maxAgeDays" = 1.5: must be a whole number from 1 to 36500.'],
    [
      { a: { keepLast: 5, keep: "(" } },
      'Invalid config "private-registry:retention.a.keep" = "(": is not a regular expression (Invalid regular expression: /(/: Unterminated group).',
    ],
    [
      { a: { keep: "^v" } },
      'Invalid config "private-registry:retention.a.keep" = "^v": protects tags from keepLast and maxAgeDays, and the policy sets neither: add one, or remove keep.',
    ],
    [
      { a: { keepLast: 5, deleteUntagged: "yes" } },
      'Invalid config "private-registry:retention.a.deleteUntagged" = "yes": must be true or false.',
    ],
    [{ a: {} }, 'Invalid config "private-registry:retention.a" = {}: deletes nothing: set keepLast, maxAgeDays or deleteUntagged: true.'],
    [{ a: 5 }, 'Invalid config "private-registry:retention.a" = 5: must be an object with keepLast, maxAgeDays, keep, deleteUntagged.'],
  ])("%j: one message naming key and value", (value, message) => {
    expect(problems(value)).toEqual([message]);
  });

  test("a misspelled field is named, with the right spelling", () => {
    expect(problems({ a: { keeplast: 5 } })).toEqual([
      'Invalid config "private-registry:retention.a.keeplast" = "[value hidden]": unknown setting (did you mean keepLast?); known settings are keepLast, maxAgeDays, keep, deleteUntagged.',
    ]);
  });
});
