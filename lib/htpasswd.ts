/** The htpasswd file nginx checks: one `user:bcrypt-hash` line per user. */
export function renderHtpasswd(entries: { user: string; bcryptHash: string }[]): string {
  return entries.map((e) => `${e.user}:${e.bcryptHash}\n`).join("");
}
