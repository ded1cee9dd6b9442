// The plugin's AutoMTLS certificate (src/plugin/tls.ts, written in DER by
// hand): read back with node's X509Certificate and used for a real mutual TLS
// connection. Go's parser checks it in host.test.ts (the conformance host).

import { createPrivateKey, X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { connect, createServer, type TLSSocket } from 'node:tls';
import { describe, expect, it } from 'vitest';
import { certificateFor, generateCertificate, handshakeCertificate } from '../../src/plugin/tls.ts';
import { keyPair } from '../keys.ts';

describe('the plugin certificate', () => {
  it('is a self-signed P-256 CA for localhost, for server and client auth, valid 30 s back and 10 years on', async () => {
    const now = new Date('2026-03-04T05:06:07.890Z');
    const cert = await generateCertificate(now);
    const x = new X509Certificate(cert.certPem);
    expect(x.raw.equals(cert.der)).toBe(true);
    expect(x.subject).toBe('CN=localhost\nO=tvm');
    expect(x.issuer).toBe(x.subject);
    expect(x.subjectAltName).toBe('DNS:localhost');
    expect(x.ca).toBe(true);
    expect(x.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
    expect(x.publicKey.asymmetricKeyDetails).toEqual({ namedCurve: 'prime256v1' });
    expect(x.verify(x.publicKey)).toBe(true);
    expect(x.checkPrivateKey(createPrivateKey(cert.keyPem))).toBe(true);
    expect(new Date(x.validFrom).toISOString()).toBe('2026-03-04T05:05:37.000Z');
    expect(new Date(x.validTo).toISOString()).toBe('2036-03-01T05:06:07.000Z');
    expect(/^[0-9A-F]{32}$/.test(x.serialNumber)).toBe(true);
    expect(handshakeCertificate(cert.der)).toBe(cert.der.toString('base64').replace(/=+$/, ''));
  });

  it('writes a time from 2050 on as GeneralizedTime (RFC 5280)', () => {
    const keys = keyPair('ES256');
    const x = new X509Certificate(certificateFor(keys, new Date('2045-01-01T00:00:00Z')));
    expect(new Date(x.validTo).toISOString()).toBe('2054-12-30T00:00:00.000Z');
  });

  it('serves and dials mutual TLS where each side trusts only the other certificate', async () => {
    const [server, client] = await Promise.all([generateCertificate(), generateCertificate()]);
    const tls = createServer({ cert: server.certPem, key: server.keyPem, ca: client.certPem, requestCert: true, rejectUnauthorized: true }, (s) =>
      s.end('ok'),
    );
    tls.listen(0, '127.0.0.1');
    await once(tls, 'listening');
    const port = (tls.address() as { port: number }).port;
    try {
      const socket: TLSSocket = connect({ host: '127.0.0.1', port, servername: 'localhost', ca: server.certPem, cert: client.certPem, key: client.keyPem });
      const [data] = (await once(socket, 'data')) as [Buffer];
      expect(data.toString()).toBe('ok');
      expect(socket.authorized).toBe(true);
      socket.destroy();
    } finally {
      tls.close();
    }
  });
});
