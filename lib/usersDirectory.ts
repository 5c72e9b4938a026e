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
} as const;

/** The list of users who may push, as the writer reads it from staging. */
export function renderMayPushList(pushUsers: string[]): string {
  return pushUsers.map((user) => `${user}\n`).join("");
}

/**
 * The writer's shell script (POSIX sh, so that any nginx image runs it): it takes the
 * staged htpasswd and push list and puts them into place in `directory`.
 * Push rights first, then the htpasswd, so that no step grants more than either the
 * old or the new config does: a new push user's marker appears before the user
 * exists; a removed user's marker goes before the user does. The htpasswd is
 * replaced by a rename, so a request reads the old file or the new one, never a
 * part of either. User names are [A-Za-z0-9][A-Za-z0-9._-]* (lib/settings.ts): no
 * quoting trouble, no "." or "..", no leading "-".
 */
export function renderUsersWriterScript(directory: string): string {
  const { htpasswd, mayPush, staging, mayPushList } = USERS_DIRECTORY;
  return (
    [
      "set -eu",
      "umask 022",
      `cd '${directory}'`,
      // Two commands, not one `a && b` list: set -e ignores a failure before the last `&&`.
      `test -f '${staging}/${htpasswd}'`,
      `test -f '${staging}/${mayPushList}'`,
      `mkdir -p '${mayPush}'`,
      `while IFS= read -r user; do if [ -n "$user" ]; then : > '${mayPush}/'"$user"; fi; done < '${staging}/${mayPushList}'`,
      `for marker in '${mayPush}'/*; do`,
      `  if [ -e "$marker" ] && ! grep -qxF "\${marker#${mayPush}/}" '${staging}/${mayPushList}'; then rm -f "$marker"; fi`,
      "done",
      `chmod 0644 '${staging}/${htpasswd}'`,
      `mv -f '${staging}/${htpasswd}' '${htpasswd}'`,
      `rm -rf '${staging}'`,
      `echo "users directory updated: $(grep -c . '${htpasswd}') users, $(ls '${mayPush}' | wc -l) may push"`,
    ].join("\n") + "\n"
  );
}
