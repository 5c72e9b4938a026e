// The setting declarations (lib/settingsSchema.ts) are the one source: Pulumi.yaml's
// config section and the configuration table say what they say, the parser applies
// their defaults, ranges and allowed values.
import * as fs from "fs";
import * as path from "path";
import { ConfigError, parseSettings } from "../lib/settings";
import { CLIENT_FIELDS, CLIENT_KEYS, describeSetting, SETTING_KEYS, SETTINGS, SettingDeclaration } from "../lib/settingsSchema";
import {
  defaultCell,
  pulumiConfigSection,
  REGENERATE,
  settingsTable,
  TABLE_BEGIN,
  TABLE_END,
  withPulumiConfig,
  withSettingsTable,
} from "../lib/settingsDocs";

// js-yaml is what @pulumi/pulumi reads Pulumi.yaml with (its dependency; no types here).
// eslint-disable-next-line @typescript-eslint/no-var-requires
const yaml = require("js-yaml") as { load(text: string): unknown };

const ROOT = path.join(__dirname, "..");
const read = (file: string) => fs.readFileSync(path.join(ROOT, file), "utf8");
const declarations = SETTING_KEYS.map((key) => [key, SETTINGS[key] as SettingDeclaration] as const);
const parse = (raw: Record<string, string>) => parseSettings(raw, "private-registry", "dev");
/** The problems `raw` gives ([] when it parses). */
function problems(raw: Record<string, string>): string[] {
  try {
    parse(raw);
    return [];
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    return e.problems;
  }
}
/** A declared default as the engine hands it to the program: text as is, anything else as JSON. */
const configText = (value: unknown) => (typeof value === "string" ? value : JSON.stringify(value));

/** Fails, saying how to mend it, unless `actual` is what the generator makes. */
function expectCurrent(file: string, actual: string, generated: string) {
  if (actual !== generated) throw new Error(`${file} is not what lib/settingsSchema.ts declares: ${REGENERATE}`);
}

describe("Pulumi.yaml declares every setting as lib/settingsSchema.ts does", () => {
  const project = yaml.load(read("Pulumi.yaml")) as { name: string; config: Record<string, Record<string, unknown>> };

  test("the same keys, in the same order", () => {
    expect(Object.keys(project.config)).toEqual(SETTING_KEYS);
  });

  test.each(declarations)("%s: type, item type and default", (key, decl) => {
    const declared = project.config[key];
    expect(declared.type).toBe(decl.type);
    expect(declared.items).toEqual(decl.type === "array" ? { type: decl.items } : undefined);
    expect(declared.default).toEqual(decl.default);
    expect(declared.description).toEqual(expect.any(String));
  });

  test(`the config section is the generated one (else: ${REGENERATE})`, () => {
    const text = read("Pulumi.yaml");
    expectCurrent("Pulumi.yaml", text, withPulumiConfig(text));
    expect(text).toContain(pulumiConfigSection());
  });
});

describe("docs/configuration.md's table is generated from the declarations", () => {
  test(`the text between the markers is the current table (else: ${REGENERATE})`, () => {
    const text = read("docs/configuration.md");
    expectCurrent("docs/configuration.md", text, withSettingsTable(text));
    expect(text).toContain(`${TABLE_BEGIN}\n${settingsTable()}\n${TABLE_END}`);
  });

  test("a row per setting: its key, its default and its description", () => {
    const rows = settingsTable().split("\n").slice(2);
    expect(rows).toHaveLength(SETTING_KEYS.length);
    expect(rows[2]).toBe(
      "| `port` | `443` | host port nginx publishes (1-65535); with 443 clients use `certs.d/<host>`, else `certs.d/<host>:<port>` |",
    );
    expect(rows[SETTING_KEYS.indexOf("namePrefix")]).toBe(
      "| `namePrefix` | `registry-<stack>` | prefix of container, network and volume names |",
    );
    expect(rows[SETTING_KEYS.indexOf("dockerTlsKey")]).toMatch(/^\| `dockerTlsKey` \| `""` \| secret, /);
    expect(rows[SETTING_KEYS.indexOf("ipAddresses")]).toMatch(/^\| `ipAddresses` \| `\["127.0.0.1"\]` \| /);
  });

  test("only the text between the markers changes; a stale table is replaced", () => {
    const doc = `# Title\n\nbefore\n${TABLE_BEGIN}\n| old | table |\n${TABLE_END}\n\nafter | with a pipe\n`;
    expect(withSettingsTable(doc)).toBe(`# Title\n\nbefore\n${TABLE_BEGIN}\n${settingsTable()}\n${TABLE_END}\n\nafter | with a pipe\n`);
    expect(() => withSettingsTable("no markers")).toThrow(/settings-table:begin/);
  });

  test("only Pulumi.yaml's config section changes, wherever it is", () => {
    const before = "name: x\nconfig:\n  old:\n    type: string\n";
    expect(withPulumiConfig(`${before}backend:\n  url: file://.\n`)).toBe(`name: x\n${pulumiConfigSection()}backend:\n  url: file://.\n`);
    expect(withPulumiConfig(before)).toBe(`name: x\n${pulumiConfigSection()}`);
    expect(withPulumiConfig("name: x\n")).toBe(`name: x\n${pulumiConfigSection()}`);
  });
});

describe("README.md's short table of the common settings agrees with the declarations", () => {
  const section = read("README.md").split("## The settings most people set")[1]?.split("\n## ")[0] ?? "";
  const rows = section
    .split("\n")
    .filter((line) => /^\| `/.test(line))
    .map((line) => line.split(" | ").map((cell) => cell.replace(/^\| /, "")));

  test("it has its rows", () => {
    expect(rows.length).toBeGreaterThanOrEqual(8);
  });

  test("each key is a setting, with its declared default", () => {
    const table = rows.map(([key, def]) => {
      const name = key.replace(/`/g, "");
      return [name, name in SETTINGS ? def : "not a setting"];
    });
    expect(table).toEqual(
      rows.map(([key]) => {
        const name = key.replace(/`/g, "");
        return [name, name in SETTINGS ? defaultCell(SETTINGS[name as keyof typeof SETTINGS]) : "a declared setting"];
      }),
    );
  });
});

describe("the descriptions say what the declarations do", () => {
  test.each(declarations.filter(([, d]) => d.type === "integer"))("%s states its range from the declaration", (_key, decl) => {
    expect(decl.description).toContain("{range}");
    expect(describeSetting(decl)).toContain(`(${"min" in decl ? decl.min : ""}-${"max" in decl ? decl.max : ""}`);
  });

  test.each(declarations.filter(([, d]) => d.type === "string" && d.values))("%s names each allowed value", (_key, decl) => {
    for (const value of (decl as { values: readonly string[] }).values) expect(decl.description).toContain(`\`${value}\``);
  });

  test("clients names each field of a client host and its default", () => {
    for (const field of CLIENT_KEYS) {
      const d = CLIENT_FIELDS[field];
      expect(SETTINGS.clients.description).toContain("default" in d ? `\`${field}\` (${d.default})` : `\`${field}\``);
    }
  });
});

describe("the parser applies the declarations", () => {
  const defaults = Object.fromEntries(declarations.map(([key, decl]) => [key, configText(decl.default)]));

  test("every declared default, as Pulumi hands it to the program, is what no value gives", () => {
    expect(parse(defaults)).toEqual(parse({}));
  });

  test.each(declarations.filter(([, d]) => d.type === "integer"))("%s: its range, from the declaration", (key, decl) => {
    const { min, max, zeroMeansUnset } = decl as { min: number; max: number; zeroMeansUnset?: true };
    const rangeMessage = (value: number) =>
      `Invalid config "private-registry:${key}" = "${value}": must be a whole number from ${min} to ${max}.`;
    // 0 is "not set" where the declaration says so (the days count then), so -1 is the first bad value below.
    const below = zeroMeansUnset ? -1 : min - 1;
    expect(problems({ ...defaults, [key]: String(below) })).toContain(rangeMessage(below));
    expect(problems({ ...defaults, [key]: String(max + 1) })).toContain(rangeMessage(max + 1));
    if (zeroMeansUnset) expect(problems({ ...defaults, [key]: "0" })).toEqual([]);
    for (const inRange of [min, max]) {
      expect(problems({ ...defaults, [key]: String(inRange) }).filter((p) => p.includes("must be a whole number"))).toEqual([]);
    }
  });

  test.each(declarations.filter(([, d]) => d.type === "string" && d.values))("%s: its allowed values", (key, decl) => {
    const values = (decl as { values: readonly string[] }).values;
    for (const value of values) expect(problems({ ...defaults, [key]: value })).toEqual([]);
    expect(problems({ ...defaults, [key]: "other" })).toEqual([
      `Invalid config "private-registry:${key}" = "other": must be ${values.map((v) => `"${v}"`).join(" or ")}.`,
    ]);
  });

  test.each(declarations.filter(([, d]) => d.type === "boolean"))("%s: true or false, and its default", (key, decl) => {
    const settings = parse({}) as unknown as Record<string, unknown>;
    expect(settings[key]).toBe(decl.default);
    expect(problems({ ...defaults, [key]: "yes" })).toEqual([`Invalid config "private-registry:${key}" = "yes": must be true or false.`]);
  });

  test("a multipleOf is enforced", () => {
    expect(problems({ rsaBits: String(SETTINGS.rsaBits.min + SETTINGS.rsaBits.multipleOf / 2) })).toEqual([
      `Invalid config "private-registry:rsaBits" = ${SETTINGS.rsaBits.min + SETTINGS.rsaBits.multipleOf / 2}: must be a multiple of ${SETTINGS.rsaBits.multipleOf}.`,
    ]);
  });

  test("an unknown setting's message lists the declared keys in declaration order", () => {
    expect(problems({ prot: "1" })[0]).toContain(`known settings are ${SETTING_KEYS.join(", ")}.`);
  });
});
