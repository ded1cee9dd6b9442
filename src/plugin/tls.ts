// AutoMTLS, the plugin side: a fresh self-signed EC certificate per process
// (SAN DNS:localhost, CA, client and server auth, like go-plugin's own). The
// host's certificate arrives as PEM in PLUGIN_CLIENT_CERT; the plugin trusts
// exactly that one for client certificates on its server and for the host's
// broker server when it dials back.
//
// The certificate is one fixed template (only the serial, the validity, the
// key and the signature vary), so it is written here in DER with node:crypto
// signing it: @peculiar/x509 built the same certificate, but loading it (its
// ASN.1 schemas, tsyringe, reflect-metadata) was a third of the plugin's time
// from start to handshake. test/plugin/tls.test.ts reads the result back with
// node's X509Certificate; the Go conformance host (test/plugin/host.test.ts)
// checks it with Go's parser, as the server does.

import { createPublicKey, randomBytes, sign, type KeyObject } from 'node:crypto';
import { newPrivateKey } from '../engine/jwk.ts';

export interface PluginCertificate {
  /** PEM of the certificate. */
  certPem: string;
  /** PEM (PKCS#8) of the private key. */
  keyPem: string;
  /** DER of the certificate, for the handshake line. */
  der: Buffer;
}

// --- DER -------------------------------------------------------------------

function length(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), length(body.length), body]);
}

const sequence = (...items: Buffer[]) => tlv(0x30, ...items);
const set = (...items: Buffer[]) => tlv(0x31, ...items);
const octetString = (value: Buffer) => tlv(0x04, value);
const utf8String = (value: string) => tlv(0x0c, Buffer.from(value, 'utf8'));
const TRUE = Buffer.from([0x01, 0x01, 0xff]);

/** A BIT STRING of whole bytes (no unused bits) or with `unused` trailing bits unused. */
const bitString = (value: Buffer, unused = 0) => tlv(0x03, Buffer.from([unused]), value);

function oid(dotted: string): Buffer {
  const arcs = dotted.split('.').map(Number);
  const out: number[] = [arcs[0] * 40 + arcs[1]];
  for (const arc of arcs.slice(2)) {
    const chunk: number[] = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift(0x80 | (v & 0x7f));
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}

/** UTCTime through 2049, GeneralizedTime from 2050 (RFC 5280 4.1.2.5), whole seconds. */
function time(date: Date): Buffer {
  const iso = date.toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
  const digits = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
  const year = date.getUTCFullYear();
  return year < 2050 ? tlv(0x17, Buffer.from(digits.slice(2), 'ascii')) : tlv(0x18, Buffer.from(digits, 'ascii'));
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return sequence(oid(id), ...(critical ? [TRUE] : []), octetString(value));
}

// --- the certificate -------------------------------------------------------

const ECDSA_WITH_SHA256 = sequence(oid('1.2.840.10045.4.3.2'));
const NAME = sequence(set(sequence(oid('2.5.4.3'), utf8String('localhost'))), set(sequence(oid('2.5.4.10'), utf8String('tvm'))));
// keyUsage: digitalSignature (bit 0), keyEncipherment (2), keyAgreement (4), keyCertSign (5): 1010 1100, two unused.
const KEY_USAGE = bitString(Buffer.from([0xac]), 2);
const EXTENSIONS = tlv(
  0xa3,
  sequence(
    extension('2.5.29.19', true, sequence(TRUE)), // basicConstraints: CA
    extension('2.5.29.15', true, KEY_USAGE),
    extension('2.5.29.37', false, sequence(oid('1.3.6.1.5.5.7.3.1'), oid('1.3.6.1.5.5.7.3.2'))), // serverAuth, clientAuth
    extension('2.5.29.17', false, sequence(tlv(0x82, Buffer.from('localhost', 'ascii')))), // SAN dNSName
  ),
);

function pem(label: string, der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

export function certificateFor(keys: { publicKey: KeyObject; privateKey: KeyObject }, now: Date = new Date()): Buffer {
  // A positive 128-bit serial whose first byte is never 0 (DER integers are minimal).
  const serial = randomBytes(16);
  serial[0] = (serial[0] & 0x3f) | 0x40;
  const tbs = sequence(
    tlv(0xa0, tlv(0x02, Buffer.from([2]))), // version v3
    tlv(0x02, serial),
    ECDSA_WITH_SHA256,
    NAME,
    sequence(time(new Date(now.getTime() - 30_000)), time(new Date(now.getTime() + 10 * 365 * 24 * 3600_000))),
    NAME,
    keys.publicKey.export({ type: 'spki', format: 'der' }),
    EXTENSIONS,
  );
  const signature = sign('sha256', tbs, keys.privateKey); // ECDSA-Sig-Value, DER
  return sequence(tbs, ECDSA_WITH_SHA256, bitString(signature));
}

export async function generateCertificate(now: Date = new Date()): Promise<PluginCertificate> {
  const privateKey = newPrivateKey('ec', { namedCurve: 'P-256' });
  const keys = { privateKey, publicKey: createPublicKey(privateKey) };
  const der = certificateFor(keys, now);
  return {
    certPem: pem('CERTIFICATE', der),
    keyPem: keys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    der,
  };
}

/** The handshake's certificate field: DER, base64 standard alphabet, no padding. */
export function handshakeCertificate(der: Buffer): string {
  return der.toString('base64').replace(/=+$/, '');
}
