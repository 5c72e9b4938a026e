import * as pulumi from "@pulumi/pulumi";
import { ConfigError, loadSettings } from "./lib/settings";
import { preflight } from "./lib/preflight";
import { PrivateRegistry } from "./components/privateRegistry";
import { argsFromSettings } from "./lib/registryArgs";

// Validation runs first: bad config, and what only the Docker host and the client
// hosts can tell (names taken, port, address, images, SSH logins), fail the run
// before any resource exists.
const settings = loadSettings();
const checked = preflight(pulumi.getProject(), pulumi.getStack(), settings, undefined, !pulumi.runtime.isDryRun());
if (checked.problems.length > 0) throw new ConfigError(checked.problems);
checked.notes.forEach((note) => pulumi.log.info(note));

const registry = new PrivateRegistry("registry", argsFromSettings(settings, checked.facts));

export const endpoints = registry.endpoints;
export const caCertPem = registry.caCertPem;
export const serverCertExpiresAt = registry.serverCertExpiresAt;
export const credentials = registry.credentials;
export const dockerLoginCommand = registry.dockerLoginCommand;
export const dockerLoginCommands = registry.dockerLoginCommands;
export const clientHosts = registry.clientHosts;
export const containers = registry.containers;
export const mirrors = registry.mirrors;
