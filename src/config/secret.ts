/**
 * Secret values (keys, tokens, passwords). They are kept in {@link Secret} boxes so that printing,
 * string interpolation, JSON serialisation and `Deno.inspect` all show `<redacted>`; only an
 * explicit `reveal()` gives the value.
 */

/** What every rendering of a secret shows. */
export const REDACTED = "<redacted>";

/** Minimum length of a secret value that log redaction replaces (shorter ones would mangle text). */
export const MIN_REDACTABLE_SECRET_LENGTH = 4;

/**
 * Environment variables whose values are secrets. The first six are the ones WAL-E reads
 * (spec §9; they are refused as flags); `PGPASSWORD` is libpq's and is redacted from logs too.
 */
export const SECRET_ENV_VARS = [
  "AWS_SECRET_ACCESS_KEY",
  "AWS_SECURITY_TOKEN",
  "AWS_SESSION_TOKEN",
  "WABS_ACCESS_KEY",
  "WABS_SAS_TOKEN",
  "SWIFT_PASSWORD",
  "PGPASSWORD",
] as const;

/** A secret string that refuses to be printed. */
export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  /** The secret itself. Never log it. */
  reveal(): string {
    return this.#value;
  }

  toString(): string {
    return REDACTED;
  }

  toJSON(): string {
    return REDACTED;
  }

  [Symbol.for("Deno.customInspect")](): string {
    return `Secret(${REDACTED})`;
  }

  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return `Secret(${REDACTED})`;
  }
}
