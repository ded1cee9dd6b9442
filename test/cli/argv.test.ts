import { describe, expect, it } from 'vitest';
import { normaliseArgv, parseKeyValuePairs, splitPair, parseCount } from '../../src/cli/argv.ts';
import { roleWriteBody } from '../../src/cli/commands/role.ts';
import { serverOptions } from '../../src/cli/commands/server.ts';
import { CliUsageError } from '../../src/cli/errors.ts';

const FLAGS = new Set(['dev', 'dev-root-token-id', 'dev-listen-address', 'config', 'help', 'ttl']);

describe('normaliseArgv', () => {
  it('rewrites Vault-style single-dash long flags it knows', () => {
    expect(normaliseArgv(['server', '-dev', '-dev-root-token-id', 'root', '-dev-listen-address=127.0.0.1:0'], FLAGS)).toEqual([
      'server',
      '--dev',
      '--dev-root-token-id',
      'root',
      '--dev-listen-address=127.0.0.1:0',
    ]);
    expect(normaliseArgv(['server', '-config', 'x.hcl'], FLAGS)).toEqual(['server', '--config', 'x.hcl']);
  });

  it('leaves double-dash flags, short flags, unknown names, values and anything after -- alone', () => {
    expect(normaliseArgv(['--dev', '-h', '-x', '-devx', '-5', 'db://-a', '--', '-dev'], FLAGS)).toEqual([
      '--dev',
      '-h',
      '-x',
      '-devx',
      '-5',
      'db://-a',
      '--',
      '-dev',
    ]);
  });
});

describe('key=value pairs', () => {
  it('collects repeated keys and keeps = inside values', () => {
    const pairs = parseKeyValuePairs(['read=db://a/*', 'read=db://b/*', 'extra=a=b']);
    expect(pairs.get('read')).toEqual(['db://a/*', 'db://b/*']);
    expect(pairs.get('extra')).toEqual(['a=b']);
  });

  it('rejects a pair without a key', () => {
    expect(() => splitPair('=x', 'argument')).toThrow(CliUsageError);
    expect(() => splitPair('novalue', 'argument')).toThrow('must look like key=value');
  });

  it('parses counts', () => {
    expect(parseCount('3', '--n')).toBe(3);
    expect(() => parseCount('-1', '--n')).toThrow(CliUsageError);
    expect(() => parseCount('two', '--n')).toThrow('--n "two" must be a whole number');
  });
});

describe('roleWriteBody', () => {
  it('maps flags to API fields', () => {
    expect(
      roleWriteBody(
        {
          mount: 'tvm',
          read: ['db://a/*'],
          write: ['db://a/out'],
          ttl: '5m',
          maxTtl: '1h',
          audience: ['api'],
          boundCidr: ['10.0.0.0/8'],
          maxActiveLeases: '4',
          extraClaim: ['team=orders', 'x=a=b'],
          iam: '{"aws":{"role":"r"}}',
        },
        [],
      ),
    ).toEqual({
      read: ['db://a/*'],
      write: ['db://a/out'],
      ttl: '5m',
      max_ttl: '1h',
      audiences: ['api'],
      bound_cidrs: ['10.0.0.0/8'],
      max_active_leases: 4,
      extra_claims: { team: 'orders', x: 'a=b' },
      iam: { aws: { role: 'r' } },
    });
  });

  it('takes vault CLI key=value pairs, merging list fields with flags and passing the rest through', () => {
    expect(
      roleWriteBody({ mount: 'tvm', read: ['db://a/*'] }, ['read=db://b/*,db://c/*', 'ttl=5m', 'audiences=x', 'max_active_leases=2']),
    ).toEqual({ read: ['db://a/*', 'db://b/*', 'db://c/*'], ttl: '5m', audiences: ['x'], max_active_leases: '2' });
  });

  it('refuses an empty write, a scalar given twice and bad option values', () => {
    expect(() => roleWriteBody({ mount: 'tvm' }, [])).toThrow('nothing to write');
    expect(() => roleWriteBody({ mount: 'tvm', ttl: '1m' }, ['ttl=2m'])).toThrow('ttl is given both');
    expect(() => roleWriteBody({ mount: 'tvm' }, ['ttl=1m', 'ttl=2m'])).toThrow('ttl is given 2 times');
    expect(() => roleWriteBody({ mount: 'tvm', extraClaim: ['nokey'] }, [])).toThrow(CliUsageError);
    expect(() => roleWriteBody({ mount: 'tvm', iam: '[1]' }, [])).toThrow('--iam must be a JSON object');
    expect(() => roleWriteBody({ mount: 'tvm', maxActiveLeases: 'many' }, [])).toThrow(CliUsageError);
  });
});

describe('serverOptions', () => {
  it('needs -dev or -config', () => {
    expect(() => serverOptions({}, {})).toThrow('server needs -dev');
    expect(() => serverOptions({ config: 'x.hcl', devRootTokenId: 'r' }, {})).toThrow('need -dev');
  });

  it('takes flags, then VAULT_DEV_* env', () => {
    expect(serverOptions({ dev: true }, { VAULT_DEV_ROOT_TOKEN_ID: 'root', VAULT_DEV_LISTEN_ADDRESS: '127.0.0.1:8300' })).toEqual({
      dev: true,
      quiet: false,
      rootTokenId: 'root',
      listenAddress: '127.0.0.1:8300',
    });
    expect(serverOptions({ dev: true, devListenAddress: '[::1]:0', quiet: true }, { VAULT_DEV_LISTEN_ADDRESS: 'x:1' })).toEqual({
      dev: true,
      quiet: true,
      listenAddress: '[::1]:0',
    });
    expect(serverOptions({ config: 'vault-config/tvm.hcl' }, {})).toEqual({ dev: false, quiet: false, configPath: 'vault-config/tvm.hcl' });
  });

  it('rejects a listen address that is not host:port', () => {
    expect(() => serverOptions({ dev: true, devListenAddress: '8200' }, {})).toThrow('must be host:port');
  });
});
