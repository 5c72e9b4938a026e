// Writes what the setting declarations (lib/settingsSchema.ts) say into the files that
// repeat them: the `config:` section of Pulumi.yaml and the table between the
// settings-table markers in docs/configuration.md. Nothing else in either file changes.
//   npm run docs:settings            (tsx scripts/settings-table.ts)
//   npm run docs:settings -- --check (exit 1, naming the stale files, without writing)
import * as fs from "fs";
import * as path from "path";
import { withPulumiConfig, withSettingsTable } from "../lib/settingsDocs";

const root = path.resolve(__dirname, "..");
const files: [string, (text: string) => string][] = [
  ["Pulumi.yaml", withPulumiConfig],
  ["docs/configuration.md", withSettingsTable],
];
const check = process.argv.includes("--check");
const stale: string[] = [];
for (const [file, update] of files) {
  const full = path.join(root, file);
  const text = fs.readFileSync(full, "utf8");
  const updated = update(text);
  if (updated === text) continue;
  stale.push(file);
  if (!check) fs.writeFileSync(full, updated);
}
if (check && stale.length > 0) {
  console.error(`stale: ${stale.join(", ")}; run npm run docs:settings`);
  process.exit(1);
}
console.log(stale.length === 0 ? "Pulumi.yaml and docs/configuration.md are current" : `${check ? "stale" : "wrote"}: ${stale.join(", ")}`);
