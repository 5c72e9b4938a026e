// The logical names PrivateRegistry gives its per-CA-generation and per-client
// resources. A logical name is part of a resource's URN: change one of these and
// every existing stack replaces (or loses) that resource. So they live here, apart,
// each with a test that pins it (tests/registryNames.test.ts).

/** A client host as far as its name goes: how it is logged in to over SSH. */
export interface ClientAddress {
  user: string;
  host: string;
  port: number;
}

/** The id of the machine running `pulumi up`, when it is a Docker client too. */
export const LOCAL_CLIENT_ID = "local";

/** The CA generations in use, the signing one first: what clients trust, in that order. */
export function trustedCaGenerations(signing: number, alsoTrust: readonly number[]): number[] {
  return [signing, ...alsoTrust];
}

/**
 * The CertificateAuthority component's name for one generation. Generation 1 keeps
 * the name the stack's first CA always had, so existing stacks see no change; later
 * ones are named for their generation.
 */
export function caResourceName(name: string, generation: number): string {
  return generation === 1 ? `${name}-ca` : `${name}-ca-g${generation}`;
}

/** The common name of one generation's CA certificate: generation 1 has the configured name as it is. */
export function caCommonName(commonName: string, generation: number): string {
  return generation === 1 ? commonName : `${commonName} (generation ${generation})`;
}

/** `user@host:port`: how a client host is known (its client certificate's common name, `clientHosts`). */
export function clientId(client: ClientAddress): string {
  return `${client.user}@${client.host}:${client.port}`;
}

/** Every client's id, the remote hosts in order, then `local` when the local machine is a client. */
export function clientIds(clients: readonly ClientAddress[], local: boolean): string[] {
  return [...clients.map(clientId), ...(local ? [LOCAL_CLIENT_ID] : [])];
}

/** The ClientCertificate component's name for a client id: `NAME-client-HOST-PORT`, or `NAME-client-local`. */
export function clientCertificateResourceName(name: string, id: string): string {
  return id === LOCAL_CLIENT_ID ? `${name}-client-local` : `${name}-client-${id.replace(/^.*@/, "").replace(/:(\d+)$/, "-$1")}`;
}
