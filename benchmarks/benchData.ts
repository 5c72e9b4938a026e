// What the benchmark scripts read of their stacks (outputs, on the Pulumi Automation
// API) and the JSON they hand to sideBySide.js; run with tsx by benchmarks/run.sh and
// benchmarks/connections.sh, with their environment (PULUMI_BACKEND_URL, the passphrase,
// the CLI on PATH). Secrets come in through the environment and go out on stdout or into
// the run's private work folder, never onto a command line.
//   tsx benchmarks/benchData.ts output --cwd PROGRAM --stack NAME KEY [SUBKEY]
//       one output (a string as it is, anything else as JSON) on stdout
//   tsx benchmarks/benchData.ts targets --cwd PROGRAM --work WORK
//       WORK/targets.json (the four targets of run.sh) and WORK/ca-PORT.crt for each TLS one;
//       env GATEWAY, PORT_PROXY, PORT_DIRECT, PORT_PLAIN, PORT_RECIPE, RECIPE_PASSWORD
//   tsx benchmarks/benchData.ts variants --work WORK
//       from WORK/targets.json: targets-variant.json ((a), also trusting WORK/rsa-ca.crt),
//       targets-reference.json ((c)), and htpasswd-ssha ((a)'s admin password as {SSHA})
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import { LocalWorkspace } from "@pulumi/pulumi/automation";

interface Target {
  key: string;
  label: string;
  host: string;
  port: number;
  tls: boolean;
  ca?: string;
  user?: string;
  password?: string;
  containers: Record<string, string>;
}

/** `--name value` options, and the other arguments in order. */
function options(args: string[]): { opts: Record<string, string>; rest: string[] } {
  const opts: Record<string, string> = {};
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i].startsWith("--")) opts[args[i].slice(2)] = args[++i] ?? "";
    else rest.push(args[i]);
  }
  return { opts, rest };
}

function need(value: string | undefined, what: string): string {
  if (!value) throw new Error(`benchData: no ${what}`);
  return value;
}

async function outputs(program: string, stack: string): Promise<Record<string, unknown>> {
  const ws = await LocalWorkspace.create({ workDir: program });
  return Object.fromEntries(Object.entries(await ws.stackOutputs(stack)).map(([k, v]) => [k, v.value]));
}

async function output(opts: Record<string, string>, keys: string[]): Promise<void> {
  let value: unknown = await outputs(need(opts.cwd, "--cwd"), need(opts.stack, "--stack"));
  for (const key of keys) value = (value as Record<string, unknown> | undefined)?.[key];
  if (value === undefined) throw new Error(`stack ${opts.stack} has no output ${keys.join(".")}`);
  process.stdout.write(typeof value === "string" ? value : JSON.stringify(value));
}

async function targets(opts: Record<string, string>): Promise<void> {
  const program = need(opts.cwd, "--cwd");
  const work = need(opts.work, "--work");
  const e = process.env;
  const host = need(e.GATEWAY, "GATEWAY");
  const port = (name: string) => Number(need(e[name], name));
  const [p, d] = await Promise.all([outputs(program, "bench-proxy"), outputs(program, "bench-direct")]);
  const admin = (o: Record<string, unknown>) => (o.credentials as Record<string, string>).admin;
  const list: Target[] = [
    {
      key: "proxy",
      label: "(a) proxy layout",
      host,
      port: port("PORT_PROXY"),
      tls: true,
      ca: p.caCertPem as string,
      user: "admin",
      password: admin(p),
      containers: { nginx: "bench-proxy-nginx", registry: "bench-proxy-registry" },
    },
    {
      key: "direct",
      label: "(b) direct layout",
      host,
      port: port("PORT_DIRECT"),
      tls: true,
      ca: d.caCertPem as string,
      user: "admin",
      password: admin(d),
      containers: { registry: "bench-direct-registry" },
    },
    { key: "plain", label: "(c) plain HTTP, no auth", host, port: port("PORT_PLAIN"), tls: false, containers: { registry: "bench-plain" } },
    {
      key: "recipe",
      label: "(d) nginx recipe",
      host,
      port: port("PORT_RECIPE"),
      tls: true,
      ca: fs.readFileSync(path.join(work, "recipe-ca.crt"), "utf8"),
      user: "testuser",
      password: need(e.RECIPE_PASSWORD, "RECIPE_PASSWORD"),
      containers: { nginx: "bench-recipe-nginx", registry: "bench-plain" },
    },
  ];
  fs.writeFileSync(path.join(work, "targets.json"), JSON.stringify(list), { mode: 0o600 });
  for (const t of list.filter((t) => t.tls)) fs.writeFileSync(path.join(work, `ca-${t.port}.crt`), t.ca ?? "");
}

function variants(opts: Record<string, string>): void {
  const work = need(opts.work, "--work");
  const list = JSON.parse(fs.readFileSync(path.join(work, "targets.json"), "utf8")) as Target[];
  const extraCa = fs.readFileSync(path.join(work, "rsa-ca.crt"), "utf8").trim();
  const proxy = list.filter((t) => t.key === "proxy");
  fs.writeFileSync(path.join(work, "targets-variant.json"), JSON.stringify(proxy.map((t) => ({ ...t, ca: `${t.ca}\n${extraCa}\n` }))), {
    mode: 0o600,
  });
  fs.writeFileSync(path.join(work, "targets-reference.json"), JSON.stringify(list.filter((t) => t.key === "plain")));
  // {SSHA}: base64(SHA-1(password + salt) + salt), which nginx reads natively.
  const salt = crypto.randomBytes(8);
  const digest = crypto.createHash("sha1").update(need(proxy[0]?.password, "password of (a)")).update(salt).digest();
  fs.writeFileSync(path.join(work, "htpasswd-ssha"), `admin:{SSHA}${Buffer.concat([digest, salt]).toString("base64")}\n`);
}

const [step, ...args] = process.argv.slice(2);
const { opts, rest } = options(args);
(async () => {
  if (step === "output") await output(opts, rest);
  else if (step === "targets") await targets(opts);
  else if (step === "variants") variants(opts);
  else throw new Error(`benchData: unknown step '${step}' (output, targets or variants)`);
})().catch((e: unknown) => {
  process.stderr.write(`benchData ${step}: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
