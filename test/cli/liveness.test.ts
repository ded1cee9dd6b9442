// Which pid a `tvm creds --cloud` credential lives as long as: the invoking
// shell, past npx's launchers and a command-substitution subshell.

import { describe, expect, it } from 'vitest';
import { invokingShellPid, isLauncher, readProc, type ProcInfo } from '../../src/cli/liveness.ts';

function tree(procs: Record<number, ProcInfo>) {
  return (pid: number): ProcInfo | null => procs[pid] ?? null;
}

describe('invokingShellPid', () => {
  // eval "$(npx tvm creds ...)" in a script: tvm <- sh -c 'tvm' <- npm exec <- $( ) subshell <- the script's shell
  const npx = tree({
    40: { ppid: 30, argv: ['sh', '-c', "'tvm' creds logs --cloud aws --format env"] },
    30: { ppid: 21, argv: ['npm exec tvm creds logs --cloud aws --format env'] },
    21: { ppid: 20, argv: ['bash', 'ci.sh'] },
    20: { ppid: 10, argv: ['bash', 'ci.sh'] },
    10: { ppid: 1, argv: ['-bash'] },
  });

  it('skips sh -c, npm exec and the subshell, and stops at the shell', () => {
    expect(invokingShellPid(40, npx)).toBe(20);
  });

  it('a plain parent shell is the answer', () => {
    expect(invokingShellPid(20, npx)).toBe(20);
    expect(invokingShellPid(10, npx)).toBe(10);
  });

  it('an unreadable process (no /proc) is the answer as it is', () => {
    expect(invokingShellPid(99, npx)).toBe(99);
  });

  it('recognises the launchers and nothing else', () => {
    expect(isLauncher(['npx', 'tvm', 'creds'])).toBe(true);
    expect(isLauncher(['node', '/usr/lib/node_modules/npm/bin/npx-cli.js', 'tvm'])).toBe(true);
    expect(isLauncher(['sh', '-c', '/work/node_modules/.bin/tvm creds x'])).toBe(true);
    expect(isLauncher(['sh', '-c', 'make deploy'])).toBe(false);
    expect(isLauncher(['bash', 'ci.sh'])).toBe(false);
    expect(isLauncher(['node', 'server.js'])).toBe(false);
  });

  it('reads this process from /proc on Linux', () => {
    const me = readProc(process.pid);
    if (process.platform !== 'linux') return expect(me).toBeNull();
    expect(me?.ppid).toBe(process.ppid);
    expect(me?.argv[0]).toMatch(/node/);
  });
});
