// What client hosts are made to trust, and what PrivateRegistry says about it.
import { withNewline } from "./pem";

/**
 * The CA bundle clients trust (Docker reads every certificate in ca.crt): the
 * signing CA first, then the others of a rotation. One CA is passed on as it is.
 */
export function trustBundle(pems: readonly string[]): string {
  return pems.length === 1 ? pems[0] : pems.map(withNewline).join("");
}

/** Where the CA goes into the OS trust store: each remote host with trustOs, then "this machine". */
export function osTrustHosts(clients: readonly { host: string; trustOs: boolean }[], local?: { trustOs: boolean }): string[] {
  return [...clients.filter((c) => c.trustOs).map((c) => c.host), ...(local?.trustOs ? ["this machine"] : [])];
}

/**
 * The warning for OS trust (undefined when no host gets it): the tls provider cannot
 * give the CA name constraints or a path length, so say what trustOs means.
 */
export function osTrustWarning(hosts: readonly string[]): string | undefined {
  if (hosts.length === 0) return undefined;
  return (
    `trustOs: every program on ${hosts.join(", ")} will trust any certificate this stack's CA signs, ` +
    "for any name (the CA carries no name constraints: Pulumi's tls provider cannot add them). " +
    "Guard the stack's state and passphrase like that trust store, or set trustOs to false (Docker needs only certs.d)."
  );
}
