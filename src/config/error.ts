/**
 * The one error a configuration problem raises: it names the key (`--cert`, `DOTBRIDGE_LISTEN`,
 * `f.json: "listen"`), and the edge prints its message as one line and exits 2.
 *
 * @module
 */

/** A configuration problem, naming the key. The edge prints `message` and exits 2. */
export class ConfigError extends Error {
  constructor(readonly key: string, problem: string) {
    super(`${key}: ${problem}`);
    this.name = "ConfigError";
  }
}
