/**
 * The effective environment: the process environment overlaid with an envdir (see envdir.ts).
 */
import { MIN_REDACTABLE_SECRET_LENGTH, SECRET_ENV_VARS } from "./secret.ts";

/** An immutable name → value map whose printed forms hide secret values. */
export class EffectiveEnvironment {
  readonly #vars: ReadonlyMap<string, string>;

  constructor(vars: Iterable<readonly [string, string]> | Record<string, string>) {
    const entries = Symbol.iterator in vars
      ? vars as Iterable<readonly [string, string]>
      : Object.entries(vars as Record<string, string>);
    this.#vars = new Map(entries);
  }

  /** The value, or `undefined` when unset. */
  get(name: string): string | undefined {
    return this.#vars.get(name);
  }

  /** The value, or `null` when unset or empty (WAL-E treats an empty variable as unset). */
  getNonEmpty(name: string): string | null {
    const value = this.#vars.get(name);
    return value === undefined || value === "" ? null : value;
  }

  has(name: string): boolean {
    return this.#vars.has(name);
  }

  /** Variable names, sorted. */
  names(): string[] {
    return [...this.#vars.keys()].sort();
  }

  /**
   * All variables as a plain object, e.g. for `Deno.Command`'s `env`. It CONTAINS SECRETS: pass it
   * to child processes only, never to a logger.
   */
  toObject(): Record<string, string> {
    return Object.fromEntries(this.#vars);
  }

  /** Values of the secret variables that are set (and long enough), for log redaction. */
  secretValuesForRedaction(): string[] {
    const values: string[] = [];
    for (const name of SECRET_ENV_VARS) {
      const value = this.#vars.get(name);
      if (value !== undefined && value.length >= MIN_REDACTABLE_SECRET_LENGTH) values.push(value);
    }
    return values;
  }

  /** JSON form: variable names only (values may hold secrets nobody told us about). */
  toJSON(): { variableNames: string[] } {
    return { variableNames: this.names() };
  }

  [Symbol.for("Deno.customInspect")](): string {
    return `EffectiveEnvironment(${this.#vars.size} variables, values hidden)`;
  }

  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return `EffectiveEnvironment(${this.#vars.size} variables, values hidden)`;
  }
}
