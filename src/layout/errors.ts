/** The error the layout functions throw. @module */

/**
 * A value that is not a valid WAL-E name, key, LSN or WAL segment size: a malformed string from
 * the outside world (a file name, a listing, a command-line argument) or an out-of-range number.
 * The message names the value and what was expected; commands turn it into a user-facing error.
 */
export class LayoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "LayoutError";
  }
}
