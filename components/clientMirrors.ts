import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { ClientHostSettings } from "../lib/settings";
import { asCommand, scriptFromStdin, scriptThenInput } from "../lib/clientTrustScript";
import { ClientMirrorScriptInput, renderMirrorInstallScript, renderMirrorRemoveScript } from "../lib/clientMirrorScript";
import { ClientMirror } from "../lib/mirrors";
import { LocalClientArgs, sshConnection } from "./clientTrust";

export interface ClientMirrorsArgs {
  /** Every mirror, by the upstream's name, with its endpoints in the order clients try them. */
  mirrors: ClientMirror[];
  /** The docker.io mirror's endpoints when Docker daemons can use it; [] otherwise. */
  dockerMirrorEndpoints: string[];
  /** Why Docker daemons get no registry-mirrors although a docker.io mirror exists. */
  dockerNote?: string;
  clients: ClientHostSettings[];
  local?: LocalClientArgs;
  /** Names the drop-in and the state folder on each host (the stack's namePrefix). */
  anchorName: string;
  /** Hosts with a client certificate (mutual TLS), by `user@host:port` or `local`. */
  withClientCertificate: Set<string>;
  /** The CA installs (and checks): the runtimes' files name the CA, so they come after it (and go before it). */
  after: pulumi.Resource;
  /** What must serve before the runtimes are pointed at it (the mirrors, nginx). */
  serving: pulumi.Resource[];
}

/**
 * Points every client host's container runtimes at the mirrors (lib/clientMirrorScript.ts),
 * and puts their files back on destroy. One step per host, after its CA install.
 */
export class ClientMirrors extends pulumi.ComponentResource {
  /** Every host's step, done. */
  readonly done: pulumi.Output<string[]>;

  constructor(name: string, args: ClientMirrorsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("private-registry:clients:ClientMirrors", name, {}, opts);

    const commandArgs = (id: string, sudo: boolean) => {
      const input: ClientMirrorScriptInput = {
        anchorName: args.anchorName,
        mirrors: args.mirrors,
        dockerMirrorEndpoints: args.dockerMirrorEndpoints,
        ...(args.dockerNote ? { dockerNote: args.dockerNote } : {}),
        clientCertificate: args.withClientCertificate.has(id),
      };
      const remove = renderMirrorRemoveScript(input);
      return {
        create: scriptFromStdin(sudo),
        // Other mirrors: the install puts back what it wrote last time, then writes anew.
        update: scriptFromStdin(sudo),
        delete: asCommand(remove, sudo),
        stdin: scriptThenInput(renderMirrorInstallScript(input)),
        triggers: [remove, sudo],
        addPreviousOutputInEnv: false,
      };
    };
    const options = {
      parent: this,
      deleteBeforeReplace: true,
      dependsOn: [args.after, ...args.serving],
    };

    const done: pulumi.Output<string>[] = [];
    for (const client of args.clients) {
      const id = `${client.user}@${client.host}:${client.port}`;
      const step = new command.remote.Command(
        `${name}-${client.host}-${client.port}`,
        { connection: sshConnection(client), ...commandArgs(id, client.sudo) },
        options,
      );
      done.push(step.stdout.apply(() => id));
    }
    if (args.local) {
      const step = new command.local.Command(`${name}-local`, commandArgs("local", args.local.sudo), options);
      done.push(step.stdout.apply(() => "local"));
    }
    this.done = pulumi.all(done);
    this.registerOutputs({ done: this.done });
  }
}
