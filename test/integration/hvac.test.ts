// Python's hvac (Debian's python3-hvac) against the dev server, unchanged.
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer } from '../../src/server/index.ts';

const PYTHON = '/usr/bin/python3';
const hasHvac = spawnSync(PYTHON, ['-c', 'import hvac'], { stdio: 'ignore' }).status === 0;
if (!hasHvac) console.warn('skipping the hvac test: /usr/bin/python3 cannot import hvac (apt-get install python3-hvac)');

describe.skipIf(!hasHvac)('hvac', () => {
  let server: Awaited<ReturnType<typeof startServer>>;
  beforeAll(async () => {
    server = await startServer({ dev: true, listenAddress: '127.0.0.1:0', quiet: true });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('reads tvm/creds/demo, renews and revokes its lease', async () => {
    const script = `
import hvac, json, os
c = hvac.Client(url=os.environ["VAULT_ADDR"], token=os.environ["VAULT_TOKEN"])
assert c.is_authenticated()
r = c.read("tvm/creds/demo")
renewed = c.sys.renew_lease(lease_id=r["lease_id"], increment=120)
c.sys.revoke_lease(lease_id=r["lease_id"])
print(json.dumps({"lease_id": r["lease_id"], "type": r["data"]["token_type"], "token": r["data"]["token"], "renewed": renewed["lease_duration"]}))
`;
    // Async: the server runs in this process, so the event loop must stay free.
    const { stdout: out } = await promisify(execFile)(PYTHON, ['-c', script], {
      env: { ...process.env, VAULT_ADDR: server.address, VAULT_TOKEN: server.rootToken },
      encoding: 'utf8',
    });
    const result = JSON.parse(out) as { lease_id: string; type: string; token: string; renewed: number };
    expect(result.lease_id).toMatch(/^tvm\/creds\/demo\//);
    expect(result.type).toBe('readwrite');
    expect(result.token.split('.')).toHaveLength(3);
    expect(result.renewed).toBe(120);
  });
});
