// The numbers and patterns of the rules, each written once: the services enforce them, the OpenAPI
// documents describe them, lib/rules.ts checks them in the database, and the gateway checks a
// token's sub with the username rule (bin/gateway-env.ts).
export const USERNAME = {
  minLength: 3,
  maxLength: 32,
  // Any case on the way in; stored lower-case, so "Ada" and "ada" are one account.
  pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$',
  hint: 'must start with a letter or digit and hold only letters, digits, ".", "_" and "-"',
};

export const PASSWORD = {
  minCharacters: 8,
  maxBytes: 1024, // PBKDF2's cost grows with the password: capped against denial of service
};

export const WAITLIST_LIMIT = 15; // students on one section's waitlist
export const WAITLISTS_PER_STUDENT = 3;
