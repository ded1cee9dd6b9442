// The issuance benchmark's peer: panva/oidc-provider issuing what tvm issues,
// an ES256-signed JWT access token (RFC 9068: typ at+jwt, iss, sub and
// client_id, aud from the resource indicator, scope, iat, exp, jti) to a
// confidential client over the client_credentials grant, with claims of the
// same size (a status list reference, as tvm's tokens carry). Its in-memory
// adapter keeps a record of each token, as tvm's dev server keeps a lease.
//
//   node --import tsx scripts/bench-peer-oidc.ts 127.0.0.1:<port>
// prints one JSON line {address, request} (request: the raw HTTP/1.1 request
// that obtains one token, for the load generator); stops on SIGTERM.
// startPeer() is the same in-process (bench-issue-inproc.ts).

import { randomInt } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { newPrivateKey } from '../src/engine/jwk.ts';
import Provider from 'oidc-provider';

export const PEER_CLIENT = { id: 'bench-client', secret: 'bench-client-secret-0123456789abcdef' };
/** The resource the token is for (its aud) and the scope asked, as tvm's bench role grants. */
export const PEER_RESOURCE = 'http://127.0.0.1:8200/v1/tvm/';
export const PEER_SCOPE = 'read:db://orders/* write:db://orders/outbox';

export interface RunningPeer {
  address: string;
  /** The token request's form body and Authorization header. */
  body: string;
  authorization: string;
  /** The raw HTTP/1.1 request that obtains one token, for the load generator. */
  request: string;
  close(): Promise<void>;
}

/** Starts the peer on `host:port` (port 0: any). */
export async function startPeer(host: string, port: number): Promise<RunningPeer> {
  const privateKey = newPrivateKey('ec', { namedCurve: 'P-256' });
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'bench-es256', alg: 'ES256', use: 'sig' };
  const server = createServer();
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve) => server.listen(port, host, resolve));
  const address = `http://${host}:${(server.address() as AddressInfo).port}`;

  const provider = new Provider(address, {
    jwks: { keys: [jwk as never] },
    clients: [
      {
        client_id: PEER_CLIENT.id,
        client_secret: PEER_CLIENT.secret,
        grant_types: ['client_credentials'],
        redirect_uris: [],
        response_types: [],
        token_endpoint_auth_method: 'client_secret_basic',
        scope: PEER_SCOPE,
      },
    ],
    scopes: PEER_SCOPE.split(' '),
    clientDefaults: { id_token_signed_response_alg: 'ES256' },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: false },
      revocation: { enabled: false },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => PEER_RESOURCE,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({
          scope: PEER_SCOPE,
          audience: PEER_RESOURCE,
          accessTokenTTL: 15 * 60,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'ES256' } },
        }),
      },
    },
    // tvm's tokens name their place in a status list, and their role: the same weight here.
    extraTokenClaims: () => ({
      role: 'bench',
      status: { status_list: { idx: randomInt(1 << 20), uri: `${address}/v1/tvm/status/0` } },
    }),
  });
  // Quiet: no per-request logging.
  provider.on('server_error', (_ctx: unknown, err: Error) => process.stderr.write(`peer server_error: ${err.message}\n`));
  server.on('request', provider.callback());

  const body = `grant_type=client_credentials&scope=${encodeURIComponent(PEER_SCOPE)}&resource=${encodeURIComponent(PEER_RESOURCE)}`;
  const authorization = `Basic ${Buffer.from(`${PEER_CLIENT.id}:${PEER_CLIENT.secret}`).toString('base64')}`;
  const request =
    `POST /token HTTP/1.1\r\nHost: ${address.slice('http://'.length)}\r\nAuthorization: ${authorization}\r\n` +
    `Content-Type: application/x-www-form-urlencoded\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
  return {
    address,
    body,
    authorization,
    request,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** For bench-issue-inproc.ts: the peer on a loopback port it never uses. */
export function spawnPeerInProcess(): Promise<RunningPeer> {
  return startPeer('127.0.0.1', 0);
}

if (process.argv[1]?.endsWith('bench-peer-oidc.ts')) {
  const [host, portText] = (process.argv[2] ?? '127.0.0.1:0').split(':');
  const peer = await startPeer(host, Number(portText));
  process.stdout.write(`${JSON.stringify({ address: peer.address, request: peer.request })}\n`);
  process.on('SIGTERM', () => {
    void peer.close().then(() => process.exit(0));
  });
}
