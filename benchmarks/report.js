#!/usr/bin/env node
// The report of benchmarks/run.sh: medians, the goals as ratios (PASS/MISS), the table,
// the chart (gnuplot), and the results block of docs/benchmarks.md.
//   node benchmarks/report.js --results R.json --times T.json [--variants DIR] [--docs MD] --png PNG
"use strict";
const { execFileSync } = require("child_process");
const fs = require("fs");
const os = require("os");
const path = require("path");

const median = (xs) => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, "")] = process.argv[i + 1];
const results = JSON.parse(fs.readFileSync(args.results, "utf8"));
const times = JSON.parse(fs.readFileSync(args.times, "utf8"));
// Medians of the samples: up from nothing and destroy three times each; the no-change
// preview type-checked three times (the first, and the first of each pair below).
times.upFresh = median(times.upFreshSamples);
times.destroy = median(times.destroySamples);
times.previewNoChangeSamples = [times.previewNoChangeFirst, ...(times.previewPairs ?? []).map((p) => p[0])];
times.previewNoChange = median(times.previewNoChangeSamples);
// Variant files are variant-NAME-ROUND.json: the rounds of one variant pooled.
const variants = [];
for (const f of args.variants
  ? fs
      .readdirSync(args.variants)
      .filter((f) => /^variant-.*\.json$/.test(f))
      .sort()
  : []) {
  const r = JSON.parse(fs.readFileSync(path.join(args.variants, f), "utf8"));
  const known = variants.find((v) => v.variant === r.variant);
  if (known) known.samples.push(...r.samples);
  else variants.push(r);
}

/** The median of one field over the samples of a target and metric. */
const med = (r, target, metric, field) => median(r.samples.filter((s) => s.target === target && s.metric === metric).map((s) => s[field]));
const failures = (r, target, metric) =>
  r.samples.filter((s) => s.target === target && s.metric === metric).reduce((n, s) => n + (s.failed ?? 0), 0);

const keys = results.targets.map((t) => t.key);
const labels = Object.fromEntries(results.targets.map((t) => [t.key, t.label]));
const bigMiB = Math.round(results.bigBytes / 1048576);
const bigName = bigMiB >= 1024 ? `${bigMiB / 1024} GiB` : `${bigMiB} MiB`;
const f0 = (x) => (Number.isFinite(x) ? x.toFixed(0) : "n/a");
const f1 = (x) => (Number.isFinite(x) ? x.toFixed(1) : "n/a");
const f2 = (x) => (Number.isFinite(x) ? x.toFixed(2) : "n/a");

const rows = [
  [`${bigName} layer push, MiB/s`, "big-push", "mibPerSecond", f0],
  [`${bigName} layer pull, MiB/s`, "big-pull", "mibPerSecond", f0],
  [`${results.smallLayers} × ${results.smallBytes / 1024} KiB image push, s`, "small-push", "seconds", f2],
  [`${results.smallLayers} × ${results.smallBytes / 1024} KiB image pull, s`, "small-pull", "seconds", f2],
  ...["get-v2", "head-manifest"].flatMap((m) =>
    results.concurrency.map((c) => [
      `${m === "get-v2" ? "`GET /v2/`" : "manifest `HEAD`"}, ${c} client${c > 1 ? "s" : ""}, req/s`,
      `${m}-c${c}`,
      "rate",
      f0,
    ]),
  ),
];
const table = [
  `| | ${keys.map((k) => labels[k]).join(" | ")} |`,
  `|---|${keys.map(() => "---:").join("|")}|`,
  ...rows.map(
    ([name, metric, field, fmt]) =>
      `| ${name} | ${keys
        .map((k) => {
          const failed = field === "rate" ? failures(results, k, metric) : 0;
          return `${fmt(med(results, k, metric, field))}${failed ? ` (${failed} failed)` : ""}`;
        })
        .join(" | ")} |`,
  ),
];

// Where the CPU went (samples carry it since benchmarks/cpuAccounting.js): per unit of
// work, the median over the repetitions of each part; "else" is what the machine used
// besides the client and the target's containers (kernel network and disk work, the
// Docker engine and its log pipes, docker-proxy, this machine's other work).
const cpuParts = ({ cpu: c }) => {
  const client = (c.client ?? 0) + c.loadGenerator;
  const nginx = c.nginx ?? 0;
  const registry = c.registry ?? NaN;
  return { client, nginx, registry, else: c.total - client - nginx - registry, total: c.total };
};
// The divisor that turns a sample's CPU ms into the unit of its row.
const msPerGiB = () => 1000 * (results.bigImageBytes / 2 ** 30);
const cpuUnits = [
  ["big-push", `${bigName} layer push`, "CPU s per GiB", msPerGiB],
  ["big-pull", `${bigName} layer pull`, "CPU s per GiB", msPerGiB],
  ["small-push", `${results.smallLayers}-layer push`, "CPU s per push", () => 1000],
  ["get-v2-c8", "`GET /v2/`, 8 clients", "CPU ms per request", (s) => s.requests],
];
const cpuRows = cpuUnits
  .flatMap(([metric, name, unit, per]) =>
    keys.map((k) => {
      const metered = results.samples.filter((s) => s.target === k && s.metric === metric && s.cpu);
      const hasNginx = metered.some((s) => s.cpu.nginx !== undefined);
      const parts = metered.map((s) => {
        const p = cpuParts(s);
        const d = per(s);
        return Object.fromEntries(Object.entries(p).map(([part, v]) => [part, v / d]));
      });
      if (parts.length === 0) return undefined;
      const m = (part) => median(parts.map((p) => p[part]));
      const fmt = (x) => (Number.isFinite(x) ? x.toFixed(2) : "n/a");
      return `| ${name} | ${labels[k]} | ${unit} | ${fmt(m("client"))} | ${hasNginx ? fmt(m("nginx")) : "–"} | ${fmt(m("registry"))} | ${fmt(m("else"))} | ${fmt(m("total"))} |`;
    }),
  )
  .filter(Boolean);
const cpuLines =
  cpuRows.length === 0
    ? []
    : [
        "| workload | target | unit | client | nginx | registry | everything else | machine total |",
        "|---|---|---|---:|---:|---:|---:|---:|",
        ...cpuRows,
      ];

const ratio = (a, b) => a / b;
const goals = [
  [
    `proxy push of the ${bigName} layer ≥ 95 % of (c)`,
    ratio(med(results, "proxy", "big-push", "mibPerSecond"), med(results, "plain", "big-push", "mibPerSecond")),
    (x) => x >= 0.95,
    "%",
  ],
  [
    `proxy pull of the ${bigName} layer ≥ 95 % of (c)`,
    ratio(med(results, "proxy", "big-pull", "mibPerSecond"), med(results, "plain", "big-pull", "mibPerSecond")),
    (x) => x >= 0.95,
    "%",
  ],
  [
    "proxy authenticated `GET /v2/` at 8 clients ≥ 70 % of (c) unauthenticated",
    ratio(med(results, "proxy", "get-v2-c8", "rate"), med(results, "plain", "get-v2-c8", "rate")),
    (x) => x >= 0.7,
    "%",
  ],
  [
    `proxy push of the ${results.smallLayers}-layer image ≤ 1.5 × (c)'s time`,
    ratio(med(results, "proxy", "small-push", "seconds"), med(results, "plain", "small-push", "seconds")),
    (x) => x <= 1.5,
    "×",
  ],
  ["no-change `pulumi preview` < 5 s", times.previewNoChange, (x) => x < 5, "s"],
  ["`pulumi up` from nothing to a healthy registry < 30 s", times.upFresh, (x) => x < 30, "s"],
];
const fmtGoal = (v, unit) => (unit === "%" ? `${(v * 100).toFixed(0)} %` : unit === "×" ? `${v.toFixed(2)} ×` : `${v.toFixed(1)} s`);
const goalLines = [
  "| goal | measured | |",
  "|---|---:|---|",
  ...goals.map(([name, v, ok, unit]) => `| ${name} | ${fmtGoal(v, unit)} | **${Number.isFinite(v) && ok(v) ? "PASS" : "MISS"}** |`),
];

const pulumiLines = [
  "| proxy layout | wall time |",
  "|---|---:|",
  `| \`pulumi up\` from nothing to a healthy registry (median of ${times.upFreshSamples.map(f1).join(", ")}) | ${f1(times.upFresh)} s |`,
  `| \`pulumi up\`, no change | ${f1(times.upNoChange)} s |`,
  `| \`pulumi preview\`, no change (median of ${times.previewNoChangeSamples.map(f1).join(", ")}) | ${f1(times.previewNoChange)} s |`,
  `| \`pulumi destroy\` (median of ${times.destroySamples.map(f1).join(", ")}) | ${f1(times.destroy)} s |`,
  `| (direct layout: \`pulumi up\` from nothing) | ${f1(times.upFreshDirect)} s |`,
  ...(times.previewPairs?.length
    ? [
        `| tuning: no-change \`preview\` type-checked by ts-node (the default), alternating with the next row | ${f1(median(times.previewPairs.map((p) => p[0])))} s |`,
        `| tuning: no-change \`preview\` with \`PULUMI_NODEJS_TRANSPILE_ONLY=true\` | ${f1(median(times.previewPairs.map((p) => p[1])))} s |`,
      ]
    : []),
];

const variantOrder = ["reference", "baseline", "reqbuf", "bodybuf16k", "rsa", "ssha"];
variants.sort((a, b) => variantOrder.indexOf(a.variant) - variantOrder.indexOf(b.variant));
// Each variant's samples are of one target: (a), or (c) for the reference.
const vmed = (v, metric, field) => med(v, v.samples[0]?.target ?? "proxy", metric, field);
const reference = variants.find((v) => v.variant === "reference");
const pctOfReference = (v) => (reference ? `${f0((100 * vmed(v, "get-v2-c8", "rate")) / vmed(reference, "get-v2-c8", "rate"))} %` : "n/a");
const timesReference = (v) => (reference ? `${f2(vmed(v, "small-push", "seconds") / vmed(reference, "small-push", "seconds"))} ×` : "n/a");
const variantLines =
  variants.length === 0
    ? []
    : [
        `| nginx of (a), changed in place | ${bigName} push, MiB/s | ${bigName} pull, MiB/s | 50-layer push, s | 50-layer pull, s | \`GET /v2/\` 8 clients, req/s | \`GET /v2/\` 8 clients, of (c) | 50-layer push, × (c) |`,
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        ...variants.map(
          (v) =>
            `| ${v.variant}: ${v.description} | ${f0(vmed(v, "big-push", "mibPerSecond"))} | ${f0(vmed(v, "big-pull", "mibPerSecond"))} | ` +
            `${f2(vmed(v, "small-push", "seconds"))} | ${f2(vmed(v, "small-pull", "seconds"))} | ${f0(vmed(v, "get-v2-c8", "rate"))} | ${pctOfReference(v)} | ${timesReference(v)} |`,
        ),
      ];

let dockerVersion = "unknown";
try {
  dockerVersion = execFileSync("docker", ["version", "--format", "{{.Server.Version}}"], { encoding: "utf8" }).trim();
} catch {
  /* reported as unknown */
}
const machine =
  `${os.cpus().length} cores (${os.cpus()[0]?.model ?? "unknown CPU"}), ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB memory, ` +
  `Linux ${os.release()}, Docker ${dockerVersion}, Node ${process.version}`;
const load = os
  .loadavg()
  .map((x) => x.toFixed(1))
  .join(" / ");
const kind = results.quick
  ? `a **--quick** run (${bigName} layer, ${results.rateSeconds} s per rate, ${results.reps} repetition)`
  : `a full run (medians of ${results.reps} repetitions, ${results.rateSeconds} s per rate)`;

const block = [
  `Run of ${new Date().toISOString().replace(/\.\d+Z$/, " UTC")}, ${kind}, on ${machine}. ` +
    `Load average at the end of the run (1 / 5 / 15 min): ${load}. Program deployed: ${times.program ?? "unknown"}.`,
  "",
  ...table,
  "",
  ...goalLines,
  "",
  ...pulumiLines,
  ...(cpuLines.length
    ? [
        "",
        "Where the CPU went (medians of the repetitions; the client is skopeo in its container, or for the request rate the load generator; \"everything else\" is the machine's total less those: the kernel's network and disk work, the Docker engine and its log pipes, docker-proxy):",
        "",
        ...cpuLines,
      ]
    : []),
  ...(variantLines.length
    ? [
        "",
        `Tunings tried on the running nginx of (a) (the program unchanged), in turn, with (c) measured in the same rounds: the ${bigName} layer once per variant, the 50-layer image and \`GET /v2/\` at 8 clients once per round (medians of the rounds):`,
        "",
        ...variantLines,
      ]
    : []),
  "",
  `The whole run took ${f1(times.runSeconds / 60)} minutes.`,
];
const text = block.join("\n");
console.log(`\n${text}\n`);
for (const [name, v, ok, unit] of goals) console.log(`${Number.isFinite(v) && ok(v) ? "PASS" : "MISS"}  ${name}: ${fmtGoal(v, unit)}`);

// The chart: grouped bars, throughput on the left, request rates on the right (log scale).
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-chart-"));
try {
  const header = `metric ${keys.map((k) => `"${labels[k]}"`).join(" ")}`;
  const dat = (metrics, field) =>
    [
      header,
      ...metrics.map(
        ([name, metric]) =>
          `"${name}" ${keys
            .map((k) => {
              const v = med(results, k, metric, field);
              return Number.isFinite(v) ? v.toFixed(2) : "NaN";
            })
            .join(" ")}`,
      ),
    ].join("\n");
  fs.writeFileSync(
    path.join(dir, "big.dat"),
    dat(
      [
        [`${bigName} push`, "big-push"],
        [`${bigName} pull`, "big-pull"],
      ],
      "mibPerSecond",
    ),
  );
  fs.writeFileSync(
    path.join(dir, "small.dat"),
    dat(
      [
        [`${results.smallLayers} x ${results.smallBytes / 1024} KiB push`, "small-push"],
        [`${results.smallLayers} x ${results.smallBytes / 1024} KiB pull`, "small-pull"],
      ],
      "seconds",
    ),
  );
  fs.writeFileSync(
    path.join(dir, "rates.dat"),
    dat(
      ["get-v2", "head-manifest"].flatMap((m) =>
        results.concurrency.map((c) => [`${m === "get-v2" ? "GET /v2/" : "HEAD manifest"} ${c}c`, `${m}-c${c}`]),
      ),
      "rate",
    ),
  );
  const cols = keys.map((_, i) => `'${dir}/FILE' using ${i + 2}:xtic(1) title columnheader(${i + 2})`).join(", ");
  const gp = `set terminal pngcairo size 1800,600 font "sans,10"
set output '${args.png}'
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set key outside bottom center horizontal
set grid ytics
set multiplot layout 1,3 title "Registry layouts side by side (${results.quick ? "quick run" : `medians of ${results.reps}`}; ${new Date().toISOString().slice(0, 10)}; other workloads were running on the machine)"
set title "one big layer (skopeo from a client container): higher is better"
set ylabel "MiB/s"
set yrange [0:*]
plot ${cols.replace(/FILE/g, "big.dat")}
set title "50-layer image: lower is better"
set ylabel "seconds"
plot ${cols.replace(/FILE/g, "small.dat")}
set title "request rates (keep-alive, ${results.rateSeconds} s each): higher is better"
set ylabel "requests/s (log scale)"
set logscale y
set yrange [1:*]
set xtics rotate by -25
plot ${cols.replace(/FILE/g, "rates.dat")}
unset multiplot
`;
  fs.writeFileSync(path.join(dir, "chart.gp"), gp);
  execFileSync("gnuplot", [path.join(dir, "chart.gp")], { stdio: "inherit" });
  console.log(`chart: ${args.png}`);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}

if (args.docs) {
  const doc = fs.readFileSync(args.docs, "utf8");
  const begin = "<!-- BEGIN results -->";
  const end = "<!-- END results -->";
  const a = doc.indexOf(begin);
  const b = doc.indexOf(end);
  if (a < 0 || b < a) throw new Error(`${args.docs}: no ${begin} … ${end} markers`);
  fs.writeFileSync(args.docs, `${doc.slice(0, a + begin.length)}\n${text}\n${doc.slice(b)}`);
  console.log(`results written to ${args.docs}`);
}
