import * as fs from "fs";
import * as os from "os";
import * as path from "path";

// Scratch directories of the test file that imports this, removed after it.
const scratchDirs: string[] = [];
afterAll(() => {
  for (const dir of scratchDirs) fs.rmSync(dir, { recursive: true, force: true });
});

/** A new directory under the system's temporary folder, removed after the test file. */
export function scratchDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  scratchDirs.push(dir);
  return dir;
}
