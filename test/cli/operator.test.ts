// tvm operator seal-migrate: a database written by a tvm without encryption at
// rest is sealed once, offline, and then opens under the config's seal.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startServer } from '../../src/server/index.ts';
import { openSqliteStorage } from '../../src/server/storage/index.ts';
import { sealStanza } from '../server/seal-helpers.ts';
import { expectOneErrorLine, run } from './helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'tvm-operator-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('tvm operator seal-migrate', () => {
  it('seals a database written in clear, which the server then opens (and refused before)', async () => {
    const db = join(dir, 'data', 'tvm.db');
    const old = openSqliteStorage(db);
    const secret = 'a-private-key-value-in-clear-0123456789';
    await old.put('logical/x/keys', new TextEncoder().encode(JSON.stringify({ d: secret })));
    await old.put('sys/token/id/abc', new TextEncoder().encode('{"policies":["root"]}'));
    await old.close();
    const config = join(dir, 'tvm.hcl');
    writeFileSync(config, `storage "sqlite" {\n  path = "${db}"\n}\nlistener "tcp" {\n  address = "127.0.0.1:0"\n  tls_disable = true\n}\n${sealStanza(dir)}`);

    await expect(startServer({ dev: false, configPath: config, quiet: true })).rejects.toThrow(/written without a seal/);
    const r = await run(['operator', 'seal-migrate', '-config', config]);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(r.stdout).toBe(`sealed 2 values of ${db} under key id "test-1"\n`);
    expect(readFileSync(db).includes(secret)).toBe(false);
    const server = await startServer({ dev: false, configPath: config, quiet: true });
    try {
      const status = await fetch(`${server.address}/v1/sys/seal-status`);
      expect(((await status.json()) as { type: string }).type).toBe('static');
    } finally {
      await server.close();
    }
  });

  it('needs -config, and names a config it cannot read', async () => {
    const none = await run(['operator', 'seal-migrate']);
    expect(none.code).toBe(2);
    expect(expectOneErrorLine(none.stderr)).toBe('tvm: operator seal-migrate needs -config <file>');
    const missing = await run(['operator', 'seal-migrate', '-config', join(dir, 'nope.hcl')]);
    expect(missing.code).not.toBe(0);
    expect(expectOneErrorLine(missing.stderr)).toContain('cannot read config file');
  });
});
