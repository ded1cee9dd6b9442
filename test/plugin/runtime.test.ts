// Small pieces of the plugin runtime: the hclog logger, the start-up checks,
// the broker's ConnInfo bookkeeping (either order), the api address.

import { describe, expect, it } from 'vitest';
import { resolveApiAddr } from '../../src/plugin/backend_service.ts';
import { Broker, brokerTarget } from '../../src/plugin/broker.ts';
import { checkEnvironment, handshakeLine, HandshakeError, MAGIC_COOKIE_VALUE } from '../../src/plugin/handshake.ts';
import { createLogger, formatTimestamp } from '../../src/plugin/logger.ts';
import { handshakeCertificate } from '../../src/plugin/tls.ts';

const silent = createLogger({ write: () => undefined });

describe('hclog JSON logger', () => {
  it('writes one JSON object per line with six fractional digits', () => {
    const lines: string[] = [];
    const log = createLogger({ write: (l) => lines.push(l), nowMicros: () => 1_795_435_200_123_456n, level: 'debug' });
    log.info('backend set up', { mount: 'tvm/', '@level': 'forged' });
    log.trace('hidden');
    expect(lines).toHaveLength(1);
    expect(lines[0].endsWith('\n')).toBe(true);
    expect(JSON.parse(lines[0])).toEqual({
      '@level': 'info',
      '@message': 'backend set up',
      '@module': 'tvm',
      '@timestamp': '2026-11-23T12:00:00.123456Z',
      mount: 'tvm/',
    });
    expect(formatTimestamp(5n)).toBe('1970-01-01T00:00:00.000005Z');
  });
});

describe('start-up checks', () => {
  const cert = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
  const code = (env: Record<string, string>) => {
    try {
      checkEnvironment(env);
      return 'ok';
    } catch (err) {
      return (err as HandshakeError).code;
    }
  };

  it('needs the cookie, protocol 5 and the AutoMTLS certificate', () => {
    expect(code({})).toBe('ERR_NOT_A_PLUGIN_HOST');
    expect(code({ VAULT_BACKEND_PLUGIN: 'nope', PLUGIN_PROTOCOL_VERSIONS: '5', PLUGIN_CLIENT_CERT: cert })).toBe('ERR_NOT_A_PLUGIN_HOST');
    expect(code({ VAULT_BACKEND_PLUGIN: MAGIC_COOKIE_VALUE, PLUGIN_PROTOCOL_VERSIONS: '3,4', PLUGIN_CLIENT_CERT: cert })).toBe('ERR_PROTOCOL_VERSION');
    expect(code({ VAULT_BACKEND_PLUGIN: MAGIC_COOKIE_VALUE, PLUGIN_PROTOCOL_VERSIONS: '15', PLUGIN_CLIENT_CERT: cert })).toBe('ERR_PROTOCOL_VERSION');
    expect(code({ VAULT_BACKEND_PLUGIN: MAGIC_COOKIE_VALUE, PLUGIN_PROTOCOL_VERSIONS: '4,5' })).toBe('ERR_NO_AUTOMTLS');
    expect(
      checkEnvironment({ VAULT_BACKEND_PLUGIN: MAGIC_COOKIE_VALUE, PLUGIN_PROTOCOL_VERSIONS: '3, 4, 5', PLUGIN_CLIENT_CERT: cert, PLUGIN_UNIX_SOCKET_DIR: '/run/p' }),
    ).toEqual({ clientCertPem: cert, socketDir: '/run/p' });
  });

  it('formats the handshake line', () => {
    const b64 = handshakeCertificate(Buffer.from([1, 2, 3, 4]));
    expect(b64).toBe('AQIDBA');
    expect(handshakeLine('/tmp/p.sock', b64)).toBe('1|5|unix|/tmp/p.sock|grpc|AQIDBA\n');
  });
});

describe('broker bookkeeping', () => {
  const tls = { hostCertPem: '', certPem: '', keyPem: '' };

  it('finds a ConnInfo that arrived before the call naming it', async () => {
    const b = new Broker(tls, silent);
    b.receive({ service_id: 7, network: 'unix', address: '/tmp/a' });
    await expect(b.connInfo(7, 100)).resolves.toMatchObject({ address: '/tmp/a' });
  });

  it('waits for a ConnInfo that arrives after the call', async () => {
    const b = new Broker(tls, silent);
    const waiting = b.connInfo(3, 1000);
    setTimeout(() => b.receive({ service_id: 3, network: 'tcp', address: '127.0.0.1:1234' }), 20);
    await expect(waiting).resolves.toMatchObject({ address: '127.0.0.1:1234' });
  });

  it('times out clearly when no ConnInfo comes', async () => {
    const b = new Broker(tls, silent);
    await expect(b.connInfo(9, 30)).rejects.toThrow(/timeout waiting for the host's broker connection info for id 9/);
  });

  it('dials unix and tcp addresses', () => {
    expect(brokerTarget({ service_id: 1, network: 'unix', address: '/tmp/x' })).toBe('unix:/tmp/x');
    expect(brokerTarget({ service_id: 1, network: 'tcp', address: '127.0.0.1:5' })).toBe('127.0.0.1:5');
    expect(() => brokerTarget({ service_id: 1, network: 'udp', address: 'x' })).toThrow(/unknown broker network/);
  });
});

describe('the issuer address', () => {
  it('comes from VAULT_API_ADDR, else the local default', () => {
    expect(resolveApiAddr({ VAULT_API_ADDR: 'https://vault.example.com:8200/' })).toBe('https://vault.example.com:8200');
    expect(resolveApiAddr({})).toBe('http://127.0.0.1:8200');
  });
});
