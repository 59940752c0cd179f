/** The native peers the benchmarks compare against. @module */

/** The lzop program to run (`LZOP` overrides, e.g. to point at another build). */
export const LZOP: string = Deno.env.get("LZOP") ?? "lzop";

/** `lzop --version`, or the reason native lzop cannot run. */
export async function probeLzop(): Promise<{ version: string } | { skipped: string }> {
  try {
    const { code, stdout } = await new Deno.Command(LZOP, { args: ["--version"] }).output();
    if (code !== 0) return { skipped: `\`${LZOP} --version\` exited with status ${code}` };
    const lines = new TextDecoder().decode(stdout).split("\n");
    return { version: lines.slice(0, 2).join(", ") };
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      return { skipped: `\`${LZOP}\` not found (Debian: apt-get install lzop)` };
    }
    return { skipped: `cannot run \`${LZOP}\`: ${(error as Error).message}` };
  }
}

/** Standard output of a command, or null if it cannot run or fails. */
export async function commandOutput(command: string, args: string[]): Promise<string | null> {
  try {
    const { code, stdout } = await new Deno.Command(command, { args, stderr: "null" }).output();
    return code === 0 ? new TextDecoder().decode(stdout) : null;
  } catch {
    return null;
  }
}

/** The machine and software the numbers come from. */
export interface MachineInfo {
  nproc: number;
  cpuModel: string;
  os: string;
  deno: string;
  v8: string;
  /** `lzop --version` (program and library lines), or null when native lzop is unavailable. */
  lzop: string | null;
}

/** Describes this machine; `lzop` is the probed lzop version, or null. */
export async function describeMachine(lzop: string | null): Promise<MachineInfo> {
  // Deno only lets a program read /proc/cpuinfo with --allow-all, so ask cat (--allow-run).
  const cpuinfo = await commandOutput("cat", ["/proc/cpuinfo"]) ?? "";
  const cpuModel = cpuinfo.match(/^model name\s*:\s*(.+)$/m)?.[1]?.trim() ?? "unknown CPU";
  const nproc = Number(await commandOutput("nproc", [])) || navigator.hardwareConcurrency;
  return {
    nproc,
    cpuModel,
    os: `${Deno.build.os} ${Deno.osRelease()} ${Deno.build.arch}`,
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    lzop,
  };
}
