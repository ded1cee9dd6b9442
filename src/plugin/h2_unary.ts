// A gRPC unary client on node:http2, for the calls on every request's path: the
// Storage service the host serves over the broker (a creds read writes its
// lease record through it). grpc-js's client runs each call through a
// resolving, retrying and load-balancing call stack, call credentials and
// interceptors, none of which a single brokered connection to the host uses:
// that stack was a quarter of the plugin's CPU per creds read. Everything else
// (the dial and its checks, SystemView, the plugin's own server) stays on grpc-js.
//
// What it does of gRPC over HTTP/2 (unary only): POST /<service>/<method>
// with content-type application/grpc, te: trailers and grpc-timeout; one
// length-prefixed, uncompressed message each way; the status from the trailers
// (or from the headers of a trailers-only answer), grpc-message percent-decoded.
// The connection is mutual TLS trusting only the host's certificate, as the
// grpc-js channel's; it is made on first use and again after it closes or the
// host sends GOAWAY.

import * as http2 from 'node:http2';
import * as tls from 'node:tls';
import type { BrokerTls } from './broker.ts';
import type { ConnInfo } from './wire.ts';

const { NGHTTP2_CANCEL } = http2.constants;

/** A gRPC status code and message, as the server sent them (or as the call ended). */
export class UnaryCallError extends Error {
  readonly code: number;
  /** The call failed before any answer came: on a connection that was going away, the server never saw it. */
  readonly unanswered: boolean;
  constructor(code: number, message: string, unanswered = false) {
    super(message);
    this.name = 'UnaryCallError';
    this.code = code;
    this.unanswered = unanswered;
  }
}

const DEADLINE_EXCEEDED = 4;
const INTERNAL = 13;
const UNAVAILABLE = 14;
const RESOURCE_EXHAUSTED = 8;
/** The largest answer taken (a storage value is far smaller; the host is authenticated, but memory is not its to spend). */
export const MAX_ANSWER_BYTES = 64 * 1024 * 1024;

function decodeGrpcMessage(raw: unknown): string {
  const text = Array.isArray(raw) ? String(raw[0] ?? '') : String(raw ?? '');
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

function frame(message: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(5 + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  out.set(message, 5);
  return out;
}

/** The one message of a unary answer's body. */
function unframe(body: Buffer): Buffer {
  if (body.length < 5) throw new UnaryCallError(INTERNAL, 'the answer carries no message');
  if (body[0] !== 0) throw new UnaryCallError(INTERNAL, 'the answer is compressed, which was not asked for');
  const len = body.readUInt32BE(1);
  if (body.length < 5 + len) throw new UnaryCallError(INTERNAL, 'the answer is shorter than its message');
  // A unary answer is one message: anything after it is a protocol error, as grpc-go and grpc-js treat it.
  if (body.length > 5 + len) throw new UnaryCallError(INTERNAL, 'the answer carries more than one message');
  return body.subarray(5, 5 + len);
}

export class Http2UnaryClient {
  private session: http2.ClientHttp2Session | null = null;
  private readonly info: ConnInfo;
  private readonly tls: BrokerTls;

  constructor(info: ConnInfo, tlsConfig: BrokerTls) {
    if (info.network !== 'unix' && info.network !== 'tcp') throw new Error(`unknown broker network ${JSON.stringify(info.network)}`);
    this.info = info;
    this.tls = tlsConfig;
  }

  private connection(): http2.ClientHttp2Session {
    const open = this.session;
    if (open && !open.closed && !open.destroyed) return open;
    const { info, tls: keys } = this;
    const where = (): tls.ConnectionOptions => {
      if (info.network === 'unix') return { path: info.address };
      const at = info.address.lastIndexOf(':');
      return { host: info.address.slice(0, at).replace(/^\[(.*)\]$/, '$1'), port: Number(info.address.slice(at + 1)) };
    };
    const session = http2.connect('https://localhost', {
      createConnection: () =>
        tls.connect({ ...where(), ca: keys.hostCertPem, cert: keys.certPem, key: keys.keyPem, servername: 'localhost', ALPNProtocols: ['h2'] }),
    });
    const forget = (): void => {
      if (this.session === session) this.session = null;
    };
    // A failed connection fails its streams, which report it; the session's own event is not an exception.
    session.on('error', forget);
    session.on('close', forget);
    session.on('goaway', forget);
    this.session = session;
    return session;
  }

  /**
   * Calls `path` (`/<service>/<method>`) with an encoded request; resolves with the decoded answer.
   * A call that failed unanswered on a connection the host had closed is made once more on a new
   * connection (as grpc-js retries a call that never left); the Storage calls are idempotent besides.
   */
  async call<Res>(path: string, request: Uint8Array, decode: (message: Buffer) => Res, timeoutMs: number): Promise<Res> {
    const session = this.session;
    try {
      return await this.attempt(path, request, decode, timeoutMs);
    } catch (err) {
      const stale = session !== null && (session.closed || session.destroyed || this.session !== session);
      if (!(err instanceof UnaryCallError && err.unanswered && stale)) throw err;
      return this.attempt(path, request, decode, timeoutMs);
    }
  }

  private attempt<Res>(path: string, request: Uint8Array, decode: (message: Buffer) => Res, timeoutMs: number): Promise<Res> {
    return new Promise<Res>((resolve, reject) => {
      let settled = false;
      const settle = (err: Error | null, value?: Res): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err) reject(err);
        else resolve(value as Res);
      };
      let stream: http2.ClientHttp2Stream;
      try {
        stream = this.connection().request({
          ':method': 'POST',
          ':path': path,
          'content-type': 'application/grpc',
          te: 'trailers',
          'grpc-timeout': `${Math.max(1, Math.ceil(timeoutMs))}m`,
        });
      } catch (err) {
        this.session = null;
        settle(new UnaryCallError(UNAVAILABLE, (err as Error).message, true));
        return;
      }
      const timer = setTimeout(() => {
        stream.close(NGHTTP2_CANCEL);
        settle(new UnaryCallError(DEADLINE_EXCEEDED, 'deadline exceeded'));
      }, timeoutMs);
      const chunks: Buffer[] = [];
      let httpStatus = 0;
      let status: number | null = null;
      let message = '';
      const statusFrom = (headers: http2.IncomingHttpHeaders): void => {
        if (headers['grpc-status'] === undefined) return;
        status = Number(headers['grpc-status']);
        message = decodeGrpcMessage(headers['grpc-message']);
      };
      stream.on('response', (headers) => {
        httpStatus = Number(headers[':status']);
        statusFrom(headers);
      });
      stream.on('trailers', statusFrom);
      let received = 0;
      stream.on('data', (chunk: Buffer) => {
        received += chunk.length;
        if (received > MAX_ANSWER_BYTES) {
          stream.close(NGHTTP2_CANCEL);
          settle(new UnaryCallError(RESOURCE_EXHAUSTED, `the answer is larger than ${MAX_ANSWER_BYTES} bytes`));
          return;
        }
        chunks.push(chunk);
      });
      stream.on('error', (err) => settle(new UnaryCallError(UNAVAILABLE, err.message, httpStatus === 0)));
      stream.on('close', () => {
        if (status === null) {
          const why = httpStatus && httpStatus !== 200 ? `HTTP status ${httpStatus}` : 'the call ended without a status';
          return settle(new UnaryCallError(UNAVAILABLE, why, httpStatus === 0));
        }
        if (status !== 0) return settle(new UnaryCallError(status, message || `status ${status}`));
        try {
          settle(null, decode(unframe(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks))));
        } catch (err) {
          settle(err instanceof UnaryCallError ? err : new UnaryCallError(INTERNAL, `cannot read the answer: ${(err as Error).message}`));
        }
      });
      stream.end(frame(request));
    });
  }

  close(): void {
    this.session?.close();
    this.session = null;
  }
}
