import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { ClientHostSettings } from "../lib/settings";
import { asCommand, renderInstallScript, renderRemoveScript } from "../lib/clientTrustScript";

export interface LocalClientArgs {
  sudo: boolean;
  trustOs: boolean;
}

export interface ClientTrustArgs {
  caCertPem: pulumi.Input<string>;
  /** Every endpoint clients dial (host or host:port). */
  endpoints: string[];
  clients: ClientHostSettings[];
  /** The machine running `pulumi up`, when it is a Docker client too. */
  local?: LocalClientArgs;
  /** Distinguishes this stack's files in OS trust stores. */
  anchorName: string;
}

/**
 * Installs the CA on every Docker client host for every endpoint, and removes
 * it again on destroy. The CA goes over stdin; a new CA re-runs the install.
 */
export class ClientTrust extends pulumi.ComponentResource {
  /** `user@host:port` for each remote host set up, plus `local` when used. */
  readonly hosts: string[];

  constructor(name: string, args: ClientTrustArgs, opts?: pulumi.ComponentResourceOptions) {
    super("private-registry:clients:ClientTrust", name, {}, opts);

    const scripts = (trustOs: boolean, sudo: boolean) => {
      const input = { endpoints: args.endpoints, trustOs, anchorName: args.anchorName };
      return { create: asCommand(renderInstallScript(input), sudo), delete: asCommand(renderRemoveScript(input), sudo) };
    };
    const common = (trustOs: boolean, sudo: boolean) => {
      const s = scripts(trustOs, sudo);
      return {
        ...s,
        stdin: args.caCertPem,
        // What the delete removes changed: remove the old set, then install the new.
        // A changed CA alone re-runs create in place, which rewrites the files.
        triggers: [s.delete],
      };
    };

    this.hosts = [];
    for (const client of args.clients) {
      const id = `${client.user}@${client.host}:${client.port}`;
      new command.remote.Command(`${name}-${client.host}-${client.port}`, {
        connection: { host: client.host, port: client.port, user: client.user, privateKey: client.privateKey },
        ...common(client.trustOs, client.sudo),
      }, { parent: this, deleteBeforeReplace: true });
      this.hosts.push(id);
    }
    if (args.local) {
      new command.local.Command(`${name}-local`, common(args.local.trustOs, args.local.sudo),
        { parent: this, deleteBeforeReplace: true });
      this.hosts.push("local");
    }
    this.registerOutputs({ hosts: this.hosts });
  }
}
