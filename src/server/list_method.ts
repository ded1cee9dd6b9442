// The LIST method on the wire.
//
// Vault clients send `LIST /v1/...`, a method Node's HTTP parser (llhttp)
// refuses outright. A connection that sends one is read from then on through
// a thin shim that follows HTTP/1.1 request framing (heads, Content-Length and
// chunked bodies) and, at each request start only, renames LIST to LINK (same
// length, so nothing else moves). The request handler treats LINK as LIST; a
// genuine LINK (which Vault does not serve) is thus answered as a LIST.
//
// On plain HTTP a connection starts without the shim, parsed natively by
// llhttp straight from the socket (the shim's stream in between costs about a
// third of a bare answer's CPU). When llhttp refuses a method at the `S` of
// `LIS` (HPE_INVALID_METHOD), the connection is handed over: once every
// answer already under way on it has been sent, the server's parser and
// listeners are taken off the socket and it is served again through the shim,
// starting from the refused request's first byte. Over TLS every connection
// goes through the shim from its start.

import { Server as HttpServer } from 'node:http';
import { Server as HttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';

/** The method the parser sees for LIST. */
export const LIST_ALIAS = 'LINK';
const MAX_HEAD_BYTES = 64 * 1024;
const CRLF = Buffer.from('\r\n');
const HEAD_END = Buffer.from('\r\n\r\n');

type FramerState = 'head' | 'body' | 'chunk-line' | 'chunk-data' | 'trailer' | 'pass';

/** Follows request framing on one connection and renames LIST at request starts. */
export class ListMethodRewriter {
  private state: FramerState = 'head';
  private pending: Buffer = Buffer.alloc(0);
  private remaining = 0;

  /** Transforms one chunk of the incoming byte stream; returns what the parser should see now. */
  feed(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let data = chunk;
    while (data.length > 0) {
      switch (this.state) {
        case 'pass':
          out.push(data);
          return out;
        case 'head': {
          const buf = this.pending.length > 0 ? Buffer.concat([this.pending, data]) : data;
          // Blank lines between requests are tolerated by the parser; pass them on as they are.
          let start = 0;
          while (start + 1 < buf.length && buf[start] === 13 && buf[start + 1] === 10) start += 2;
          // A request starts with a method (letters): anything else (a TLS ClientHello sent to
          // this plain listener, say) goes to the parser at once, which refuses it, rather than
          // waiting here for a head that will never come.
          if (start < buf.length && !(buf[start] >= 0x41 && buf[start] <= 0x5a) && buf[start] !== 13) {
            this.pending = Buffer.alloc(0);
            this.state = 'pass';
            out.push(buf);
            return out;
          }
          const end = buf.indexOf(HEAD_END, start);
          if (end === -1) {
            if (buf.length > MAX_HEAD_BYTES) {
              // Far beyond any header limit: let the parser refuse it.
              this.pending = Buffer.alloc(0);
              this.state = 'pass';
              out.push(buf);
              return out;
            }
            this.pending = Buffer.from(buf);
            return out;
          }
          this.pending = Buffer.alloc(0);
          const head = buf.subarray(0, end + 4);
          if (
            head.length - start >= 5 &&
            head[start] === 0x4c && // L
            head[start + 1] === 0x49 && // I
            head[start + 2] === 0x53 && // S
            head[start + 3] === 0x54 && // T
            head[start + 4] === 0x20
          ) {
            const copy = Buffer.from(head);
            copy.write(LIST_ALIAS, start, 'latin1');
            out.push(copy);
          } else {
            out.push(head);
          }
          this.afterHead(head.subarray(start).toString('latin1'));
          data = buf.subarray(end + 4);
          break;
        }
        case 'body':
        case 'chunk-data': {
          const n = Math.min(this.remaining, data.length);
          out.push(data.subarray(0, n));
          this.remaining -= n;
          data = data.subarray(n);
          if (this.remaining === 0) this.state = this.state === 'body' ? 'head' : 'chunk-line';
          break;
        }
        case 'chunk-line':
        case 'trailer': {
          const buf = this.pending.length > 0 ? Buffer.concat([this.pending, data]) : data;
          if (this.state === 'chunk-line') {
            const eol = buf.indexOf(CRLF);
            if (eol === -1) {
              if (buf.length > 4096) return this.giveUp(out, buf);
              this.pending = Buffer.from(buf);
              return out;
            }
            this.pending = Buffer.alloc(0);
            out.push(buf.subarray(0, eol + 2));
            const size = parseInt(buf.subarray(0, eol).toString('latin1').split(';')[0].trim(), 16);
            if (!Number.isFinite(size) || size < 0) return this.giveUp(out, buf.subarray(eol + 2));
            if (size === 0) this.state = 'trailer';
            else {
              this.state = 'chunk-data';
              this.remaining = size + 2; // data and its CRLF
            }
            data = buf.subarray(eol + 2);
          } else {
            // Trailer lines end with an empty line.
            if (buf.length >= 2 && buf[0] === 13 && buf[1] === 10) {
              this.pending = Buffer.alloc(0);
              out.push(buf.subarray(0, 2));
              this.state = 'head';
              data = buf.subarray(2);
              break;
            }
            const end = buf.indexOf(HEAD_END);
            if (end === -1) {
              if (buf.length > MAX_HEAD_BYTES) return this.giveUp(out, buf);
              this.pending = Buffer.from(buf);
              return out;
            }
            this.pending = Buffer.alloc(0);
            out.push(buf.subarray(0, end + 4));
            this.state = 'head';
            data = buf.subarray(end + 4);
          }
          break;
        }
      }
    }
    return out;
  }

  private giveUp(out: Buffer[], rest: Buffer): Buffer[] {
    this.pending = Buffer.alloc(0);
    this.state = 'pass';
    out.push(rest);
    return out;
  }

  private afterHead(head: string): void {
    let contentLength = 0;
    let chunked = false;
    let upgrade = false;
    for (const line of head.split('\r\n').slice(1)) {
      const colon = line.indexOf(':');
      if (colon <= 0) continue;
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      if (name === 'content-length') contentLength = Number(value);
      else if (name === 'transfer-encoding') chunked = value.toLowerCase().split(',').map((s) => s.trim()).includes('chunked');
      else if (name === 'upgrade') upgrade = true;
    }
    if (upgrade || head.startsWith('CONNECT ')) this.state = 'pass';
    else if (chunked) this.state = 'chunk-line';
    else if (Number.isSafeInteger(contentLength) && contentLength > 0) {
      this.state = 'body';
      this.remaining = contentLength;
    } else if (!Number.isSafeInteger(contentLength) || contentLength < 0) this.state = 'pass';
    else this.state = 'head';
  }
}

/** A connection as the HTTP server sees it: the real socket's bytes through the LIST rewriter. */
class RewritingSocket extends Duplex {
  private readonly socket: Socket;
  private readonly rewriter = new ListMethodRewriter();

  /** `start`: bytes already read from the socket, to be read first (a connection handed over). */
  constructor(socket: Socket, start?: Buffer) {
    super({ allowHalfOpen: true });
    this.socket = socket;
    const feed = (chunk: Buffer): void => {
      let ok = true;
      for (const part of this.rewriter.feed(chunk)) if (part.length > 0) ok = this.push(part) && ok;
      if (!ok) socket.pause();
    };
    if (start) feed(start);
    socket.on('data', feed);
    socket.on('end', () => this.push(null));
    socket.on('timeout', () => this.emit('timeout'));
    socket.on('error', (err) => this.destroy(err));
    socket.on('close', () => this.destroy());
    socket.on('drain', () => this.emit('drain'));
  }

  get remoteAddress(): string | undefined {
    return this.socket.remoteAddress;
  }
  get remotePort(): number | undefined {
    return this.socket.remotePort;
  }
  get remoteFamily(): string | undefined {
    return this.socket.remoteFamily;
  }
  get localAddress(): string | undefined {
    return this.socket.localAddress;
  }
  get localPort(): number | undefined {
    return this.socket.localPort;
  }
  get encrypted(): boolean {
    return (this.socket as Socket & { encrypted?: boolean }).encrypted === true;
  }

  setTimeout(ms: number, callback?: () => void): this {
    this.socket.setTimeout(ms);
    if (callback) this.once('timeout', callback);
    return this;
  }
  setNoDelay(noDelay?: boolean): this {
    this.socket.setNoDelay(noDelay);
    return this;
  }
  setKeepAlive(enable?: boolean, delay?: number): this {
    this.socket.setKeepAlive(enable, delay);
    return this;
  }
  ref(): this {
    this.socket.ref();
    return this;
  }
  unref(): this {
    this.socket.unref();
    return this;
  }

  override _read(): void {
    this.socket.resume();
  }
  override _write(chunk: Buffer, encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    this.socket.write(chunk, encoding, callback);
  }
  override _writev(chunks: Array<{ chunk: Buffer; encoding: BufferEncoding }>, callback: (err?: Error | null) => void): void {
    this.socket.cork();
    for (let i = 0; i < chunks.length; i++) {
      this.socket.write(chunks[i].chunk, chunks[i].encoding, i === chunks.length - 1 ? callback : undefined);
    }
    this.socket.uncork();
  }
  override _final(callback: (err?: Error | null) => void): void {
    this.socket.end(callback);
  }
  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.socket.destroy(err ?? undefined);
    callback(err);
  }
}

/** What a server's clientError listener does with an error that is not a LIST to hand over. */
export type ClientErrorHandler = (err: Error, socket: Socket) => void;

/** Node's answer to a request it cannot parse, when nobody else answers it. */
function refuse(_err: Error, socket: Socket): void {
  if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
  else socket.destroy();
}

/** The events node's HTTP server listens to on a connection it parses. */
const SERVER_EVENTS = ['data', 'end', 'close', 'drain', 'error', 'timeout', 'pause', 'resume'] as const;

interface NativeConnection {
  /** The listeners the HTTP server added to the socket, to take off at a hand-over. */
  listeners: Array<[string, (...args: unknown[]) => void]>;
}

/** What node's HTTP server hangs on a socket it parses (internal, read only at a hand-over). */
interface ParsedSocket extends Socket {
  parser?: {
    _consumed?: boolean;
    unconsume(): void;
    remove?(): void;
    close?(): void;
    socket?: unknown;
    incoming?: unknown;
  } | null;
  _httpMessage?: (NodeJS.EventEmitter & { writableFinished?: boolean }) | null;
}

/**
 * The refused bytes from the start of the LIST request, when llhttp's error
 * is a LIST's `S` (the bytes before it in this chunk, if any, being `LI`, and
 * no method letter before those); null for anything else.
 */
export function listRequestStart(err: Error & { code?: string; bytesParsed?: number; rawPacket?: Buffer }): Buffer | null {
  if (err.code !== 'HPE_INVALID_METHOD') return null;
  const raw = err.rawPacket;
  const at = err.bytesParsed;
  if (!Buffer.isBuffer(raw) || typeof at !== 'number' || at < 0 || at >= raw.length) return null;
  if (raw[at] !== 0x53) return null; // S
  // `L` and `I` were accepted (as the start of LINK or LOCK), in this chunk or the one before.
  const before = raw.subarray(Math.max(0, at - 2), at).toString('latin1');
  if (!'LI'.endsWith(before)) return null;
  // A method letter before the `LI` makes it a longer method llhttp also stops at the S of (UNLIST: UNLI is
  // UNLINK's start), not a LIST. When the L or LI came in the chunk before, that cannot be seen here.
  if (at >= 3 && raw[at - 3] >= 0x41 && raw[at - 3] <= 0x5a) return null;
  return Buffer.concat([Buffer.from('LI', 'latin1'), raw.subarray(at)]);
}

/**
 * Makes an http or https server accept Vault's LIST method. `onClientError`
 * gets the client errors that are not a LIST to hand over (default: a bare 400
 * and close, as node answers when nobody listens).
 */
export function acceptListMethod(server: HttpServer | HttpsServer, onClientError: ClientErrorHandler = refuse): void {
  const tls = server instanceof HttpsServer;
  const event = tls ? 'secureConnection' : 'connection';
  const listeners = server.listeners(event) as Array<(this: unknown, socket: Socket) => void>;
  const original = listeners.find((l) => l.name === 'connectionListener') ?? (listeners.length === 1 ? listeners[0] : undefined);
  if (!original) throw new Error(`cannot install LIST support: no ${event} listener on the server`);
  server.removeListener(event, original);
  if (tls) {
    server.on(event, (socket: Socket) => {
      original.call(server, new RewritingSocket(socket) as unknown as Socket);
    });
    server.on('clientError', onClientError);
    return;
  }
  const native = new WeakMap<Socket, NativeConnection>();
  server.on(event, (socket: Socket) => {
    const before = new Map(SERVER_EVENTS.map((e) => [e, new Set(socket.listeners(e))]));
    original.call(server, socket);
    const added: NativeConnection['listeners'] = [];
    for (const e of SERVER_EVENTS) {
      for (const l of socket.listeners(e)) if (!before.get(e)!.has(l)) added.push([e, l as (...args: unknown[]) => void]);
    }
    native.set(socket, { listeners: added });
  });
  server.on('clientError', (err: Error, socket: Socket) => {
    const connection = native.get(socket);
    const start = connection ? listRequestStart(err) : null;
    if (!connection || !start) return onClientError(err, socket);
    native.delete(socket);
    handOver(server, original, socket as ParsedSocket, connection, start);
  });
}

/**
 * Serves a natively parsed connection through the shim from `start` on, once
 * the answers under way on it (pipelined requests before the LIST) are sent.
 */
function handOver(
  server: HttpServer,
  connectionListener: (this: unknown, socket: Socket) => void,
  socket: ParsedSocket,
  connection: NativeConnection,
  start: Buffer,
): void {
  // The parser stops here: nothing more is read into it.
  const parser = socket.parser;
  if (parser?._consumed) {
    parser.unconsume();
    parser._consumed = false;
  }
  socket.pause();
  let done = false;
  const whenIdle = (): void => {
    if (done || socket.destroyed) return;
    const busy = socket._httpMessage;
    if (busy && !busy.writableFinished) {
      // Node attaches the next queued answer when this one finishes: look again then.
      let looked = false;
      const again = (): void => {
        if (looked) return;
        looked = true;
        setImmediate(whenIdle);
      };
      busy.once('finish', again);
      busy.once('close', again);
      return;
    }
    done = true;
    for (const [e, l] of connection.listeners) socket.removeListener(e, l);
    // Node's listener wrappers and encoding guard, own properties of the socket.
    for (const own of ['on', 'addListener', 'prependListener', 'setEncoding'] as const) {
      if (Object.prototype.hasOwnProperty.call(socket, own)) delete (socket as unknown as Record<string, unknown>)[own];
    }
    if (parser) {
      parser.remove?.();
      parser.socket = null;
      parser.incoming = null;
      // As node frees a parser: closed once the stack that used it has unwound.
      setImmediate(() => parser.close?.());
    }
    socket.parser = null;
    socket.setTimeout(0);
    // The handle read for the parser until now: reading resumes for the socket's own stream.
    const handle = (socket as unknown as { _handle?: { reading?: boolean; readStart?: () => number } | null })._handle;
    if (handle && !handle.reading && typeof handle.readStart === 'function') {
      handle.reading = true;
      if (handle.readStart() !== 0) {
        socket.destroy();
        return;
      }
    }
    connectionListener.call(server, new RewritingSocket(socket, start) as unknown as Socket);
  };
  whenIdle();
}
