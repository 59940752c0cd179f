/** `wal-d version`: prints the version to stdout. Needs no configuration, credentials or prefix. */
import { WALD_VERSION } from "../version.ts";

/** The exact stdout of `wal-d version`. */
export function versionOutput(): string {
  return `${WALD_VERSION}\n`;
}
