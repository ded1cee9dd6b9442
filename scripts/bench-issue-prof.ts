// Summarises a .cpuprofile (node --cpu-prof, as bench-issue --cpu-prof DIR
// writes for the server): the top functions by self time, and optionally the
// total (inclusive) time of functions whose name matches a pattern.
//   node --import tsx scripts/bench-issue-prof.ts <file.cpuprofile> [top=8] [inclusive-regex]

import { readFileSync } from 'node:fs';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
}

const [file, topText, inclusive] = process.argv.slice(2);
if (!file) {
  console.error('usage: bench-issue-prof.ts <file.cpuprofile> [top] [inclusive-regex]');
  process.exit(2);
}
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const top = Number(topText ?? 8);
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const selfUs = new Map<number, number>();
let totalUs = 0;
profile.samples.forEach((id, i) => {
  const dt = profile.timeDeltas[i] ?? 0;
  selfUs.set(id, (selfUs.get(id) ?? 0) + dt);
  totalUs += dt;
});

const short = (url: string): string => url.replace(/^file:\/\/.*?\/(node_modules|src|scripts)\//, '$1/').replace(/^node:/, 'node:');
const label = (n: Node): string => {
  const f = n.callFrame;
  const where = f.url ? `${short(f.url)}:${f.lineNumber + 1}` : '';
  return `${f.functionName || '(anonymous)'}\t${where}`;
};

// Self time by function (all call sites of one function together).
const byFunction = new Map<string, number>();
for (const [id, us] of selfUs) {
  const key = label(byId.get(id)!);
  byFunction.set(key, (byFunction.get(key) ?? 0) + us);
}
const idle = [...byFunction].filter(([k]) => k.startsWith('(idle)')).reduce((a, [, v]) => a + v, 0);
console.log(`${file}: ${(totalUs / 1e6).toFixed(1)} s sampled, ${((100 * idle) / totalUs).toFixed(1)}% idle`);
console.log('self%\tfunction\tfile');
for (const [key, us] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, top)) {
  console.log(`${((100 * us) / totalUs).toFixed(1)}%\t${key}`);
}

if (inclusive) {
  // Inclusive time: a sample counts once for a function when it is anywhere on the stack.
  const re = new RegExp(inclusive);
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const incl = new Map<string, number>();
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0;
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const key = label(byId.get(at)!);
      if (!seen.has(key) && re.test(key)) {
        seen.add(key);
        incl.set(key, (incl.get(key) ?? 0) + dt);
      }
    }
  });
  console.log('\ntotal%\tfunction\tfile');
  for (const [key, us] of [...incl].sort((a, b) => b[1] - a[1]).slice(0, 40)) {
    console.log(`${((100 * us) / totalUs).toFixed(1)}%\t${key}`);
  }
}
