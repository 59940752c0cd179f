/** Removal of secret values from rendered log text. */
import { MIN_REDACTABLE_SECRET_LENGTH, REDACTED } from "../config/secret.ts";

/** A function that replaces every known secret value in a string with `<redacted>`. */
export type Redactor = (text: string) => string;

/**
 * A redactor for `secrets` (values shorter than {@link MIN_REDACTABLE_SECRET_LENGTH} are ignored:
 * replacing them would mangle ordinary text). Longer secrets are replaced first, so one containing
 * another is removed whole.
 */
export function createRedactor(secrets: readonly string[]): Redactor {
  const long = secrets.filter((secret) => secret.length >= MIN_REDACTABLE_SECRET_LENGTH);
  const values = [...new Set(long)].sort((a, b) => b.length - a.length);
  if (values.length === 0) return (text) => text;
  return (text) => {
    let result = text;
    for (const value of values) result = result.replaceAll(value, REDACTED);
    return result;
  };
}
