import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { bcryptHash, renderHtpasswd } from "../lib/htpasswd";

export interface RegistryCredentialsArgs {
  users: string[];
  passwordLength: number;
  /** bcrypt cost of the htpasswd entries: nginx pays it on every request. */
  bcryptCost: number;
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
      password: new random.RandomPassword(
        `${name}-${user}`,
        {
          length: args.passwordLength,
          // Letters and digits only: nothing to escape in shells or config files.
          special: false,
        },
        { parent: this },
      ),
      // Kept in the state, so that the hash (made here, at our cost) is the same every run.
      salt: new random.RandomString(
        `${name}-${user}-salt`,
        {
          length: 22,
          upper: true,
          lower: true,
          numeric: true,
          special: true,
          overrideSpecial: "./",
        },
        { parent: this },
      ),
    }));

    this.passwords = pulumi.secret(
      pulumi
        .all(generated.map((g) => g.password.result))
        .apply((results) => Object.fromEntries(results.map((result, i) => [generated[i].user, result]))),
    );
    // Not RandomPassword.bcryptHash: its cost is fixed at 10, about 50 ms of nginx CPU on every
    // request. The passwords are long and random, so a low cost gives up nothing that matters.
    this.htpasswd = pulumi.secret(
      pulumi
        .all(generated.map((g) => pulumi.all([g.password.result, g.salt.result])))
        .apply((pairs) =>
          renderHtpasswd(generated.map((g, i) => ({ user: g.user, bcryptHash: bcryptHash(pairs[i][0], pairs[i][1], args.bcryptCost) }))),
        ),
    );
    this.registerOutputs({ passwords: this.passwords, htpasswd: this.htpasswd });
  }
}
