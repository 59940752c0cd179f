/** The message of a thrown value: an Error's message, or anything else as text. @module */

/** `error.message` for an `Error`, else `String(error)`. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
