// The registry browser's files (ui/ in this repository): plain HTML, CSS and JavaScript,
// no build step, no third-party code. The TLS proxy uploads them into nginx's container,
// which serves them under /ui/ (lib/nginxConf.ts).
import * as fs from "fs";
import * as path from "path";

/** The folder the files are read from. */
export const UI_SOURCE_DIR = path.join(__dirname, "..", "ui");
/** The files, in the order they are uploaded; nothing else in ui/ is served. */
export const UI_FILE_NAMES = ["index.html", "app.js", "style.css"] as const;

export interface UiFile {
  name: (typeof UI_FILE_NAMES)[number];
  content: string;
}

/** The files' contents, read from `dir` (ui/ by default). */
export function uiFiles(dir: string = UI_SOURCE_DIR): UiFile[] {
  return UI_FILE_NAMES.map((name) => ({ name, content: fs.readFileSync(path.join(dir, name), "utf8") }));
}
