// tvm keys check-issuer: the mount's published issuer against each cloud's
// federation rules, in-process against the dev server.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer } from '../../src/server/index.ts';
import { expectOneErrorLine, run } from './helpers.ts';

let server: Awaited<ReturnType<typeof startServer>>;
let env: Record<string, string>;

beforeAll(async () => {
  server = await startServer({ dev: true, listenAddress: '127.0.0.1:0', quiet: true });
  env = { VAULT_ADDR: server.address, VAULT_TOKEN: server.rootToken };
});
afterAll(() => server?.close());

describe('tvm keys check-issuer', () => {
  it('fails on the dev server: its issuer is http', async () => {
    const r = await run(['keys', 'check-issuer', '--cloud', 'aws'], env);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe(
      `issuer ${server.address}/v1/tvm (ES256)\n` +
        `aws: issuer "${server.address}/v1/tvm" is not https: clouds fetch discovery and keys over https only (a loopback dev server: fine for tests, never reachable by a cloud)\n` +
        `aws: jwks_uri "${server.address}/v1/tvm/.well-known/jwks.json" is not https: clouds fetch discovery and keys over https only (a loopback dev server: fine for tests, never reachable by a cloud)\n`,
    );
    expect(expectOneErrorLine(r.stderr)).toBe('tvm: the issuer does not meet the federation rules of aws');
  });

  it('passes for an https issuer signing RS256, and names the cloud an algorithm does not suit', async () => {
    const set = await fetch(`${server.address}/v1/tvm/config`, {
      method: 'POST',
      headers: { 'X-Vault-Token': server.rootToken as string },
      body: JSON.stringify({ issuer: 'https://vault.example.com/v1/tvm', signing_algorithm: 'RS256' }),
    });
    expect(set.status).toBe(200);
    const good = await run(['keys', 'check-issuer'], env);
    expect(good).toMatchObject({ code: 0, stderr: '', stdout: 'issuer https://vault.example.com/v1/tvm (RS256)\naws: ok\ngcp: ok\nazure: ok\n' });

    await fetch(`${server.address}/v1/tvm/config`, {
      method: 'POST',
      headers: { 'X-Vault-Token': server.rootToken as string },
      body: JSON.stringify({ signing_algorithm: 'ES256' }),
    });
    const json = await run(['keys', 'check-issuer', '--format', 'json'], env);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toEqual({
      issuer: 'https://vault.example.com/v1/tvm',
      signing_algorithm: 'ES256',
      clouds: { aws: [], gcp: [], azure: ['tokens are signed with ES256; azure accepts RS256'] },
    });
  });

  it('refuses an unknown cloud as a usage error', async () => {
    const r = await run(['keys', 'check-issuer', '--cloud', 'aws,oracle'], env);
    expect(r.code).toBe(2);
    expect(expectOneErrorLine(r.stderr)).toBe('tvm: --cloud: "oracle" is not one of aws, gcp, azure, kubernetes');
  });
});
