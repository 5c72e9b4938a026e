// What the setting declarations (lib/settingsSchema.ts) become outside the program:
// Pulumi.yaml's `config:` section and the table in docs/configuration.md. Written by
// `npm run docs:settings` (scripts/settings-table.ts); tests/settingsSchema.test.ts
// fails when a file is not what these functions make of the declarations.
import { describeSetting, SETTING_KEYS, SETTINGS, SettingDeclaration } from "./settingsSchema";

export const TABLE_BEGIN = "<!-- settings-table:begin -->";
export const TABLE_END = "<!-- settings-table:end -->";
export const REGENERATE = "run npm run docs:settings";

/** The default as the table shows it: text as is (`""` when empty), anything else as JSON. */
export function defaultCell(decl: SettingDeclaration): string {
  if (decl.docDefault !== undefined) return decl.docDefault;
  const value = decl.default;
  return `\`${typeof value === "string" && value !== "" ? value : JSON.stringify(value)}\``;
}

/** The configuration reference table (Markdown), one row per setting in declaration order. */
export function settingsTable(): string {
  const rows = SETTING_KEYS.map((key) => {
    const decl: SettingDeclaration = SETTINGS[key];
    return `| \`${key}\` | ${defaultCell(decl)} | ${describeSetting(decl).replace(/\|/g, "\\|")} |`;
  });
  return ["| key | default | meaning |", "|---|---|---|", ...rows].join("\n");
}

/** `document` with the text between the table markers replaced by the current table. */
export function withSettingsTable(document: string): string {
  const begin = document.indexOf(TABLE_BEGIN);
  const end = document.indexOf(TABLE_END);
  if (begin < 0 || end < begin) throw new Error(`no ${TABLE_BEGIN} ... ${TABLE_END} markers`);
  return `${document.slice(0, begin + TABLE_BEGIN.length)}\n${settingsTable()}\n${document.slice(end)}`;
}

/**
 * A description as plain text for Pulumi.yaml: a Markdown link becomes its text, and
 * the page it points to in docs/ unless the text names it already.
 */
export function plainDescription(decl: SettingDeclaration): string {
  return describeSetting(decl).replace(/\[([^\]]*)\]\(([^)#]*)[^)]*\)/g, (_link, text: string, page: string) =>
    text.includes(page) ? text : `${text} (docs/${page})`,
  );
}

/** Pulumi.yaml's `config:` section (YAML; every scalar in JSON form, which YAML reads as is). */
export function pulumiConfigSection(): string {
  const lines = ["config:"];
  for (const key of SETTING_KEYS) {
    const decl: SettingDeclaration = SETTINGS[key];
    lines.push(`  ${key}:`, `    type: ${decl.type}`);
    if (decl.type === "array") lines.push("    items:", `      type: ${decl.items}`);
    lines.push(`    description: ${JSON.stringify(plainDescription(decl))}`, `    default: ${JSON.stringify(decl.default)}`);
  }
  return `${lines.join("\n")}\n`;
}

/** Pulumi.yaml with its `config:` section (up to the next top-level key or the end) replaced by the current one. */
export function withPulumiConfig(projectFile: string): string {
  const start = projectFile.search(/^config:\s*$/m);
  if (start < 0) return `${projectFile.replace(/\n*$/, "\n")}${pulumiConfigSection()}`;
  const body = projectFile.indexOf("\n", start) + 1; // the line after `config:`
  const next = body === 0 ? -1 : projectFile.slice(body).search(/^\S/m);
  const end = next < 0 ? projectFile.length : body + next;
  return projectFile.slice(0, start) + pulumiConfigSection() + projectFile.slice(end);
}
