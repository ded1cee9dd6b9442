// The HTTP plumbing every cloud fake shares: read a request body (bytes or text), and listen on
// a free loopback port with a close() that drops open (keep-alive) connections.

import type { IncomingMessage } from 'node:http';
import type { AddressInfo, Server, Socket } from 'node:net';

export async function readBodyBytes(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

export async function readBody(req: IncomingMessage): Promise<string> {
  return (await readBodyBytes(req)).toString('utf8');
}

export interface Listening {
  port: number;
  /** Destroys open connections, then stops listening. */
  close(): Promise<void>;
}

/** Listens on 127.0.0.1 at a free port (an http or https server). */
export async function listenLoopback(server: Server): Promise<Listening> {
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
