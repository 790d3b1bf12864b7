/**
 * What the commander CLIs share: parsers for option values, and the exit status of a usage error.
 * (`api/` may not import this folder; api/main.ts keeps its own copy of the number parser.)
 */
import { InvalidArgumentError, type CommanderError } from 'commander';

/** A commander option parser for a whole number from `min` to `max`. */
export function wholeNumber(min = 0, max = Number.MAX_SAFE_INTEGER): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isInteger(n) || n < min || n > max) {
      const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`;
      throw new InvalidArgumentError(`expected a whole number ${range}, found ${JSON.stringify(value)}`);
    }
    return n;
  };
}

/** For `.exitOverride(exitUsage)`: --help and --version exit 0, a bad option or argument exits 2 (after commander's message). */
export function exitUsage(err: CommanderError): never {
  process.exit(err.exitCode === 0 ? 0 : 2);
}
