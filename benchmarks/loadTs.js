// Loads one of the project's pure TypeScript modules for the benchmark scripts: compiled
// with the project's TypeScript, no ts-node needed; its own relative imports are
// TypeScript modules beside it, compiled the same way.
//   require("./loadTs.js")("../lib/nginxConf.ts")  (a path relative to benchmarks/)
//   node benchmarks/loadTs.js tests/helpers/ociImage.ts MAKE_IMAGE_SH   (prints one export; path relative to the project)
"use strict";
const fs = require("fs");
const path = require("path");

function loadTs(rel) {
  const ts = require("typescript");
  const source = fs.readFileSync(path.join(__dirname, rel), "utf8");
  const js = ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022 } }).outputText;
  const m = { exports: {} };
  const localRequire = (id) => (id.startsWith(".") ? loadTs(path.join(path.dirname(rel), `${id}.ts`)) : require(id));
  new Function("module", "exports", "require", js)(m, m.exports, localRequire);
  return m.exports;
}

module.exports = loadTs;

if (require.main === module) {
  const [file, name] = process.argv.slice(2);
  process.stdout.write(String(loadTs(path.join("..", file))[name]));
}
