// Vault duration strings ("90s", "15m", "1h30m", "500ms", "7d") or integer
// seconds (as a number or a numeric string), parsed to milliseconds.

const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

const PART = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d)/gy;

/** The longest duration accepted anywhere (10 years): keeps arithmetic exact and far from overflow. */
export const MAX_DURATION_MS = 10 * 365 * 86_400_000;

export function parseDurationMs(input: string | number): number {
  let ms: number;
  if (typeof input === 'number') {
    if (!Number.isFinite(input) || !Number.isInteger(input) || input < 0) {
      throw new Error(`${shown(input)} is not a whole, non-negative number of seconds`);
    }
    ms = input * 1000;
  } else {
    const text = input.trim();
    if (text === '') throw new Error('empty duration');
    if (/^\d+$/.test(text)) {
      ms = Number(text) * 1000;
    } else {
      ms = 0;
      PART.lastIndex = 0;
      let consumed = 0;
      let m: RegExpExecArray | null;
      while ((m = PART.exec(text)) !== null) {
        ms += Number(m[1]) * UNIT_MS[m[2]];
        consumed = PART.lastIndex;
      }
      if (consumed !== text.length || consumed === 0) {
        throw new Error(`${shown(input)} is not a duration; use forms such as "90s", "15m", "1h30m" or integer seconds`);
      }
      ms = Math.round(ms);
    }
  }
  if (ms > MAX_DURATION_MS) throw new Error(`${shown(input)} is longer than the 10-year limit`);
  return ms;
}

/** The input as a message may show it: at most 40 characters of it. */
function shown(input: string | number): string {
  const text = String(input);
  return JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}...` : text);
}

/** Formats milliseconds the way Go's time.Duration prints them ("1h0m0s", "1m30s", "500ms"). */
export function formatDurationMs(ms: number): string {
  if (ms === 0) return '0s';
  if (ms < 1000) return `${ms}ms`;
  const totalSeconds = ms / 1000;
  const h = Math.floor(totalSeconds / 3600);
  const m = Math.floor((totalSeconds % 3600) / 60);
  const s = totalSeconds - h * 3600 - m * 60;
  const sText = Number.isInteger(s) ? `${s}s` : `${Number(s.toFixed(3))}s`;
  if (h > 0) return `${h}h${m}m${sText}`;
  if (m > 0) return `${m}m${sText}`;
  return sText;
}
