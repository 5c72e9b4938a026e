// Two jest projects:
// - "fast": the renderers, the settings, the scripts' logic and the component on Pulumi's
//   mocks; they need no Docker engine and no Pulumi CLI (`npm run test:fast`, under a minute).
// - "real": every suite that runs the real Pulumi engine, Docker engine, registry and client
//   hosts. A suite is real when it is listed here; tests/helpers/deployment.ts refuses to
//   run in the fast project, so a real-deployment suite left off this list fails loudly
//   instead of slowing the fast loop down.
// `npm test` runs both, one suite at a time: the real suites share this machine's Docker
// engine, and one of them restarts it (tests/faults.test.ts).
const REAL_SUITES = [
  "badConfig",
  "certificates",
  "clientCertificates",
  "clientTrustHost",
  "deployment",
  "directLayout",
  "engine",
  "faults",
  "mirror",
  "ownProgram",
  "projects",
  "proxyHealth",
  "readmePath",
  "registry3",
  "remoteEngine",
  "retention",
  "security",
  "securityDirect",
  "swarm",
  "ui",
];
const realPaths = REAL_SUITES.map((name) => `<rootDir>/tests/${name}.test.ts`);

/** @type {import('jest').Config} */
const common = {
  testEnvironment: "node",
  rootDir: __dirname,
  roots: ["<rootDir>/tests"],
  // Transpiled file by file: `npx tsc --noEmit` (npm run build; npm test runs it first) checks the types.
  transform: { "^.+\\.ts$": ["ts-jest", { tsconfig: "<rootDir>/tsconfig.jest.json" }] },
};

/** @type {import('jest').Config} */
module.exports = {
  testTimeout: 60000,
  maxWorkers: 1,
  projects: [
    {
      ...common,
      displayName: "fast",
      testPathIgnorePatterns: ["/node_modules/", ...REAL_SUITES.map((name) => `/tests/${name}\\.test\\.ts$`)],
      setupFiles: ["<rootDir>/tests/helpers/fastProject.ts"],
    },
    { ...common, displayName: "real", testMatch: realPaths },
  ],
};
