#!/usr/bin/env node
// Compiles the CLI (src/cli/main.ts and everything it reaches, the dev server
// and the broker included) into dist/cli/: plain ESM that Node runs without a
// TypeScript loader. Packages stay imports (node_modules), and each command's
// dynamic imports become their own chunks, so `tvm --help` loads commander and
// little else while `tvm broker run` loads the broker's stores and SDKs when it
// runs. bin/tvm.js runs this build when it is at least as new as src/, and the
// sources through tsx when it is not (a checkout being edited).
// `npm install` runs it (the prepare script). Prints the entry and its size.
//   node scripts/build-cli.mjs [--outdir dist/<name>]
// --outdir (two folders below the project, as dist/cli is) builds elsewhere, for
// a test that must not replace the build other processes are running.
import { readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: { outdir: { type: 'string', default: 'dist/cli' } } });
const outdir = resolve(root, values.outdir);
if (relative(root, outdir).split(/[\\/]/).length !== 2) {
  console.error(`build-cli: --outdir must be two folders below ${root} (as dist/cli is): ${values.outdir}`);
  process.exit(2);
}
// Built beside, then swapped in: a tvm process starting meanwhile finds the old build or the new one, never half of one.
const staging = `${outdir}.${process.pid}.tmp`;
rmSync(staging, { recursive: true, force: true });
const result = await build({
  entryPoints: [join(root, 'src/cli/main.ts')],
  outdir: staging,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  // Every package stays an import from node_modules but commander, which every
  // command loads first: bundled in, it is one file read instead of its five.
  external: Object.keys(JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).dependencies).filter((name) => name !== 'commander'),
  // commander is CommonJS and requires node's modules: give the ESM output a require.
  banner: { js: "import { createRequire as __tvmCreateRequire } from 'node:module'; const require = __tvmCreateRequire(import.meta.url);" },
  metafile: true,
  logLevel: 'warning',
});
// Files that find others through import.meta.url: src/cli/main.ts (package.json)
// and src/plugin/register.ts (dist/plugin/) resolve ../../ from two folders
// down, which every output here is too (dist/cli/*.js, no chunk folder); the
// plugin's proto sources read their neighbours and must not be reached at all.
const inputs = Object.keys(result.metafile.inputs);
const unsafe = inputs.filter((p) => p === 'src/plugin/proto/sources.ts');
if (unsafe.length > 0) {
  console.error(`build-cli: the CLI bundle reaches files that read their neighbours at run time: ${unsafe.join(', ')}`);
  rmSync(staging, { recursive: true, force: true });
  process.exit(1);
}
// A package bundled by accident (imported but not a dependency) would be frozen at build time.
const bundled = [...new Set(inputs.filter((p) => p.includes('node_modules/')).map((p) => p.split('node_modules/').pop().split('/')[0]))];
if (bundled.some((name) => name !== 'commander')) {
  console.error(`build-cli: packages bundled that should stay imports (add them to dependencies): ${bundled.join(', ')}`);
  rmSync(staging, { recursive: true, force: true });
  process.exit(1);
}
rmSync(outdir, { recursive: true, force: true });
renameSync(staging, outdir);
const outputs = Object.keys(result.metafile.outputs);
const main = join(outdir, 'main.js');
console.log(`${main} (${statSync(main).size} bytes, ${outputs.length - 1} chunks, from ${inputs.length} sources)`);
