#!/usr/bin/env node
// Bundles the PEP library (src/pep/) into dist/pep/index.js: plain ESM that
// Node runs without tsx, the package's `tvm/pep` entry. jose stays an import
// (a dependency); the engine modules the PEP shares (patterns, cidr, windows)
// and the audit writer its sink uses are bundled in, and nothing else of tvm is. Prints the file and its size.
//   node scripts/build-pep.mjs
import { statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const outfile = join(root, 'dist/pep/index.js');
const result = await build({
  entryPoints: [join(root, 'src/pep/index.ts')],
  outfile,
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: ['jose'],
  metafile: true,
  logLevel: 'warning',
});
const inputs = Object.keys(result.metafile.inputs).filter((p) => !p.startsWith('src/pep/'));
const foreign = inputs.filter((p) => !['src/engine/patterns.ts', 'src/engine/cidr.ts', 'src/engine/windows.ts', 'src/engine/jwk.ts', 'src/audit/writer.ts', 'src/audit/chain.ts'].includes(p));
if (foreign.length > 0) {
  console.error(`build-pep: the PEP bundle pulls in more of tvm than it should: ${foreign.join(', ')}`);
  process.exit(1);
}
console.log(`${outfile} (${statSync(outfile).size} bytes; shares ${inputs.join(', ')})`);
