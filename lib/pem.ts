/** A PEM block (or any text) ending in exactly the newline it needs to be concatenated with the next. */
export function withNewline(pem: string): string {
  return pem.endsWith("\n") ? pem : `${pem}\n`;
}
