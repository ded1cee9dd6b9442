// The differential fidelity suite: one scenario of requests covering every
// endpoint the dev server implements, sent to OpenBao running the tvm plugin
// and to the dev server. Status codes, envelope keys, data keys and values,
// error shapes and texts, and lease fields must agree; values that must differ
// (ids, tokens, accessors, times, addresses) are compared by kind. A
// difference that stays is listed with its reason in docs/fidelity.md; the
// suite fails on any difference not listed, and on any row that no longer occurs.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../../src/server/index.ts';
import {
  compareAnswers,
  normalize,
  parseTable,
  sameDifference,
  tableRow,
  type Answer,
  type TableRow,
} from './differential-compare.ts';
import { jwtIssuer, runScenario, scenario, type Ctx, type JwtIssuer, type Step, type Target } from './differential-scenario.ts';
import { openbaoUnavailable, registerPlugin, startBaoDev, type Bao } from './openbao.ts';
import { REPO } from './parts.ts';

const unavailable = openbaoUnavailable();
const TABLE = join(REPO, 'docs/fidelity.md');
/** The dev server's description of its tvm/ mount, given to OpenBao's too so the listings compare. */
const TVM_DESCRIPTION = 'tvm: short-lived, narrowly scoped tokens';

let bao: Bao | undefined;
let dev: RunningServer | undefined;

function context(target: Target, jwt: JwtIssuer): Ctx {
  return {
    target,
    v: {},
    jwt,
    placeholders: { names: new Map([[target.rootToken, '<root>']]), address: target.address },
  };
}

/** The answer with the target's own values replaced by placeholders. */
function normalized(a: Answer, c: Ctx): Answer {
  return { ...a, body: normalize(a.body, c.placeholders) };
}

/** A body without the keys only the dev server's envelope has (rows of `*` saying OpenBao answers them absent). */
function withoutEnvelopeKeys(openbao: Answer, dev: Answer, keys: string[], seen: Set<string>): Answer {
  const a = openbao.body as Record<string, unknown> | null;
  const b = dev.body as Record<string, unknown> | null;
  if (!b || typeof b !== 'object' || Array.isArray(b)) return dev;
  const body = { ...b };
  for (const key of keys) {
    if (key in body && !(a && typeof a === 'object' && key in a)) {
      delete body[key];
      seen.add(key);
    }
  }
  return { ...dev, body };
}

describe.skipIf(unavailable !== '')('differential: the dev server against OpenBao', () => {
  beforeAll(async () => {
    bao = await startBaoDev();
    await registerPlugin(bao);
    // The same starting point: OpenBao's dev mode mounts a kv engine at secret/, the dev server does not.
    for (const [method, path, body] of [
      ['DELETE', 'sys/mounts/secret', undefined],
      ['POST', 'sys/mounts/tvm/tune', { description: TVM_DESCRIPTION }],
    ] as const) {
      const r = await bao.api(method, path, body);
      if (r.status >= 300) throw new Error(`OpenBao setup ${method} ${path}: ${r.status} ${r.text}`);
    }
    dev = await startServer({ dev: true, listenAddress: '127.0.0.1:0', quiet: true, rootTokenId: bao.rootToken });
  }, 120_000);

  afterAll(async () => {
    await dev?.close();
    await bao?.stop();
  });

  it('answers every request as OpenBao does, or as docs/fidelity.md says', async () => {
    const steps = scenario();
    const jwt = await jwtIssuer();
    const openbaoCtx = context({ name: 'openbao', address: bao!.address, rootToken: bao!.rootToken }, jwt);
    const devCtx = context({ name: 'dev', address: dev!.address, rootToken: dev!.rootToken }, jwt);
    const openbaoAnswers = await runScenario(steps, openbaoCtx);
    const devAnswers = await runScenario(steps, devCtx);

    const rows = parseTable(readFileSync(TABLE, 'utf8'));
    const envelopeRows = rows.filter((r) => r.step === '*' && /^body\.\w+$/.test(r.where) && r.openbao === 'absent');
    const envelopeKeys = envelopeRows.map((r) => r.where.slice('body.'.length));
    const envelopeSeen = new Set<string>();
    const used = new Set<TableRow>();
    const unlisted: string[] = [];
    const answersDump: string[] = [];
    let identical = 0;
    let listed = 0;

    for (let i = 0; i < steps.length; i++) {
      const step = steps[i];
      const a = normalized(openbaoAnswers[i], openbaoCtx);
      const b = withoutEnvelopeKeys(a, normalized(devAnswers[i], devCtx), envelopeKeys, envelopeSeen);
      const diffs = compareAnswers(step.id, a, b);
      answersDump.push(JSON.stringify({ step: step.id, request: requestCell(step), openbao: a, dev: b }));
      if (diffs.length === 0) {
        identical++;
        continue;
      }
      let allListed = true;
      for (const d of diffs) {
        const row = rows.find((r) => sameDifference(r, d));
        if (row) used.add(row);
        else {
          allListed = false;
          unlisted.push(tableRow(d, requestCell(step)));
        }
      }
      if (allListed) listed++;
    }
    for (const r of envelopeRows) if (envelopeSeen.has(r.where.slice('body.'.length))) used.add(r);
    const stale = rows.filter((r) => !used.has(r)).map((r) => `docs/fidelity.md line ${r.line}: ${r.request} ${r.where}`);

    console.log(
      `differential: ${steps.length} requests, ${identical} identical, ${listed} listed` +
        (envelopeRows.length > 0 ? ` (and on every answer: ${envelopeRows.map((r) => r.where).join(', ')})` : ''),
    );
    // DIFFERENTIAL_DUMP=<file>: the unlisted differences as table rows, to start a row from.
    // DIFFERENTIAL_ANSWERS=<file>: every step's two answers (normalised), one JSON line each.
    if (process.env.DIFFERENTIAL_DUMP) writeFileSync(process.env.DIFFERENTIAL_DUMP, unlisted.join('\n') + '\n');
    if (process.env.DIFFERENTIAL_ANSWERS) writeFileSync(process.env.DIFFERENTIAL_ANSWERS, answersDump.join('\n') + '\n');
    expect(unlisted, 'differences not in docs/fidelity.md (fix the dev server, or add the row with its reason)').toEqual([]);
    expect(stale, 'rows of docs/fidelity.md that no longer occur').toEqual([]);
    expect(steps.length).toBeGreaterThanOrEqual(80);
  }, 300_000);

  it('documents in sys/internal/specs/openapi only paths OpenBao documents too', async () => {
    // Both servers hold the same mounts now (the scenario enabled the same auth methods on each).
    const [ours, theirs] = await Promise.all([
      fetch(`${dev!.address}/v1/sys/internal/specs/openapi`, { headers: { 'X-Vault-Token': dev!.rootToken } }).then((r) => r.json()),
      bao!.api('GET', 'sys/internal/specs/openapi').then((r) => r.body),
    ]);
    const documented = new Set(Object.keys((theirs as { paths: object }).paths));
    const paths = Object.keys((ours as { paths: object }).paths);
    // Vault 1.17's legacy lease aliases, which the dev server serves as the Vault it reports; OpenBao removed them.
    const legacy = ['/sys/renew', '/sys/renew/{url_lease_id}', '/sys/revoke', '/sys/revoke/{url_lease_id}', '/sys/revoke-prefix/{prefix}'];
    expect(paths.filter((p) => !documented.has(p) && !legacy.includes(p))).toEqual([]);
    expect(paths).toEqual(expect.arrayContaining(['/sys/leases/renew', '/auth/token/create', '/identity/entity/id/{id}', '/tvm/creds/{role}']));
    for (const p of legacy) expect((await bao!.api('PUT', p.replace('/{url_lease_id}', '').replace('{prefix}', 'x').slice(1), {})).status).toBe(404);
  });
});

/** The request cell of a step's row: method and path as the scenario writes them. */
function requestCell(step: Step): string {
  const path = typeof step.path === 'string' ? step.path : step.path({ v: new Proxy({}, { get: (_t, k) => `<${String(k)}>` }) } as unknown as Ctx);
  return `${step.method} ${path}`;
}

if (unavailable !== '') {
  describe('differential', () => {
    it.skip(`skipped: ${unavailable}`, () => undefined);
  });
}
