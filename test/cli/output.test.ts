import { describe, expect, it } from 'vitest';
import type { Creds } from '../../src/client/index.ts';
import type { CliIo } from '../../src/cli/context.ts';
import { envLines, formatTable, printCreds, shellQuote } from '../../src/cli/output.ts';

const creds: Creds = {
  token: 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln',
  token_type: 'readwrite',
  jti: 'j1',
  scope: 'read:db://a/* write:db://a/out',
  read: ['db://a/*'],
  write: ['db://a/out'],
  audiences: ['api'],
  issued_at: '2026-11-23T12:00:00Z',
  expires_at: '2026-11-23T12:15:00Z',
  role: 'demo',
  max_expires_at: '2026-11-23T13:00:00Z',
  lease_id: 'tvm/creds/demo/abc',
  lease_duration: 900,
  renewable: true,
};

function capture(): { io: CliIo; out: () => string } {
  let text = '';
  const io: CliIo = {
    stdout: (t) => {
      text += t;
    },
    stderr: () => undefined,
    env: {},
    onSignal: () => () => undefined,
    exit: () => undefined,
  };
  return { io, out: () => text };
}

describe('shellQuote', () => {
  it('leaves safe values bare and single-quotes the rest', () => {
    expect(shellQuote('tvm/creds/demo/abc')).toBe('tvm/creds/demo/abc');
    expect(shellQuote('a b')).toBe("'a b'");
    expect(shellQuote("it's $HOME `x`")).toBe("'it'\\''s $HOME `x`'");
    expect(shellQuote('')).toBe("''");
  });

  it('round-trips through a POSIX shell', async () => {
    const { execFileSync } = await import('node:child_process');
    const value = `it's "quoted" $HOME \`cmd\` \\ ; & |`;
    const out = execFileSync('sh', ['-c', `${envLines({ V: value })}printf %s "$V"`], { encoding: 'utf8' });
    expect(out).toBe(value);
  });
});

describe('printCreds', () => {
  it('json: the data plus lease fields, pretty', () => {
    const { io, out } = capture();
    printCreds(io, 'json', creds);
    expect(JSON.parse(out())).toEqual(creds);
    expect(out()).toContain('\n  "token_type": "readwrite",\n');
  });

  it('token: only the JWT', () => {
    const { io, out } = capture();
    printCreds(io, 'token', creds);
    expect(out()).toBe(`${creds.token}\n`);
  });

  it('env: three assignment lines', () => {
    const { io, out } = capture();
    printCreds(io, 'env', creds);
    expect(out()).toBe(
      `TVM_TOKEN=${creds.token}\nTVM_LEASE_ID=tvm/creds/demo/abc\nTVM_EXPIRES_AT=2026-11-23T12:15:00Z\n`,
    );
  });
});

describe('formatTable', () => {
  it('prints a Key/Value table like the vault CLI', () => {
    expect(formatTable({ name: 'demo', read: ['a', 'b'], extra_claims: {}, iam: null, ttl: 0 })).toBe(
      [
        'Key             Value',
        '---             -----',
        'name            demo',
        'read            [a b]',
        'extra_claims    map[]',
        'iam             n/a',
        'ttl             0',
        '',
      ].join('\n'),
    );
  });
});
