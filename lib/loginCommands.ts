// The `docker login` lines PrivateRegistry outputs.

/**
 * A login, run in the project folder, that keeps the password off the command line
 * and out of shell history: `npm run pulumi` reaches the stack's backend with its passphrase.
 */
export function dockerLoginCommand(stack: string, endpoint: string, user: string): string {
  return `npm run --silent pulumi -- stack output --stack ${stack} --show-secrets --json credentials | node -e 'process.stdout.write(JSON.parse(require("fs").readFileSync(0, "utf8"))[process.argv[1]])' ${user} | docker login ${endpoint} --username ${user} --password-stdin`;
}

/** user -> that user's login line at `endpoint` (the first endpoint), in the order of `users`. */
export function dockerLoginCommands(stack: string, endpoint: string, users: readonly string[]): Record<string, string> {
  return Object.fromEntries(users.map((user) => [user, dockerLoginCommand(stack, endpoint, user)]));
}
