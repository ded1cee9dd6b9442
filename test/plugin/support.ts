// Shared by the plugin tests: build the bundled plugin and the Go conformance
// host once per test file, and drive the host's serve mode (JSON lines).

import { execFile, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { realPart, type RealPart } from '../real/parts.ts';

const run = promisify(execFile);

export const REPO = resolve(import.meta.dirname, '../..');
export const MAGIC = { VAULT_BACKEND_PLUGIN: '6669da05-b1c8-4f49-97d9-c8e5bed98e20' };

/** Bundles the plugin into a fresh temporary directory; returns the file's path. */
export async function buildPlugin(): Promise<string> {
  const out = join(mkdtempSync(join(tmpdir(), 'tvm-plugin-build-')), 'tvm-plugin');
  await run(process.execPath, [join(REPO, 'scripts/build-plugin.mjs'), '--outfile', out], { cwd: REPO });
  return out;
}

let goHostBuild: Promise<RealPart> | undefined;

/**
 * Builds the Go conformance host once per test process with
 * `scripts/real-parts go-host` (the machine's Go, go-plugin and Vault's sdk
 * from the Go module proxy, into .cache/real/bin; nothing is rebuilt while the
 * host's sources are unchanged) and reads its status line.
 */
function goHostPart(): Promise<RealPart> {
  goHostBuild ??= run(join(REPO, 'scripts/real-parts'), ['go-host'], { cwd: REPO, timeout: 25 * 60_000, maxBuffer: 16 << 20 }).then(
    () => realPart('go-host'),
    () => realPart('go-host'),
  );
  return goHostBuild;
}

/** Why the Go host cannot be built here, or null when it can. */
export async function goHostUnavailable(): Promise<string | null> {
  const part = await goHostPart();
  return part.ok ? null : `the Go conformance host could not be built (scripts/real-parts go-host): ${part.reason}`;
}

/** The Go host's binary (built by scripts/real-parts go-host); throws with the reason when it could not be built. */
export async function buildGoHost(): Promise<string> {
  const part = await goHostPart();
  if (!part.ok) throw new Error(part.reason);
  return part.path!;
}

/** Runs the host in one of its one-shot modes; resolves with its output and exit code. */
export async function runHost(
  host: string,
  plugin: string,
  mode: string,
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(host, ['-mode', mode, '-plugin', plugin], {
      env: { ...process.env, ...env },
      timeout: 120_000,
      maxBuffer: 16 << 20,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** A reply from the host's serve mode, as serve.go renders it. */
export interface HostReply {
  id: number;
  grpc_error?: string;
  lease_id?: string;
  err?: { type: number; msg: string; code: number } | null;
  response?: {
    data_text: string;
    data?: Record<string, unknown>;
    warnings: string[] | null;
    secret?: {
      ttl_ns: string;
      max_ttl_ns: string;
      increment_ns: string;
      renewable: boolean;
      issue_time?: string;
      internal_data_text: string;
      internal_data?: Record<string, unknown>;
    };
  } | null;
  [key: string]: unknown;
}

export interface HostReady {
  ready: true;
  startup_ns: string;
  setup_ns: string;
  negotiated: number;
  socket: string;
}

/** The Go host in serve mode: one plugin process, set up and initialised. */
export class HostSession {
  readonly ready: HostReady;
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly pending = new Map<number, (reply: HostReply) => void>();
  private nextId = 1;
  stderr = '';

  private constructor(child: ChildProcessWithoutNullStreams, ready: HostReady) {
    this.child = child;
    this.ready = ready;
  }

  static async start(host: string, plugin: string, env: Record<string, string> = {}): Promise<HostSession> {
    const child = spawn(host, ['-mode', 'serve', '-plugin', plugin], { env: { ...process.env, ...env }, stdio: 'pipe' });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const lines = createInterface({ input: child.stdout });
    let session: HostSession | undefined;
    const ready = await new Promise<HostReady>((resolvePromise, reject) => {
      const timer = setTimeout(() => reject(new Error(`host did not get ready: ${stderr}`)), 60_000);
      child.once('exit', (code) => reject(new Error(`host exited ${code}: ${stderr}`)));
      lines.on('line', (line) => {
        const msg = JSON.parse(line) as Record<string, unknown>;
        if (msg.ready === true) {
          clearTimeout(timer);
          resolvePromise(msg as unknown as HostReady);
          return;
        }
        const reply = msg as HostReply;
        session?.pending.get(reply.id)?.(reply);
        session?.pending.delete(reply.id);
      });
    });
    session = new HostSession(child, ready);
    child.stderr.on('data', (d: Buffer) => (session!.stderr += d.toString()));
    return session;
  }

  send(command: Record<string, unknown>): Promise<HostReply> {
    const id = this.nextId++;
    return new Promise((resolvePromise, reject) => {
      const timer = setTimeout(() => reject(new Error(`no reply to ${JSON.stringify(command)}`)), 60_000);
      this.pending.set(id, (reply) => {
        clearTimeout(timer);
        resolvePromise(reply);
      });
      this.child.stdin.write(`${JSON.stringify({ ...command, id })}\n`);
    });
  }

  async close(): Promise<HostReply | undefined> {
    if (this.child.exitCode !== null) return undefined;
    const exited = new Promise((r) => this.child.once('exit', r));
    const reply = await this.send({ cmd: 'shutdown' }).catch(() => undefined);
    this.child.stdin.end();
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
    return reply;
  }
}
