import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { renderHtpasswd } from "../lib/htpasswd";

export interface RegistryCredentialsArgs {
  users: string[];
  passwordLength: number;
}

/** One generated password per user, and the bcrypt htpasswd file that nginx checks. */
export class RegistryCredentials extends pulumi.ComponentResource {
  /** user -> password; secret. */
  readonly passwords: pulumi.Output<Record<string, string>>;
  /** `user:bcrypt-hash` lines; secret. Stable across runs: the hash is kept in state. */
  readonly htpasswd: pulumi.Output<string>;

  constructor(name: string, args: RegistryCredentialsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("private-registry:auth:RegistryCredentials", name, {}, opts);

    const generated = args.users.map((user) => ({
      user,
      password: new random.RandomPassword(`${name}-${user}`, {
        length: args.passwordLength,
        // Letters and digits only: nothing to escape in shells or config files.
        special: false,
      }, { parent: this }),
    }));

    this.passwords = pulumi.secret(pulumi.all(generated.map((g) => g.password.result)).apply((results) =>
      Object.fromEntries(results.map((result, i) => [generated[i].user, result]))));
    this.htpasswd = pulumi.secret(pulumi.all(generated.map((g) => g.password.bcryptHash)).apply((hashes) =>
      renderHtpasswd(generated.map((g, i) => ({ user: g.user, bcryptHash: hashes[i] })))));
    this.registerOutputs({ passwords: this.passwords, htpasswd: this.htpasswd });
  }
}
