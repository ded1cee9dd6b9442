// `tvm broker run` logs JSON lines and nothing else: a Node warning raised
// while it runs (the AWS SDK raises one about Node 20 when its first client is
// made) becomes one of those lines instead of Node's multi-line text on stderr.
// Run as a whole process, as a user runs the daemon.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { routeProcessWarnings } from '../../src/cli/commands/broker.ts';
import { startServer } from '../../src/server/index.ts';

const root = join(import.meta.dirname, '../..');
let vault: Awaited<ReturnType<typeof startServer>>;
let dir: string;

beforeAll(async () => {
  vault = await startServer({ dev: true, listenAddress: '127.0.0.1:0', quiet: true });
  dir = mkdtempSync(join(tmpdir(), 'tvm-broker-log-'));
});
afterAll(async () => {
  await vault?.close();
  rmSync(dir, { recursive: true, force: true });
});

it('turns a Node warning into a JSON log line, keeping stderr to the one listening line', async () => {
  const config = join(dir, 'broker.hcl');
  writeFileSync(
    config,
    `vault {\n  address = "${vault.address}"\n  auth "token" { token = "${vault.rootToken}" }\n}\nstore "sqlite" { path = "broker.db" }\nlistener { address = "127.0.0.1:0" }\nlog { destination = "stderr" }\n`,
  );
  // A preloaded module raises the warning, once the broker is up, as the AWS SDK does when its first client is made.
  const preload = join(dir, 'warn.mjs');
  writeFileSync(preload, "process.on('SIGUSR2', () => process.emitWarning('NodeVersionSupportWarning: The AWS SDK for JavaScript (v3)\\nwill require node >=22.'));\n");
  const child = spawn(process.execPath, ['--import', preload, join(root, 'bin/tvm.js'), 'broker', 'run', '--config', config], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', HOME: dir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const deadline = Date.now() + 20_000;
  while (!stderr.includes('tvm broker: listening on ') && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 50));
  child.kill('SIGUSR2');
  while (!/"msg":"node warning"/.test(stderr) && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 50));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  expect(await exited).toBe(0);

  const lines = stderr.trim().split('\n');
  const listening = lines.filter((l) => l.startsWith('tvm broker: listening on '));
  expect(listening).toHaveLength(1);
  const json = lines.filter((l) => !l.startsWith('tvm broker: listening on ')).map((l) => JSON.parse(l) as Record<string, unknown>);
  expect(json.find((l) => l.msg === 'node warning')).toMatchObject({
    level: 40,
    warning: 'Warning',
    detail: 'NodeVersionSupportWarning: The AWS SDK for JavaScript (v3) will require node >=22.',
  });
  expect(json.map((l) => l.msg)).toEqual(expect.arrayContaining(['broker started', 'broker stopped']));
}, 30_000);

it('puts Node\'s own warning printer back afterwards (the in-process CLI must not keep warnings)', () => {
  const before = process.listeners('warning');
  const seen: string[] = [];
  const restore = routeProcessWarnings((w) => seen.push(w.message));
  expect(process.listeners('warning')).toHaveLength(1);
  process.emit('warning', new Error('routed'));
  restore();
  expect(seen).toEqual(['routed']);
  expect(process.listeners('warning')).toEqual(before);
});

it('exits, saying why, when its listener address is taken (nothing keeps working on the closed store)', async () => {
  const taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  const port = (taken.address() as { port: number }).port;
  try {
    const config = join(dir, 'taken.hcl');
    writeFileSync(
      config,
      `vault {\n  address = "${vault.address}"\n  auth "token" { token = "${vault.rootToken}" }\n}\nstore "sqlite" { path = "taken.db" }\nlistener { address = "127.0.0.1:${port}" }\nlog { destination = "stderr" }\n`,
    );
    const child = spawn(process.execPath, [join(root, 'bin/tvm.js'), 'broker', 'run', '--config', config], {
      cwd: root,
      env: { PATH: process.env.PATH ?? '', HOME: dir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const code = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        resolve(-1);
      }, 15_000);
      child.once('exit', (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    expect(code, stderr).toBe(1);
    expect(stderr).toContain(`tvm: listen EADDRINUSE: address already in use 127.0.0.1:${port}`);
    expect(stderr).not.toContain('loop step failed');
  } finally {
    await new Promise((resolve) => taken.close(resolve));
  }
}, 30_000);
