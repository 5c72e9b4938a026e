import * as bcrypt from "bcryptjs";

/** The htpasswd file nginx checks: one `user:bcrypt-hash` line per user. */
export function renderHtpasswd(entries: { user: string; bcryptHash: string }[]): string {
  return entries.map((e) => `${e.user}:${e.bcryptHash}\n`).join("");
}

/**
 * The bcrypt hash of `password` with a given 22-character salt and cost: the same
 * inputs give the same hash, so a salt kept in the state keeps the htpasswd stable
 * from run to run (no perpetual diff), at a cost the program chooses.
 */
export function bcryptHash(password: string, salt: string, cost: number): string {
  if (!/^[./A-Za-z0-9]{22}$/.test(salt)) throw new Error("a bcrypt salt is 22 characters of [./A-Za-z0-9]");
  if (!Number.isInteger(cost) || cost < 4 || cost > 31) throw new Error(`bcrypt cost ${cost} is not 4-31`);
  return bcrypt.hashSync(password, `$2a$${String(cost).padStart(2, "0")}$${salt}`);
}
