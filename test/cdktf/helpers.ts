// Synth assertions for vitest. cdktf's jest matchers are jest-specific; its
// plain Testing functions work anywhere, so these wrap them with a failure
// message that shows what was synthesized.

import { Testing } from 'cdktf';
import { expect } from 'vitest';

export type Synth = string;

interface Parsed {
  resource?: Record<string, Record<string, Record<string, unknown>>>;
  provider?: Record<string, unknown>;
}

/** Every resource of one type in a synthesized stack (metadata removed by Testing.synth). */
export function resourcesOf(synth: Synth, type: string): Record<string, unknown>[] {
  const parsed = JSON.parse(synth) as Parsed;
  return Object.values(parsed.resource?.[type] ?? {});
}

/** Asserts with Testing.toHaveResourceWithProperties, printing the type's resources on failure. */
export function expectResource(synth: Synth, type: string, properties: Record<string, unknown>): void {
  const found = Testing.toHaveResourceWithProperties(synth, type, properties);
  expect(
    found,
    `expected a ${type} with ${JSON.stringify(properties)}; synthesized: ${JSON.stringify(resourcesOf(synth, type), null, 2)}`,
  ).toBe(true);
}

export function expectNoResource(synth: Synth, type: string): void {
  expect(Testing.toHaveResource(synth, type), `expected no ${type}`).toBe(false);
}

/** The construct ids' tokens resolve to `${type.id.attr}`; find a resource's Terraform address by a property. */
export function addressOf(synth: Synth, type: string, match: (r: Record<string, unknown>) => boolean): string {
  const parsed = JSON.parse(synth) as Parsed;
  const entry = Object.entries(parsed.resource?.[type] ?? {}).find(([, r]) => match(r));
  if (!entry) throw new Error(`no ${type} matches`);
  return `${type}.${entry[0]}`;
}
