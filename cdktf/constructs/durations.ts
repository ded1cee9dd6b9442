// Durations in construct props: Vault duration strings ("90s", "15m", "1h30m")
// or integer seconds, parsed by the engine's own parser and handed to the
// Terraform Vault provider as whole seconds.

import { parseDurationMs } from '../../src/sdk/duration.ts';

/** A Vault duration string ("5m", "1h30m") or integer seconds. */
export type Duration = string | number;

/** Whole seconds of `value`; throws an Error naming `what` when it is not a whole-second duration. */
export function durationSeconds(what: string, value: Duration): number {
  let ms: number;
  try {
    ms = parseDurationMs(value);
  } catch (err) {
    throw new Error(`invalid ${what}: ${(err as Error).message}`, { cause: err });
  }
  if (ms % 1000 !== 0) throw new Error(`invalid ${what}: ${JSON.stringify(value)} is not a whole number of seconds`);
  return ms / 1000;
}

/** Like durationSeconds, for optional props: undefined stays undefined. */
export function optionalSeconds(what: string, value: Duration | undefined): number | undefined {
  return value === undefined ? undefined : durationSeconds(what, value);
}
