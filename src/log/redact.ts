/** Removal of secret values from rendered log text. */
import { REDACTED } from "../config/secret.ts";

/** A function that replaces every known secret value in a string with `<redacted>`. */
export type Redactor = (text: string) => string;

/**
 * A redactor for `secrets` (values shorter than `minLength` are ignored: replacing them would
 * mangle ordinary text). Longer secrets are replaced first, so one containing another is removed
 * whole.
 */
export function createRedactor(secrets: readonly string[], minLength = 4): Redactor {
  const values = [...new Set(secrets.filter((secret) => secret.length >= minLength))]
    .sort((a, b) => b.length - a.length);
  if (values.length === 0) return (text) => text;
  return (text) => {
    let result = text;
    for (const value of values) result = result.replaceAll(value, REDACTED);
    return result;
  };
}
