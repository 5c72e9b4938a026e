// The users writer's script, run for real with sh (dash on Debian, as in the nginx image)
// on a scratch directory: what it leaves behind is what nginx reads on every request.
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { USERS_DIRECTORY, renderMayPushList, renderRightsList, renderUsersWriterScript, rightsFiles } from "../lib/usersDirectory";
import { scratchDir } from "./helpers/scratch";

function stage(dir: string, htpasswd: string, pushUsers: string[], rights: string[] = []): void {
  const staging = path.join(dir, USERS_DIRECTORY.staging);
  fs.mkdirSync(staging, { recursive: true });
  fs.writeFileSync(path.join(staging, USERS_DIRECTORY.htpasswd), htpasswd, { mode: 0o600 });
  fs.writeFileSync(path.join(staging, USERS_DIRECTORY.mayPushList), renderMayPushList(pushUsers));
  fs.writeFileSync(path.join(staging, USERS_DIRECTORY.rightsList), renderRightsList(rights));
}

/** Every file under rights/, relative, sorted; and whether any directory there is empty. */
function rightsOnDisk(dir: string): { files: string[]; emptyDirs: string[] } {
  const files: string[] = [];
  const emptyDirs: string[] = [];
  const walk = (rel: string) => {
    const entries = fs.readdirSync(path.join(dir, USERS_DIRECTORY.rights, rel), { withFileTypes: true });
    if (entries.length === 0 && rel !== "") emptyDirs.push(rel);
    for (const e of entries) {
      const child = rel === "" ? e.name : `${rel}/${e.name}`;
      if (e.isDirectory()) walk(child);
      else files.push(child);
    }
  };
  walk("");
  return { files: files.sort(), emptyDirs };
}

function runWriter(dir: string) {
  return spawnSync("sh", ["-c", renderUsersWriterScript(dir)], { encoding: "utf8" });
}

const state = (dir: string) => ({
  htpasswd: fs.readFileSync(path.join(dir, USERS_DIRECTORY.htpasswd), "utf8"),
  mode: (fs.statSync(path.join(dir, USERS_DIRECTORY.htpasswd)).mode & 0o777).toString(8),
  mayPush: fs.readdirSync(path.join(dir, USERS_DIRECTORY.mayPush)).sort(),
  staged: fs.existsSync(path.join(dir, USERS_DIRECTORY.staging)),
});

describe("the users writer's script", () => {
  test("lays out the htpasswd (readable by nginx's workers) and one marker per push user, and clears staging", () => {
    const dir = scratchDir("users-");
    stage(dir, "admin:$2a$04$x\nci:$2a$04$y\nreader:$2a$04$z\n", ["admin", "ci"]);
    const run = runWriter(dir);
    expect(run.stderr).toBe("");
    expect(run.status).toBe(0);
    expect(run.stdout).toBe("users directory updated: 3 users, 2 may push, 0 rights files\n");
    expect(state(dir)).toEqual({
      htpasswd: "admin:$2a$04$x\nci:$2a$04$y\nreader:$2a$04$z\n",
      mode: "644",
      mayPush: ["admin", "ci"],
      staged: false,
    });
    expect(fs.statSync(path.join(dir, USERS_DIRECTORY.mayPush, "admin")).size).toBe(0);
  });

  test("a second run changes only what changed: a removed user, a user who lost push rights, a new one; the htpasswd is a new file (renamed), not rewritten", () => {
    const dir = scratchDir("users-");
    stage(dir, "admin:a\nci:c\nreader:r\n", ["admin", "ci"]);
    expect(runWriter(dir).status).toBe(0);
    const oldInode = fs.statSync(path.join(dir, USERS_DIRECTORY.htpasswd)).ino;
    // A reader holding the old file open keeps reading the old content: the rename never truncates it.
    const held = fs.openSync(path.join(dir, USERS_DIRECTORY.htpasswd), "r");
    const adminMarker = fs.statSync(path.join(dir, USERS_DIRECTORY.mayPush, "admin")).ino;
    stage(dir, "admin:a\nreader:r\nre.lease-bot_2:n\n", ["admin", "re.lease-bot_2"]);
    expect(runWriter(dir).status).toBe(0);
    expect(state(dir)).toEqual({
      htpasswd: "admin:a\nreader:r\nre.lease-bot_2:n\n",
      mode: "644",
      mayPush: ["admin", "re.lease-bot_2"],
      staged: false,
    });
    expect(fs.statSync(path.join(dir, USERS_DIRECTORY.htpasswd)).ino).not.toBe(oldInode);
    expect(fs.readFileSync(held, "utf8")).toBe("admin:a\nci:c\nreader:r\n");
    fs.closeSync(held);
    // admin's marker was left alone.
    expect(fs.statSync(path.join(dir, USERS_DIRECTORY.mayPush, "admin")).ino).toBe(adminMarker);
  });

  test("no user may push: the marker directory is emptied", () => {
    const dir = scratchDir("users-");
    stage(dir, "a:1\nb:2\n", ["a", "b"]);
    expect(runWriter(dir).status).toBe(0);
    stage(dir, "a:1\nb:2\n", []);
    expect(runWriter(dir).status).toBe(0);
    expect(state(dir).mayPush).toEqual([]);
  });

  test("rights files: users not in rights keep every project (pull-only ones to pull), users in rights get exactly theirs, mounts for each pair", () => {
    expect(
      rightsFiles(["admin", "reader", "ci", "srv"], ["reader", "srv"], { ci: { "team-a": "push", base: "pull" }, srv: { "*": "pull" } }),
    ).toEqual([
      "admin/_all/mount-from/_all",
      "admin/_all/pull",
      "admin/_all/push",
      "ci/base/pull",
      "ci/team-a/mount-from/base",
      "ci/team-a/mount-from/team-a",
      "ci/team-a/pull",
      "ci/team-a/push",
      "reader/_all/pull",
      "reader/_pull-only",
      // A pull-only user with rights per project is told its project's rights, not "may only pull".
      "srv/_all/pull",
    ]);
  });

  test("a rights change removes what is no longer given before adding what is new, leaves unchanged files alone, and leaves no empty directory", () => {
    const dir = scratchDir("users-");
    const before = rightsFiles(["ci"], [], { ci: { "team-a": "push", "team-b": "pull" } });
    stage(dir, "ci:c\n", ["ci"], before);
    expect(runWriter(dir).status).toBe(0);
    expect(rightsOnDisk(dir)).toEqual({ files: before, emptyDirs: [] });
    const kept = fs.statSync(path.join(dir, USERS_DIRECTORY.rights, "ci/team-a/pull")).ino;
    const after = rightsFiles(["ci"], [], { ci: { "team-a": "pull", "team-c": "pull" } });
    stage(dir, "ci:c\n", ["ci"], after);
    const run = runWriter(dir);
    expect(run.stderr).toBe("");
    expect(run.status).toBe(0);
    expect(rightsOnDisk(dir)).toEqual({ files: after, emptyDirs: [] });
    // The right both configs give was never removed (a pull running meanwhile never fails).
    expect(fs.statSync(path.join(dir, USERS_DIRECTORY.rights, "ci/team-a/pull")).ino).toBe(kept);
    // Readable by nginx's workers.
    expect(fs.statSync(path.join(dir, USERS_DIRECTORY.rights, "ci/team-c")).mode & 0o777).toBe(0o755);
    expect(fs.statSync(path.join(dir, USERS_DIRECTORY.rights, "ci/team-c/pull")).mode & 0o777).toBe(0o644);
  });

  test("without staged files it fails and changes nothing (the program then fails the up)", () => {
    const dir = scratchDir("users-");
    stage(dir, "admin:a\n", ["admin"]);
    expect(runWriter(dir).status).toBe(0);
    const run = runWriter(dir);
    expect(run.status).not.toBe(0);
    expect(state(dir)).toEqual({ htpasswd: "admin:a\n", mode: "644", mayPush: ["admin"], staged: false });
  });
});
