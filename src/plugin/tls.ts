// AutoMTLS, the plugin side: a fresh self-signed EC certificate per process
// (SAN DNS:localhost, CA, client and server auth, like go-plugin's own), made
// with @peculiar/x509 over Node's WebCrypto. The host's certificate arrives as
// PEM in PLUGIN_CLIENT_CERT; the plugin trusts exactly that one for client
// certificates on its server and for the host's broker server when it dials back.

// @peculiar/x509 resolves its algorithm providers through tsyringe, which needs
// the Reflect metadata API installed before it loads.
import 'reflect-metadata';
import { webcrypto, randomBytes } from 'node:crypto';
import * as x509 from '@peculiar/x509';

export interface PluginCertificate {
  /** PEM of the certificate. */
  certPem: string;
  /** PEM (PKCS#8) of the private key. */
  keyPem: string;
  /** DER of the certificate, for the handshake line. */
  der: Buffer;
}

const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

function pem(label: string, der: ArrayBuffer): string {
  const b64 = Buffer.from(der).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

export async function generateCertificate(now: Date = new Date()): Promise<PluginCertificate> {
  x509.cryptoProvider.set(webcrypto as unknown as Crypto);
  const keys = (await webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify'])) as CryptoKeyPair;
  // A positive 128-bit serial.
  const serial = randomBytes(16);
  serial[0] &= 0x7f;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial.toString('hex'),
    name: 'CN=localhost, O=tvm',
    notBefore: new Date(now.getTime() - 30_000),
    notAfter: new Date(now.getTime() + 10 * 365 * 24 * 3600_000),
    signingAlgorithm: ALGORITHM,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment | x509.KeyUsageFlags.keyAgreement | x509.KeyUsageFlags.keyCertSign,
        true,
      ),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: 'localhost' }]),
    ],
  });
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return { certPem: cert.toString('pem') + '\n', keyPem: pem('PRIVATE KEY', pkcs8), der: Buffer.from(cert.rawData) };
}

/** The handshake's certificate field: DER, base64 standard alphabet, no padding. */
export function handshakeCertificate(der: Buffer): string {
  return der.toString('base64').replace(/=+$/, '');
}
