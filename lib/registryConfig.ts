// Renders the registry's config.yml: the official image's defaults, plus the HTTP
// secret, which belongs in a file (mode 0600) rather than in the container's
// environment, where `docker inspect` shows it to anyone allowed to ask.

/** Where the registry:2 images (official and the local Debian one) read their config. */
export const REGISTRY_CONFIG_PATH = "/etc/docker/registry/config.yml";

export interface RegistryConfigInput {
  /** Signs upload state; the same across replacements so that uploads survive them. Quoted as JSON, which YAML reads. */
  httpSecret: string;
  /** host:port; loopback keeps everything but the proxy in the same namespace out. */
  listenAddress: string;
  dataDir: string;
  /** Allow deleting manifests by digest (space comes back with `npm run gc`). */
  deleteEnabled: boolean;
}

export function renderRegistryConfig(input: RegistryConfigInput): string {
  return `# Rendered by the private-registry Pulumi program; changes here are overwritten.
version: 0.1
log:
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: ${input.dataDir}
  delete:
    enabled: ${input.deleteEnabled}
http:
  addr: ${input.listenAddress}
  secret: ${JSON.stringify(input.httpSecret)}
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
`;
}
