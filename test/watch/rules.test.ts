// Each anomaly rule fires on its pattern, once per token, and a steady
// workload over many minutes of simulated time raises nothing.
import { describe, expect, it } from 'vitest';
import type { UsageEvent } from '../../src/pep/types.ts';
import { RuleEngine, validateRules, type Rule } from '../../src/watch/rules.ts';

const T0 = Date.UTC(2026, 11, 5, 12, 0, 0);
const ALL: Rule[] = [
  { name: 'probe', kind: 'scope_denials', action: 'revoke_token', threshold: 5, windowMs: 60_000 },
  { name: 'moved', kind: 'foreign_address', action: 'alert' },
  { name: 'spike', kind: 'rate_spike', action: 'alert', windowMs: 10_000, baselineMs: 300_000, multiple: 5, minCount: 20 },
  { name: 'zombie', kind: 'after_revocation', action: 'revoke_workload' },
  { name: 'replay', kind: 'dpop_replay', action: 'revoke_token' },
];

function engine(rules = ALL) {
  const clock = { now: T0 };
  return { clock, e: new RuleEngine(rules, { clock: () => clock.now }) };
}

const use = (over: Partial<UsageEvent> = {}): UsageEvent => ({
  time: '',
  decision: 'allow',
  jti: 'j1',
  role: 'orders',
  op: 'read',
  resource: 'db://orders/1',
  remote_addr: '10.0.0.7',
  ...over,
});

describe('anomaly rules', () => {
  it('a steady workload over 30 simulated minutes raises nothing', () => {
    const { clock, e } = engine();
    let fired = 0;
    for (let s = 0; s < 30 * 60; s++) {
      clock.now = T0 + s * 1000 + (s % 7) * 50;
      fired += e.observe(use({ resource: `db://orders/${s % 50}` })).length;
      if (s % 2 === 0) fired += e.observe(use({ jti: 'j2', op: 'write', resource: 'db://orders/outbox', remote_addr: '10.0.0.8' })).length;
      // A denial now and then is not a probe.
      if (s % 300 === 0) fired += e.observe(use({ decision: 'deny', code: 'ERR_SCOPE', op: 'write', resource: 'db://orders/1' })).length;
    }
    expect(fired).toBe(0);
  });

  it('scope_denials: the fifth out-of-scope attempt within the window fires, once', () => {
    const { clock, e } = engine();
    const deny = () => e.observe(use({ decision: 'deny', code: 'ERR_SCOPE', op: 'write', resource: 'db://payments/1' }));
    for (let i = 0; i < 4; i++) {
      clock.now += 5000;
      expect(deny()).toEqual([]);
    }
    clock.now += 5000;
    const [f] = deny();
    expect(f).toMatchObject({ rule: 'probe', action: 'revoke_token', jti: 'j1', role: 'orders' });
    expect(f.reason).toContain('5 out-of-scope attempts');
    expect(f.evidence).toHaveLength(5);
    expect(deny()).toEqual([]);
    // Spread over more than the window: never five at once.
    const slow = engine();
    let n = 0;
    for (let i = 0; i < 20; i++) {
      slow.clock.now += 20_000;
      n += slow.e.observe(use({ jti: 'j9', decision: 'deny', code: 'ERR_SCOPE' })).length;
    }
    expect(n).toBe(0);
  });

  it('foreign_address: another address than the first, or outside the bound CIDRs', () => {
    const { e } = engine([ALL[1]]);
    expect(e.observe(use())).toEqual([]);
    expect(e.observe(use())).toEqual([]);
    expect(e.observe(use({ remote_addr: '192.0.2.9' }))[0].reason).toBe('used from 192.0.2.9, where it was first used from 10.0.0.7');
    const cidr = e.observe(use({ jti: 'j3', decision: 'deny', code: 'ERR_CONTEXT', detail: "the request comes from \"192.0.2.1\", outside the token's bound_cidrs", remote_addr: '192.0.2.1' }));
    expect(cidr[0].reason).toContain('outside its bound CIDRs');
  });

  it("rate_spike: well above the token's own baseline, and not for a token that was always busy", () => {
    const { clock, e } = engine([ALL[2]]);
    for (let s = 0; s < 320; s++) {
      clock.now = T0 + s * 1000;
      expect(e.observe(use())).toEqual([]);
    }
    let fired: ReturnType<typeof e.observe> = [];
    for (let i = 0; i < 200 && fired.length === 0; i++) {
      clock.now += 20;
      fired = e.observe(use());
    }
    expect(fired[0].reason).toMatch(/uses within 10 s, [\d.]+ times its usual/);
    const busy = engine([ALL[2]]);
    let n = 0;
    for (let i = 0; i < 6000; i++) {
      busy.clock.now = T0 + i * 100;
      n += busy.e.observe(use({ jti: 'busy' })).length;
    }
    expect(n).toBe(0);
  });

  it('after_revocation and dpop_replay fire on their first sign', () => {
    const { e } = engine();
    expect(e.observe(use({ decision: 'deny', code: 'ERR_TOKEN_REVOKED' })).map((f) => f.rule)).toEqual(['zombie']);
    expect(e.observe(use({ jti: 'j4', decision: 'deny', code: 'ERR_BINDING', detail: 'DPoP proof refused: DPoP proof was already used (replay)' })).map((f) => f.rule)).toEqual(['replay']);
    expect(e.observe(use({ jti: 'j5', decision: 'deny', code: 'ERR_BINDING', detail: 'the token is DPoP-bound and the request carries no DPoP proof' }))).toEqual([]);
  });

  it('refuses a bad rule set, naming the field', () => {
    expect(() => validateRules([{ name: 'x', kind: 'nope', action: 'alert' }])).toThrow('rules[0].kind must be one of');
    expect(() => validateRules([{ name: 'x', kind: 'scope_denials', action: 'delete' }])).toThrow('rules[0].action must be one of');
    expect(() => validateRules([{ name: 'x', kind: 'scope_denials', action: 'alert', threshold: -1 }])).toThrow('rules[0].threshold must be a positive number');
    expect(() => validateRules({})).toThrow('rules must be a list');
  });
});
