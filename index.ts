import { loadSettings } from "./lib/settings";
import { PrivateRegistry } from "./components/privateRegistry";

// Validation runs first: bad config fails the preview before any resource exists.
const settings = loadSettings();
const registry = new PrivateRegistry("registry", settings);

export const endpoints = registry.endpoints;
export const caCertPem = registry.caCertPem;
export const serverCertExpiresAt = registry.serverCertExpiresAt;
export const credentials = registry.credentials;
export const dockerLoginCommand = registry.dockerLoginCommand;
export const dockerLoginCommands = registry.dockerLoginCommands;
export const clientHosts = registry.clientHosts;
