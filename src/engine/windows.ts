// Time windows: when a role's tokens may be used ("a maintenance window").
// One module for the engine (role validation, issue) and the PEP (every use).
//
// A window is `[<days> ]HH:MM-HH:MM` in the role's time zone (IANA, default UTC):
//   "09:00-17:00"            every day, 09:00 up to (not including) 17:00
//   "Mon-Fri 08:30-18:00"    weekdays; a day range may wrap ("Fri-Mon")
//   "Sat,Sun 00:00-24:00"    whole days
//   "Sun 22:00-02:00"        an end at or before the start runs past midnight:
//                            Sunday 22:00 to Monday 02:00
// Minutes are whole; the end is exclusive; 24:00 is allowed only as an end.

export const MAX_WINDOWS = 16;
const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'] as const;
const WINDOW = /^(?:([A-Za-z,-]+) )?(\d{2}):(\d{2})-(\d{2}):(\d{2})$/;

export interface Window {
  /** Days (0 = Sunday) on which the window opens. */
  days: Set<number>;
  /** Minutes after local midnight: start inclusive, end exclusive (end <= start: past midnight). */
  startMin: number;
  endMin: number;
}

function dayIndex(name: string): number {
  const i = DAYS.findIndex((d) => d.toLowerCase() === name.toLowerCase());
  if (i < 0) throw new Error(`${JSON.stringify(name)} is not a day (use ${DAYS.join(', ')})`);
  return i;
}

function parseDays(text: string): Set<number> {
  const days = new Set<number>();
  for (const part of text.split(',')) {
    const [from, to, extra] = part.split('-');
    if (extra !== undefined || from === '') throw new Error(`${JSON.stringify(part)} is not a day or a day range such as Mon-Fri`);
    const a = dayIndex(from);
    const b = to === undefined ? a : dayIndex(to);
    for (let d = a; ; d = (d + 1) % 7) {
      days.add(d);
      if (d === b) break;
    }
  }
  return days;
}

/** Parses one window; throws an Error whose message says what is wrong (never echoing more than the window). */
export function parseWindow(text: string): Window {
  const m = WINDOW.exec(text);
  if (!m) throw new Error('expected [<days> ]HH:MM-HH:MM, for example "Mon-Fri 09:00-17:00"');
  const [, dayText, sh, sm, eh, em] = m;
  const startMin = Number(sh) * 60 + Number(sm);
  const endMin = Number(eh) * 60 + Number(em);
  if (Number(sm) > 59 || Number(em) > 59 || startMin >= 24 * 60 || endMin > 24 * 60) {
    throw new Error('hours are 00 to 23 (24:00 only as an end) and minutes 00 to 59');
  }
  if (startMin === endMin) throw new Error('a window may not start where it ends (use 00:00-24:00 for a whole day)');
  return { days: dayText === undefined ? new Set([0, 1, 2, 3, 4, 5, 6]) : parseDays(dayText), startMin, endMin };
}

/** Returns why the zone is not an IANA time zone this runtime knows, or null. */
export function timeZoneProblem(zone: string): string | null {
  if (zone.length === 0 || zone.length > 64) return 'must be an IANA time zone such as Europe/Berlin or UTC';
  try {
    formatterOf(zone);
    return null;
  } catch {
    return 'is not an IANA time zone this server knows (for example Europe/Berlin, America/New_York, UTC)';
  }
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterOf(zone: string): Intl.DateTimeFormat {
  let f = formatters.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone: zone, weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
    if (formatters.size > 1000) formatters.clear();
    formatters.set(zone, f);
  }
  return f;
}

/** The local weekday (0 = Sunday) and minute of the day at `ms` in the zone. */
export function localTime(ms: number, zone: string): { day: number; minute: number } {
  let day = 0;
  let hour = 0;
  let minute = 0;
  for (const part of formatterOf(zone).formatToParts(ms)) {
    if (part.type === 'weekday') day = dayIndex(part.value);
    else if (part.type === 'hour') hour = Number(part.value);
    else if (part.type === 'minute') minute = Number(part.value);
  }
  return { day, minute: hour * 60 + minute };
}

/** Whether `ms` falls inside one of the windows, read in the zone. No windows: always inside. */
export function insideWindows(windows: readonly Window[], zone: string, ms: number): boolean {
  if (windows.length === 0) return true;
  const { day, minute } = localTime(ms, zone);
  const yesterday = (day + 6) % 7;
  return windows.some((w) => {
    if (w.endMin > w.startMin) return w.days.has(day) && minute >= w.startMin && minute < w.endMin;
    // Past midnight: the evening part on an opening day, the morning part the day after one.
    return (w.days.has(day) && minute >= w.startMin) || (w.days.has(yesterday) && minute < w.endMin);
  });
}

const parsedCache = new Map<string, Window[]>();

/** Parses a list of windows, cached by its text (the PEP sees the same claim on every request). */
export function parseWindows(texts: readonly string[]): Window[] {
  const key = texts.join('\n');
  let parsed = parsedCache.get(key);
  if (!parsed) {
    parsed = texts.map(parseWindow);
    if (parsedCache.size > 1000) parsedCache.clear();
    parsedCache.set(key, parsed);
  }
  return parsed;
}
