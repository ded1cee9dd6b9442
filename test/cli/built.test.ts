// The compiled CLI (dist/cli/, built by `npm install`'s prepare step) is what
// bin/tvm.js runs. These build it afresh into a folder of their own beside it
// (dist/cli is not replaced under other tests' feet) and run it as a user's
// shell would, as whole processes, against a dev server the compiled CLI
// started itself: a bundle that lost a file, a chunk or a path relative to
// import.meta.url fails here rather than on a user's machine.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '../..');
const outdir = join(root, 'dist', `cli-test-${process.pid}`);
// What bin/tvm.js does with a fresh build.
const bin = join(outdir, 'tvm.mjs');
const execFileP = promisify(execFile);

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

async function tvm(args: string[], env: Record<string, string> = {}): Promise<Ran> {
  try {
    const { stdout, stderr } = await execFileP(process.execPath, [bin, ...args], {
      cwd: root,
      env: { PATH: process.env.PATH ?? '', HOME: '/nonexistent', ...env },
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as { port: number }).port;
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

let server: ChildProcess | undefined;
let addr = '';

beforeAll(async () => {
  // The build a clean `npm install` makes; made again so the test sees the sources as they are now.
  await execFileP(process.execPath, [join(root, 'scripts/build-cli.mjs'), '--outdir', outdir], { cwd: root });
  writeFileSync(bin, "import { main } from './main.js';\nprocess.exitCode = await main(process.argv);\n");
  const port = await freePort();
  server = spawn(process.execPath, [bin, 'server', '-dev', '-dev-listen-address', `127.0.0.1:${port}`, '-dev-root-token-id', 'built-root'], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  addr = await new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: server!.stdout! });
    lines.on('line', (line) => {
      const m = /^tvm dev server listening on (\S+)$/.exec(line);
      if (m) resolve(m[1]);
    });
    server!.once('exit', (code) => reject(new Error(`the compiled dev server exited (${code}) before listening`)));
  });
}, 60_000);

afterAll(async () => {
  if (server && server.exitCode === null) {
    const exited = new Promise((resolve) => server!.once('exit', resolve));
    server.kill('SIGTERM');
    await exited;
  }
  rmSync(outdir, { recursive: true, force: true });
});

describe('the compiled CLI', () => {
  it('answers --version and --help', async () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
    const version = await tvm(['--version']);
    expect(version).toEqual({ code: 0, stdout: `${pkg.version}\n`, stderr: '' });
    const help = await tvm(['--help']);
    expect(help.code).toBe(0);
    for (const command of ['server', 'role', 'creds', 'lease', 'keys', 'token', 'plugin', 'broker', 'audit', 'unwrap']) {
      expect(help.stdout).toMatch(new RegExp(`^  ${command}\\b`, 'm'));
    }
  });

  it('started a dev server (the server chunk loads on demand) that issues creds to the compiled client', async () => {
    expect(addr).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const creds = await tvm(['creds', 'demo', '--format', 'json'], { VAULT_ADDR: addr, VAULT_TOKEN: 'built-root' });
    expect(creds.stderr).toBe('');
    expect(creds.code).toBe(0);
    const out = JSON.parse(creds.stdout) as { token: string; lease_id: string };
    expect(out.token.split('.')).toHaveLength(3);
    expect(out.lease_id).toMatch(/^tvm\/creds\/demo\//);
    // The lease is real: the compiled lease command finds it, then revokes it.
    const lookup = await tvm(['lease', 'lookup', out.lease_id, '--format', 'json'], { VAULT_ADDR: addr, VAULT_TOKEN: 'built-root' });
    expect(lookup.code).toBe(0);
    expect(JSON.parse(lookup.stdout)).toMatchObject({ id: out.lease_id });
    const revoke = await tvm(['lease', 'revoke', out.lease_id], { VAULT_ADDR: addr, VAULT_TOKEN: 'built-root' });
    expect(revoke.code).toBe(0);
    // jose and the enforcement point load with `token verify`: the token verifies until its lease is revoked.
    const verify = await tvm(['token', 'verify', out.token], { VAULT_ADDR: addr, VAULT_TOKEN: 'built-root' });
    expect(verify.code).not.toBe(0);
    expect(verify.stderr).toMatch(/revoked/);
  });

  it('says in words when the server is not there, with the exit code of the source CLI', async () => {
    const port = await freePort();
    const r = await tvm(['creds', 'demo'], { VAULT_ADDR: `http://127.0.0.1:${port}`, VAULT_TOKEN: 't' });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`tvm: cannot reach Vault at http://127.0.0.1:${port}: connection refused\n`);
  });
});
