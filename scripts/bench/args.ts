/** Command-line scanning shared by the benchmark scripts. @module */

/**
 * Walks `--flag value` / `--flag=value` arguments and `-h`/`--help` (prints `usage`, exits 0).
 * `handle` gets each flag with a getter for its value and returns false for an unknown flag,
 * which is an error naming the usage.
 */
export function scanBenchArgs(
  args: string[],
  usage: string,
  handle: (flag: string, value: () => string) => boolean,
): void {
  for (let i = 0; i < args.length; i++) {
    const [flag, inline] = args[i].split(/=(.*)/s, 2);
    if (flag === "--help" || flag === "-h") {
      console.log(usage);
      Deno.exit(0);
    }
    const value = () => {
      const v = inline ?? args[++i];
      if (v === undefined) throw new Error(`${flag} needs a value; ${usage}`);
      return v;
    };
    if (!handle(flag, value)) throw new Error(`unknown argument ${args[i]}; ${usage}`);
  }
}
