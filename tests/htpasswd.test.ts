// The htpasswd entries the program makes: bcrypt at a chosen cost, stable for a kept salt.
import * as bcrypt from "bcryptjs";
import { bcryptHash, renderHtpasswd } from "../lib/htpasswd";

const SALT = "abcdefghijklmnopqrstuv";

describe("bcryptHash", () => {
  test("checks the password and nothing else, at the cost asked for", () => {
    const hash = bcryptHash("s3cret-but-long", SALT, 4);
    expect(hash).toMatch(/^\$2a\$04\$abcdefghijklmnopqrstu[.A-Za-z0-9/]{32}$/);
    expect(bcrypt.compareSync("s3cret-but-long", hash)).toBe(true);
    expect(bcrypt.compareSync("s3cret-but-lonG", hash)).toBe(false);
    expect(bcryptHash("s3cret-but-long", SALT, 10)).toMatch(/^\$2a\$10\$/);
  });

  test("is the same for the same password and salt (no perpetual diff), different for another salt", () => {
    expect(bcryptHash("pw-0123456789", SALT, 4)).toBe(bcryptHash("pw-0123456789", SALT, 4));
    expect(bcryptHash("pw-0123456789", "ABCDEFGHIJKLMNOPQRSTUV", 4)).not.toBe(bcryptHash("pw-0123456789", SALT, 4));
  });

  test("refuses a salt or cost bcrypt cannot take", () => {
    expect(() => bcryptHash("pw", "short", 4)).toThrow(/22 characters/);
    expect(() => bcryptHash("pw", "abcdefghijklmnopqrst-!", 4)).toThrow(/22 characters/);
    expect(() => bcryptHash("pw", SALT, 3)).toThrow(/not 4-31/);
  });
});

test("renderHtpasswd: one user:hash line per user", () => {
  expect(
    renderHtpasswd([
      { user: "a", bcryptHash: "$2a$04$x" },
      { user: "b", bcryptHash: "$2a$04$y" },
    ]),
  ).toBe("a:$2a$04$x\nb:$2a$04$y\n");
});
