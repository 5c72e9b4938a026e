// The users directory nginx reads on every request: the htpasswd, and one empty file
// per user who may push. It lives in a volume of its own, written by a one-shot
// container, so that adding, removing or re-roling a user changes files in place and
// replaces neither nginx nor the registry (nginx re-reads both on every request).

/** Names inside the users directory. */
export const USERS_DIRECTORY = {
  /** Every user's `user:bcrypt-hash` line. */
  htpasswd: "htpasswd",
  /** One empty file per user who may push (and delete), named for the user. */
  mayPush: "may-push",
  /** Where the next version of the files is uploaded before the writer moves it into place. */
  staging: ".next",
  /** In staging: the names of the users who may push, one per line. */
  mayPushList: "may-push.list",
  /**
   * Rights per project, one empty file per right (renderRightsList): nginx lets a request
   * through only if one of the files it names exists (lib/nginxConf.ts).
   */
  rights: "rights",
  /** In rights/<user>/: the directory that stands for every project (`*`); no project name starts with `_`. */
  allProjects: "_all",
  /** In rights/<user>/: a pull-only user (pullOnlyUsers, not in `rights`), refused with "this user may only pull". */
  pullOnlyMarker: "_pull-only",
  /** In staging: every file under rights/, one relative path per line. */
  rightsList: "rights.list",
} as const;

export type ProjectRight = "pull" | "push";

/**
 * Every file under rights/ (relative paths, sorted), for the users, their pull-only
 * subset and their rights per project (users listed in `rights` get exactly those;
 * the others every project, pull-only users to pull only):
 * - `<user>/<project>/pull` for each project the user may pull from (or push to),
 *   `<user>/<project>/push` for each it may push to; `_all` stands for `*`;
 * - `<user>/<target>/mount-from/<source>` for each project it may push to and each it may
 *   pull from: a blob mount into target from source (both `_all` too);
 * - `<user>/_pull-only` for a pull-only user without rights per project.
 * User names ([A-Za-z0-9][A-Za-z0-9._-]*) and project names (lower case, `[a-z0-9]` first)
 * are checked by lib/settings.ts: never "." or "..", never a leading "_".
 */
export function rightsFiles(users: string[], pullOnlyUsers: string[], rights: Record<string, Record<string, ProjectRight>>): string[] {
  const files: string[] = [];
  const dir = (project: string) => (project === "*" ? USERS_DIRECTORY.allProjects : project);
  for (const user of users) {
    const pullOnly = pullOnlyUsers.includes(user);
    const granted = rights[user] ?? { "*": pullOnly ? "pull" : "push" };
    if (rights[user] === undefined && pullOnly) files.push(`${user}/${USERS_DIRECTORY.pullOnlyMarker}`);
    const readable = Object.keys(granted).map(dir);
    const writable = Object.keys(granted)
      .filter((p) => granted[p] === "push")
      .map(dir);
    for (const p of readable) files.push(`${user}/${p}/pull`);
    for (const p of writable) {
      files.push(`${user}/${p}/push`);
      for (const source of readable) files.push(`${user}/${p}/mount-from/${source}`);
    }
  }
  return files.sort();
}

/** The staged list of rights files the writer reads. */
export function renderRightsList(files: string[]): string {
  return files.map((f) => `${f}\n`).join("");
}

/** The list of users who may push, as the writer reads it from staging. */
export function renderMayPushList(pushUsers: string[]): string {
  return pushUsers.map((user) => `${user}\n`).join("");
}

/**
 * The writer's shell script (POSIX sh, so that any nginx image runs it): it takes the
 * staged htpasswd, push list and rights list and puts them into place in `directory`:
 * the push markers (may-push/, read by the nginx of the version before rights per
 * project until the up replaces it), then the rights files, then the htpasswd, so
 * that no step grants more than either the old or the new config does: a new user's
 * rights appear before the user exists; a removed user's go before the user does.
 * Rights files no longer listed go before the new ones appear, so between the two a
 * user has only the rights both configs give; a file both give is never touched, so
 * requests that need it never fail meanwhile. The htpasswd is replaced by a rename,
 * so a request reads the old file or the new one, never a part of either. User names
 * are [A-Za-z0-9][A-Za-z0-9._-]* and projects [a-z0-9]... (lib/settings.ts): no quoting
 * trouble, no "." or "..", no leading "-" or "_".
 */
export function renderUsersWriterScript(directory: string): string {
  const { htpasswd, mayPush, staging, mayPushList, rights, rightsList } = USERS_DIRECTORY;
  return (
    [
      "set -eu",
      "umask 022",
      `cd '${directory}'`,
      // Two commands, not one `a && b` list: set -e ignores a failure before the last `&&`.
      `test -f '${staging}/${htpasswd}'`,
      `test -f '${staging}/${mayPushList}'`,
      `test -f '${staging}/${rightsList}'`,
      `mkdir -p '${mayPush}'`,
      `while IFS= read -r user; do if [ -n "$user" ]; then : > '${mayPush}/'"$user"; fi; done < '${staging}/${mayPushList}'`,
      `for marker in '${mayPush}'/*; do`,
      `  if [ -e "$marker" ] && ! grep -qxF "\${marker#${mayPush}/}" '${staging}/${mayPushList}'; then rm -f "$marker"; fi`,
      "done",
      `mkdir -p '${rights}'`,
      `find '${rights}' -type f | while IFS= read -r file; do if ! grep -qxF "\${file#${rights}/}" '${staging}/${rightsList}'; then rm -f "$file"; fi; done`,
      `while IFS= read -r file; do if [ -n "$file" ]; then mkdir -p "${rights}/\${file%/*}"; if [ ! -e "${rights}/$file" ]; then : > "${rights}/$file"; fi; fi; done < '${staging}/${rightsList}'`,
      // Directories left empty: deepest first; rmdir refuses the others.
      `find '${rights}' -mindepth 1 -depth -type d -exec rmdir {} + 2>/dev/null || true`,
      `chmod 0644 '${staging}/${htpasswd}'`,
      `mv -f '${staging}/${htpasswd}' '${htpasswd}'`,
      `rm -rf '${staging}'`,
      `echo "users directory updated: $(grep -c . '${htpasswd}') users, $(ls '${mayPush}' | wc -l) may push, $(find '${rights}' -type f | wc -l) rights files"`,
    ].join("\n") + "\n"
  );
}
