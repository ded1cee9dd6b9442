// Which process is "the invoking shell"? `tvm creds --cloud` ties its credential
// to it, so it must not be a launcher that exits with tvm: `npx tvm` runs
// node bin/tvm.js under `sh -c tvm ...` under `npm exec tvm ...`, and both of
// those end the moment tvm does; and `eval "$(tvm ...)"` runs tvm in a
// command-substitution subshell, a fork of the shell (same argv as its parent)
// that ends with it too. Walks up past all of them using /proc (Linux);
// elsewhere the parent pid is the answer.

import { readFileSync } from 'node:fs';

export interface ProcInfo {
  ppid: number;
  /** argv of the process. */
  argv: string[];
}

export type ProcReader = (pid: number) => ProcInfo | null;

/** Reads /proc/<pid>/stat and cmdline; null when the process or /proc is not there. */
export const readProc: ProcReader = (pid) => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name sits in parentheses and may hold spaces: fields resume after the last ')'.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((a) => a !== '');
    return Number.isInteger(ppid) ? { ppid, argv } : null;
  } catch {
    return null;
  }
};

const base = (p: string | undefined): string => ((p ?? '').split('/').pop() ?? '').replace(/^-/, '');
const SHELLS = new Set(['sh', 'bash', 'dash', 'zsh', 'ksh', 'ash', 'mksh']);
const sameArgv = (a: string[], b: string[]): boolean => a.length === b.length && a.every((x, i) => x === b[i]);

/** A process that exists only to start tvm: npm exec / npx, or the `sh -c tvm ...` npm spawns. */
export function isLauncher(argv: string[]): boolean {
  // npm sets its process title, so /proc shows one argument: "npm exec tvm creds ...".
  const words = argv.length === 1 && argv[0].startsWith('npm ') ? argv[0].split(' ') : argv;
  const [a0, a1, a2] = words;
  const exe = base(a0);
  if ((exe === 'npm' || exe === 'npx') && (a1 === 'exec' || a1 === 'x' || exe === 'npx')) return true;
  if (exe === 'node' && /\/(npm-cli|npx-cli)\.js$/.test(a1 ?? '')) return true;
  if ((exe === 'sh' || exe === 'bash' || exe === 'dash') && a1 === '-c' && /^['"]?(\S*\/)?tvm['"]?(\s|$)/.test(a2 ?? '')) return true;
  return false;
}

/** The pid whose exit should end the workload: the first ancestor that is not a launcher. */
export function invokingShellPid(parent: number, read: ProcReader = readProc): number {
  let pid = parent;
  for (let hops = 0; hops < 8; hops++) {
    const info = read(pid);
    if (!info || info.ppid <= 1) return pid;
    const parent = read(info.ppid);
    const subshell = parent !== null && SHELLS.has(base(info.argv[0])) && sameArgv(info.argv, parent.argv);
    if (!subshell && !isLauncher(info.argv)) return pid;
    pid = info.ppid;
  }
  return pid;
}
