import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { ClientHostSettings } from "../lib/settings";
import { asCommand, renderInstallScript, renderRemoveScript, CLIENT_CERT_MARKER, CLIENT_KEY_MARKER } from "../lib/clientTrustScript";
import { withNewline } from "../lib/pem";

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
  /** Each host checks, after the install, that the registry answers it over verified TLS. */
  verify: boolean;
  /** What must be serving before the hosts check (the proxy, or the registry itself). */
  serving?: pulumi.Resource;
  /** Mutual TLS: each host's own certificate and key, by `user@host:port` (or `local`). */
  clientCertificates?: Map<string, { certPem: pulumi.Output<string>; privateKeyPem: pulumi.Output<string> }>;
}

/**
 * Installs the CA on every Docker client host for every endpoint, and removes
 * it again on destroy. The CA goes over stdin; a new CA re-runs the install.
 */
export class ClientTrust extends pulumi.ComponentResource {
  /**
   * `user@host:port` for each remote host set up, plus `local` when used. Known
   * only once every install has succeeded, so it never lists a host that failed.
   */
  readonly hosts: pulumi.Output<string[]>;

  constructor(name: string, args: ClientTrustArgs, opts?: pulumi.ComponentResourceOptions) {
    super("private-registry:clients:ClientTrust", name, {}, opts);

    const commandArgs = (trustOs: boolean, sudo: boolean, clientId: string) => {
      const own = args.clientCertificates?.get(clientId);
      const input = { endpoints: args.endpoints, trustOs, anchorName: args.anchorName, ...(own ? { clientCertificate: true } : {}) };
      const install = asCommand(renderInstallScript({ ...input, verify: args.verify }), sudo);
      const remove = asCommand(renderRemoveScript(input), sudo);
      return {
        create: install,
        // A new CA (stdin) re-runs the install in place: files are rewritten atomically.
        update: install,
        delete: remove,
        // The CA, and with mutual TLS this host's certificate and key (so stdin is then a secret).
        stdin: own
          ? pulumi.secret(pulumi.interpolate`${pulumi.output(args.caCertPem).apply(withNewline)}${CLIENT_CERT_MARKER}\n${own.certPem.apply(withNewline)}${CLIENT_KEY_MARKER}\n${own.privateKeyPem.apply(withNewline)}`)
          : args.caCertPem,
        // When what would be removed changes (endpoints, trustOs, sudo), replace
        // (the SDK marks triggers replace-on-change): the old delete removes the
        // old set, then the new set is installed.
        triggers: [remove],
        // The scripts never read their previous output; passing it would make sshd
        // print "Unable to set 'PULUMI_COMMAND_STDOUT'" on every run (AcceptEnv).
        addPreviousOutputInEnv: false,
      };
    };
    const options = { parent: this, deleteBeforeReplace: true, dependsOn: args.verify && args.serving ? [args.serving] : [] };

    const installed: pulumi.Output<string>[] = [];
    for (const client of args.clients) {
      const id = `${client.user}@${client.host}:${client.port}`;
      const install = new command.remote.Command(`${name}-${client.host}-${client.port}`, {
        connection: {
          host: client.host, port: client.port, user: client.user, privateKey: client.privateKey,
          // A host that is down fails the run within about 30 s, not the provider's default 150 s.
          dialErrorLimit: 3, perDialTimeout: 10,
        },
        ...commandArgs(client.trustOs, client.sudo, id),
      }, options);
      installed.push(install.stdout.apply(() => id));
    }
    if (args.local) {
      const install = new command.local.Command(`${name}-local`, commandArgs(args.local.trustOs, args.local.sudo, "local"), options);
      installed.push(install.stdout.apply(() => "local"));
    }
    this.hosts = pulumi.all(installed);
    this.registerOutputs({ hosts: this.hosts });
  }
}
