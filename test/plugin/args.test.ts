// The plugin's registered arguments: OpenBao's `plugin register` has -args but
// no -env, so the issuer's base address can come as --api-addr.
import { describe, expect, it } from 'vitest';
import { resolveApiAddr, withArguments } from '../../src/plugin/backend_service.ts';

describe('--api-addr', () => {
  it('sets the issuer base from the arguments, over VAULT_API_ADDR, in both spellings', () => {
    expect(resolveApiAddr(withArguments({}, ['--api-addr=https://bao.example:8200/']))).toBe('https://bao.example:8200');
    expect(resolveApiAddr(withArguments({ VAULT_API_ADDR: 'http://env:1' }, ['--api-addr', 'http://arg:2']))).toBe('http://arg:2');
    expect(resolveApiAddr(withArguments({ VAULT_API_ADDR: 'http://env:1' }, []))).toBe('http://env:1');
    expect(resolveApiAddr(withArguments({}, ['--other', '--api-addr=']))).toBe('http://127.0.0.1:8200');
  });
});
