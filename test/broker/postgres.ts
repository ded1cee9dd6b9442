// A throwaway PostgreSQL cluster for tests: Debian's initdb/pg_ctl, run as the
// postgres user in a temp dir it owns, on a free port, socket in that dir.

import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';

export interface PgCluster {
  url: string;
  stop(): void;
}

function pgBin(): string | null {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return null;
  for (const v of readdirSync(root).sort().reverse()) {
    const bin = join(root, v, 'bin');
    if (existsSync(join(bin, 'initdb')) && existsSync(join(bin, 'pg_ctl'))) return bin;
  }
  return null;
}

function postgresUid(): { uid: number; gid: number } | null {
  try {
    const [uid, gid] = execFileSync('id', ['-u', 'postgres']).toString().trim() !== ''
      ? [Number(execFileSync('id', ['-u', 'postgres']).toString()), Number(execFileSync('id', ['-g', 'postgres']).toString())]
      : [NaN, NaN];
    return Number.isInteger(uid) ? { uid, gid } : null;
  } catch {
    return null;
  }
}

/** Why the PostgreSQL tests cannot run here, or null when they can. */
export function pgUnavailable(): string | null {
  if (!pgBin()) return 'PostgreSQL tests skipped: initdb/pg_ctl not found under /usr/lib/postgresql/<ver>/bin (install Debian\'s postgresql package)';
  if (userInfo().uid !== 0) return 'PostgreSQL tests skipped: starting a throwaway cluster as the postgres user needs root';
  if (!postgresUid()) return 'PostgreSQL tests skipped: no postgres system user';
  return null;
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

export async function startPgCluster(): Promise<PgCluster> {
  const bin = pgBin() as string;
  const ids = postgresUid() as { uid: number; gid: number };
  const dir = mkdtempSync(join(tmpdir(), 'tvm-pg-'));
  chownSync(dir, ids.uid, ids.gid);
  const data = join(dir, 'data');
  const port = await freePort();
  const asPg = (cmd: string, args: string[]) => execFileSync('runuser', ['-u', 'postgres', '--', join(bin, cmd), ...args], { stdio: 'pipe' });
  asPg('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync']);
  asPg('pg_ctl', ['-D', data, '-l', join(dir, 'log'), '-w', '-o', `-p ${port} -k ${dir} -c listen_addresses='' -c fsync=off`, 'start']);
  return {
    url: `postgresql://postgres@localhost:${port}/postgres?host=${encodeURIComponent(dir)}`,
    stop() {
      try {
        asPg('pg_ctl', ['-D', data, '-m', 'immediate', 'stop']);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
