import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { ClientHostSettings } from "../lib/settings";
import {
  asCommand,
  caComment,
  renderCheckScript,
  renderInstallScript,
  renderRemoveScript,
  scriptFromStdin,
  scriptThenInput,
  CLIENT_CERT_MARKER,
  CLIENT_KEY_MARKER,
} from "../lib/clientTrustScript";
import { withNewline } from "../lib/pem";

/** How the command provider reaches a client host over SSH. */
export function sshConnection(client: ClientHostSettings) {
  return {
    host: client.host,
    port: client.port,
    user: client.user,
    privateKey: client.privateKey,
    // A host that is down fails the run within about 30 s, not the provider's default 150 s.
    dialErrorLimit: 3,
    perDialTimeout: 10,
  };
}

export interface LocalClientArgs {
  sudo: boolean;
  trustOs: boolean;
}

export interface ClientTrustArgs {
  caCertPem: pulumi.Input<string>;
  /** Every endpoint clients dial (host or host:port). */
  endpoints: string[];
  /** Endpoints that answer without a password (mirrors with anonymousPull or certificate logins): the CA goes there too, and the check wants 200. */
  openEndpoints?: string[];
  clients: ClientHostSettings[];
  /** The machine running `pulumi up`, when it is a Docker client too. */
  local?: LocalClientArgs;
  /** Distinguishes this stack's files in OS trust stores. */
  anchorName: string;
  /** Each host checks, in a step after the install, that the registry answers it over verified TLS. */
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

    // Each host gets two steps. The install (its files recorded in the state once it
    // succeeded; a failed one takes its files away again), then, with `verify`, the check
    // from that host, which changes nothing. So a failed check leaves files the state
    // knows of, and `destroy` or the next `up` removes them. Scripts go on stdin and the
    // command line stays short: a failure shows what the script said, not the script.
    // What the scripts of one host need to know: its endpoints, trust store, and whether it has a client certificate.
    const scriptInput = (trustOs: boolean, clientId: string) => ({
      endpoints: args.endpoints,
      ...(args.openEndpoints?.length ? { openEndpoints: args.openEndpoints } : {}),
      trustOs,
      anchorName: args.anchorName,
      ...(args.clientCertificates?.has(clientId) ? { clientCertificate: true } : {}),
    });
    const installArgs = (trustOs: boolean, sudo: boolean, clientId: string) => {
      const own = args.clientCertificates?.get(clientId);
      const input = scriptInput(trustOs, clientId);
      const script = renderInstallScript(input);
      const remove = renderRemoveScript(input);
      const ca = pulumi.output(args.caCertPem).apply(withNewline);
      return {
        create: scriptFromStdin(sudo),
        // A new CA (stdin) re-runs the install in place: files are rewritten atomically.
        update: scriptFromStdin(sudo),
        delete: asCommand(remove, sudo),
        // The script, then the CA, and with mutual TLS this host's certificate and key (so stdin is then a secret).
        stdin: own
          ? pulumi.secret(
              pulumi.interpolate`${scriptThenInput(script)}${ca}${CLIENT_CERT_MARKER}\n${own.certPem.apply(withNewline)}${CLIENT_KEY_MARKER}\n${own.privateKeyPem.apply(withNewline)}`,
            )
          : ca.apply((pem) => scriptThenInput(script, pem)),
        // When what would be removed changes (endpoints, trustOs, sudo), replace
        // (the SDK marks triggers replace-on-change): the old delete removes the
        // old set, then the new set is installed.
        triggers: [remove, sudo],
        // The scripts never read their previous output; passing it would make sshd
        // print "Unable to set 'PULUMI_COMMAND_STDOUT'" on every run (AcceptEnv).
        addPreviousOutputInEnv: false,
      };
    };
    const checkArgs = (sudo: boolean, clientId: string, install: command.remote.Command | command.local.Command) => {
      const input = scriptInput(false, clientId);
      return {
        create: scriptFromStdin(sudo),
        // A new CA checks again in place (the script names the CA it checks with).
        update: scriptFromStdin(sudo),
        stdin: pulumi.output(args.caCertPem).apply((ca) => scriptThenInput(`${caComment(ca)}${renderCheckScript(input)}`)),
        // A new install (other endpoints) is a new check.
        triggers: [install.id],
        addPreviousOutputInEnv: false,
      };
    };
    const installOptions = { parent: this, deleteBeforeReplace: true };
    const checkOptions = (install: pulumi.Resource) => ({ parent: this, dependsOn: [install, ...(args.serving ? [args.serving] : [])] });

    const installed: pulumi.Output<string>[] = [];
    for (const client of args.clients) {
      const id = `${client.user}@${client.host}:${client.port}`;
      const connection = sshConnection(client);
      const install = new command.remote.Command(
        `${name}-${client.host}-${client.port}`,
        {
          connection,
          ...installArgs(client.trustOs, client.sudo, id),
        },
        installOptions,
      );
      const done = args.verify
        ? new command.remote.Command(
            `${name}-${client.host}-${client.port}-check`,
            { connection, ...checkArgs(client.sudo, id, install) },
            checkOptions(install),
          )
        : install;
      installed.push(done.stdout.apply(() => id));
    }
    if (args.local) {
      const install = new command.local.Command(`${name}-local`, installArgs(args.local.trustOs, args.local.sudo, "local"), installOptions);
      const done = args.verify
        ? new command.local.Command(`${name}-local-check`, checkArgs(args.local.sudo, "local", install), checkOptions(install))
        : install;
      installed.push(done.stdout.apply(() => "local"));
    }
    this.hosts = pulumi.all(installed);
    this.registerOutputs({ hosts: this.hosts });
  }
}
