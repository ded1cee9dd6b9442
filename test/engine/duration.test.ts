import { describe, expect, it } from 'vitest';
import { formatDurationMs, parseDurationMs } from '../../src/sdk/duration.ts';

describe('durations', () => {
  it.each([
    ['90s', 90_000],
    ['15m', 900_000],
    ['1h', 3_600_000],
    ['1h30m', 5_400_000],
    ['500ms', 500],
    ['2d', 172_800_000],
    ['300', 300_000],
    [120, 120_000],
    ['1.5h', 5_400_000],
  ])('%j is %i ms', (input, ms) => {
    expect(parseDurationMs(input)).toBe(ms);
  });

  it.each(['', 'abc', '10x', '-5s', '5 s', 'h', -1, 1.5, '1h 30m'])('refuses %j', (input) => {
    expect(() => parseDurationMs(input)).toThrow();
  });

  it('refuses durations past ten years', () => {
    expect(() => parseDurationMs('100000d')).toThrow(/10-year/);
  });

  it('formats like Go', () => {
    expect(formatDurationMs(3_600_000)).toBe('1h0m0s');
    expect(formatDurationMs(90_000)).toBe('1m30s');
    expect(formatDurationMs(500)).toBe('500ms');
  });
});
