/** @type {import('jest').Config} */
module.exports = {
  preset: "ts-jest",
  testEnvironment: "node",
  roots: ["<rootDir>/tests"],
  testTimeout: 60000,
  // One suite at a time: the real-deployment suites share this machine's Docker engine,
  // and one of them restarts it (tests/faults.test.ts).
  maxWorkers: 1,
};
