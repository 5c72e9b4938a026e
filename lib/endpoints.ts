import { isIP } from "net";

/** The address a Docker client dials for one registry host: no port when it is 443, brackets for IPv6. */
export function endpointFor(host: string, port: number): string {
  const bracketed = isIP(host) === 6 ? `[${host}]` : host;
  return port === 443 ? bracketed : `${bracketed}:${port}`;
}

/** Every endpoint clients may dial, IPs first, in configured order. */
export function registryEndpoints(ipAddresses: readonly string[], dnsNames: readonly string[], port: number): string[] {
  return [...ipAddresses, ...dnsNames].map((host) => endpointFor(host, port));
}
