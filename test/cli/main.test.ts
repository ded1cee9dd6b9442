// The entry point without a server: help, usage errors, an unreachable server,
// and `server`'s lifecycle with a stand-in startServer.

import { describe, expect, it } from 'vitest';
import type { ServerOptions } from '../../src/server/index.ts';
import { closedPort, expectOneErrorLine, run } from './helpers.ts';

describe('help', () => {
  it('every command has --help, printed to stdout, exit 0', async () => {
    const commands = [
      [],
      ['server'],
      ['role'],
      ['role', 'write'],
      ['role', 'read'],
      ['role', 'list'],
      ['role', 'delete'],
      ['creds'],
      ['lease'],
      ['lease', 'lookup'],
      ['lease', 'renew'],
      ['lease', 'revoke'],
      ['lease', 'list'],
      ['keys'],
      ['keys', 'rotate'],
      ['token'],
      ['token', 'verify'],
      ['token', 'introspect'],
    ];
    for (const cmd of commands) {
      const r = await run([...cmd, '--help']);
      expect(r.code, cmd.join(' ')).toBe(0);
      expect(r.stdout).toMatch(/^Usage: tvm/);
      expect(r.stderr).toBe('');
    }
  });

  it('Vault-style -help works too', async () => {
    const r = await run(['server', '-help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('-dev');
  });

  it('an incomplete command prints its help and exits 2', async () => {
    const r = await run(['role']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('Usage: tvm role');
  });
});

describe('usage errors: exit 2, one line', () => {
  it.each([
    [['rol'], /^tvm: unknown command 'rol' \(Did you mean role\?\)/],
    [['creds'], /^tvm: missing required argument 'role'/],
    [['creds', 'demo', '--format', 'xml'], /^tvm: option '--format <format>' argument 'xml' is invalid/],
    [['creds', 'demo', '--bogus'], /^tvm: unknown option '--bogus'/],
    [['role', 'read', 'a', 'b'], /^tvm: too many arguments/],
    [['role', 'write', 'app'], /^tvm: nothing to write/],
    [['role', 'write', 'app', 'ttl'], /^tvm: argument "ttl" must look like key=value/],
    [['role', 'write', 'app', '--read', 'x', '--max-active-leases', 'lots'], /^tvm: --max-active-leases "lots"/],
    [['server'], /^tvm: server needs -dev/],
    [['token', 'verify'], /^tvm: no token/],
  ])('tvm %j', async (args, message) => {
    const r = await run(args, { VAULT_ADDR: 'http://127.0.0.1:1' });
    expect(r.code).toBe(2);
    expect(expectOneErrorLine(r.stderr)).toMatch(message);
    expect(r.stdout).toBe('');
  });

  it('a bad VAULT_ADDR is a usage error', async () => {
    const r = await run(['role', 'list'], { VAULT_ADDR: 'localhost:8200' });
    expect(r.code).toBe(2);
    expect(expectOneErrorLine(r.stderr)).toBe('tvm: VAULT_ADDR "localhost:8200" must start with http:// or https://');
  });
});

describe('unreachable server', () => {
  it('exit 1 with one "cannot reach" line for every command that talks to Vault', async () => {
    const addr = `http://127.0.0.1:${await closedPort()}`;
    const jwt = 'eyJhbGciOiJFUzI1NiIsInR5cCI6ImF0K2p3dCJ9.eyJzdWIiOiJ4In0.c2ln';
    for (const args of [
      ['role', 'list'],
      ['role', 'write', 'app', '--read', 'db://a/*'],
      ['creds', 'demo'],
      ['lease', 'list'],
      ['keys', 'rotate'],
      ['token', 'verify', jwt],
      ['token', 'introspect', jwt],
    ]) {
      const r = await run(args, { VAULT_ADDR: addr, VAULT_TOKEN: 'root' });
      expect(r.code, args.join(' ')).toBe(1);
      expect(expectOneErrorLine(r.stderr)).toBe(`tvm: cannot reach Vault at ${addr}: connection refused`);
    }
  });
});

describe('server lifecycle', () => {
  function fakeServer() {
    const calls: { started: ServerOptions[]; closed: number } = { started: [], closed: 0 };
    let signal: ((s: string) => void) | null = null;
    let unsubscribed = false;
    let finishClose: () => void = () => undefined;
    const exits: number[] = [];
    const extra = {
      startServer: async (options: ServerOptions) => {
        const { output, ...rest } = options;
        calls.started.push(rest);
        if (!options.quiet) output?.(`banner for ${rest.rootTokenId ?? 'generated'}\n`);
        return {
          address: 'http://127.0.0.1:8299',
          rootToken: 'root-xyz',
          close: () =>
            new Promise<void>((resolve) => {
              calls.closed += 1;
              finishClose = resolve;
            }),
        };
      },
      onSignal: (handler: (s: string) => void) => {
        signal = handler;
        return () => {
          unsubscribed = true;
        };
      },
      exit: (code: number) => {
        exits.push(code);
      },
    };
    return {
      calls,
      extra,
      exits,
      send: (s: string) => signal?.(s),
      finishClose: () => finishClose(),
      unsubscribed: () => unsubscribed,
      listening: () => signal !== null,
    };
  }

  async function until(check: () => boolean): Promise<void> {
    for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 5));
  }

  it('passes the flags, lets the server print its banner on stdout, closes once on SIGINT and exits 0', async () => {
    const fake = fakeServer();
    const running = run(['server', '-dev', '-dev-root-token-id=root-xyz', '-dev-listen-address', '127.0.0.1:8299'], {}, fake.extra);
    await until(fake.listening);
    fake.send('SIGINT');
    fake.finishClose();
    const r = await running;
    expect(r.code).toBe(0);
    expect(fake.calls.started).toEqual([{ dev: true, quiet: false, rootTokenId: 'root-xyz', listenAddress: '127.0.0.1:8299' }]);
    expect(fake.calls.closed).toBe(1);
    expect(fake.unsubscribed()).toBe(true);
    expect(r.stdout).toBe(
      'banner for root-xyz\nSIGINT received, shutting down (send it again to force)\ntvm server at http://127.0.0.1:8299 stopped\n',
    );
    expect(r.stderr).toBe('');
  });

  it('a second signal while closing forces the exit', async () => {
    const fake = fakeServer();
    const running = run(['server', '--dev', '--quiet'], {}, fake.extra);
    await until(fake.listening);
    fake.send('SIGTERM');
    fake.send('SIGTERM');
    expect(fake.exits).toEqual([1]);
    expect(fake.calls.closed).toBe(1);
    fake.finishClose();
    const r = await running;
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('tvm: SIGTERM again, exiting without waiting for shutdown\n');
  });

  it('a failing start is one line and exit 1', async () => {
    const r = await run(['server', '-dev', '--quiet'], {}, {
      startServer: async () => {
        throw new Error('listen EADDRINUSE: address already in use 127.0.0.1:8200');
      },
    });
    expect(r.code).toBe(1);
    expect(expectOneErrorLine(r.stderr)).toBe('tvm: listen EADDRINUSE: address already in use 127.0.0.1:8200');
  });
});
