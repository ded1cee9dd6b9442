// Anomaly rules over the PEPs' usage events: each rule watches one pattern and
// names what to do when it fires (alert, revoke the token, or revoke the
// workload's leases). Pure: events and a clock in, firings out; what acts on a
// firing is actions.ts. A rule fires once per token.
//
//   scope_denials     `threshold` ERR_SCOPE denials within `window`: a token
//                     probing beyond its grant
//   foreign_address   a use from another address than the token's first one,
//                     or refused for its bound CIDRs (ERR_CONTEXT)
//   rate_spike        more than `multiple` times the token's own rate over the
//                     `baseline` before, and at least `min_count`, within `window`
//                     (judged once the token is older than window + baseline)
//   after_revocation  a revoked token still presented (ERR_TOKEN_REVOKED)
//   dpop_replay       a DPoP proof presented twice

import type { UsageEvent } from '../pep/types.ts';

export const RULE_KINDS = ['scope_denials', 'foreign_address', 'rate_spike', 'after_revocation', 'dpop_replay'] as const;
export type RuleKind = (typeof RULE_KINDS)[number];
export const ACTIONS = ['alert', 'revoke_token', 'revoke_workload'] as const;
export type RuleAction = (typeof ACTIONS)[number];

export interface Rule {
  name: string;
  kind: RuleKind;
  action: RuleAction;
  /** scope_denials: denials that fire it (default 5). */
  threshold?: number;
  /** scope_denials, rate_spike: the window events are counted in (ms; default 60 s). */
  windowMs?: number;
  /** rate_spike: the baseline before the window (ms; default 10 min), the multiple of it (default 5), the least count (default 20). */
  baselineMs?: number;
  multiple?: number;
  minCount?: number;
}

export interface Firing {
  rule: string;
  kind: RuleKind;
  action: RuleAction;
  time: string;
  jti: string;
  role?: string;
  lease_id?: string;
  /** One line: what was seen. */
  reason: string;
  /** The events that made it fire (the last few, at most 20). */
  evidence: UsageEvent[];
}

interface TokenState {
  firstSeen: number;
  /** Recent events of this token, oldest first (bounded by the longest window). */
  events: Array<{ at: number; event: UsageEvent }>;
  firstAddress?: string;
  fired: Set<string>;
  lastSeen: number;
}

const MAX_TOKENS = 20_000;
const MAX_EVENTS_PER_TOKEN = 1_000;
/** Events held across every token: past it the tokens least recently seen are forgotten. */
const MAX_EVENTS = 200_000;

/** Checks a rule set, naming the field of the first mistake (for a config file). */
export function validateRules(rules: unknown): Rule[] {
  if (!Array.isArray(rules)) throw new Error('rules must be a list');
  return rules.map((r, i) => {
    const at = `rules[${i}]`;
    if (r === null || typeof r !== 'object') throw new Error(`${at} must be an object`);
    const o = r as Record<string, unknown>;
    if (typeof o.name !== 'string' || o.name === '') throw new Error(`${at}.name must be a non-empty string`);
    if (!(RULE_KINDS as readonly unknown[]).includes(o.kind)) throw new Error(`${at}.kind must be one of ${RULE_KINDS.join(', ')}`);
    if (!(ACTIONS as readonly unknown[]).includes(o.action)) throw new Error(`${at}.action must be one of ${ACTIONS.join(', ')}`);
    for (const k of ['threshold', 'windowMs', 'baselineMs', 'multiple', 'minCount']) {
      if (o[k] !== undefined && !(typeof o[k] === 'number' && (o[k] as number) > 0)) throw new Error(`${at}.${k} must be a positive number`);
    }
    return o as unknown as Rule;
  });
}

export class RuleEngine {
  private readonly rules: Rule[];
  private readonly clock: () => number;
  private readonly tokens = new Map<string, TokenState>();
  private held = 0;
  private readonly keepMs: number;

  constructor(rules: Rule[], options: { clock?: () => number } = {}) {
    this.rules = validateRules(rules);
    this.clock = options.clock ?? Date.now;
    this.keepMs = Math.max(60_000, ...this.rules.map((r) => (r.windowMs ?? 60_000) + (r.kind === 'rate_spike' ? (r.baselineMs ?? 600_000) : 0)));
  }

  /** Takes one event; returns the rules it made fire (each at most once per token). */
  observe(event: UsageEvent): Firing[] {
    if (!event.jti) return [];
    const now = this.clock();
    const state = this.stateOf(event.jti, now);
    state.events.push({ at: now, event });
    this.held++;
    let drop = 0;
    while (drop < state.events.length && (state.events[drop].at < now - this.keepMs || state.events.length - drop > MAX_EVENTS_PER_TOKEN)) drop++;
    if (drop > 0) {
      state.events.splice(0, drop);
      this.held -= drop;
    }
    while (this.held > MAX_EVENTS && this.tokens.size > 1) {
      const [oldest, s] = this.tokens.entries().next().value as [string, TokenState];
      this.held -= s.events.length;
      this.tokens.delete(oldest);
    }
    const out: Firing[] = [];
    for (const rule of this.rules) {
      if (state.fired.has(rule.name)) continue;
      const reason = this.check(rule, state, event, now);
      if (reason === null) continue;
      state.fired.add(rule.name);
      out.push({
        rule: rule.name,
        kind: rule.kind,
        action: rule.action,
        time: new Date(now).toISOString(),
        jti: event.jti,
        ...(event.role ? { role: event.role } : {}),
        ...(event.lease_id ? { lease_id: event.lease_id } : {}),
        reason,
        evidence: state.events.slice(-20).map((e) => e.event),
      });
    }
    if (event.remote_addr && state.firstAddress === undefined) state.firstAddress = event.remote_addr;
    return out;
  }

  private check(rule: Rule, state: TokenState, event: UsageEvent, now: number): string | null {
    const windowMs = rule.windowMs ?? 60_000;
    const inWindow = (from: number, to = now) => state.events.filter((e) => e.at > from && e.at <= to);
    switch (rule.kind) {
      case 'scope_denials': {
        const threshold = rule.threshold ?? 5;
        const n = inWindow(now - windowMs).filter((e) => e.event.code === 'ERR_SCOPE').length;
        return n >= threshold ? `${n} out-of-scope attempts within ${windowMs / 1000} s (the last: ${event.op} ${event.resource})` : null;
      }
      case 'foreign_address': {
        if (event.code === 'ERR_CONTEXT' && event.detail?.includes('bound_cidrs')) return `used from ${event.remote_addr ?? 'an unknown address'}, outside its bound CIDRs`;
        if (event.remote_addr && state.firstAddress !== undefined && event.remote_addr !== state.firstAddress) {
          return `used from ${event.remote_addr}, where it was first used from ${state.firstAddress}`;
        }
        return null;
      }
      case 'rate_spike': {
        const baselineMs = rule.baselineMs ?? 600_000;
        // A token younger than its baseline has none to compare with: judged once it has one.
        if (now - state.firstSeen < windowMs + baselineMs) return null;
        const recent = inWindow(now - windowMs).length;
        const before = inWindow(now - windowMs - baselineMs, now - windowMs).length;
        // The usual count for one window, from the baseline; at least one, so a token's first burst needs min_count.
        const usual = Math.max(1, (before * windowMs) / baselineMs);
        return recent >= (rule.minCount ?? 20) && recent > usual * (rule.multiple ?? 5)
          ? `${recent} uses within ${windowMs / 1000} s, ${(recent / usual).toFixed(1)} times its usual ${usual.toFixed(1)}`
          : null;
      }
      case 'after_revocation':
        return event.code === 'ERR_TOKEN_REVOKED' ? `presented after its revocation, from ${event.remote_addr ?? 'an unknown address'}` : null;
      case 'dpop_replay':
        return event.code === 'ERR_BINDING' && /replay|already used/i.test(event.detail ?? '') ? `a DPoP proof presented twice, from ${event.remote_addr ?? 'an unknown address'}` : null;
    }
  }

  private stateOf(jti: string, now: number): TokenState {
    let state = this.tokens.get(jti);
    if (!state) {
      if (this.tokens.size >= MAX_TOKENS) {
        // The quietest go first: a map in insertion order, refreshed on use below.
        for (const [k, v] of this.tokens) {
          if (now - v.lastSeen > this.keepMs || this.tokens.size >= MAX_TOKENS) {
            this.held -= v.events.length;
            this.tokens.delete(k);
          }
          if (this.tokens.size < MAX_TOKENS * 0.9) break;
        }
      }
      state = { firstSeen: now, events: [], fired: new Set(), lastSeen: now };
    } else {
      this.tokens.delete(jti);
    }
    state.lastSeen = now;
    this.tokens.set(jti, state);
    return state;
  }
}
