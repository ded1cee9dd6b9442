#!/usr/bin/env node
// Bundles the Vault plugin into one self-contained file for Vault's
// plugin_directory: dist/plugin/tvm-plugin (starts with `#!/usr/bin/env node`,
// mode 0755). The file has no extension, so Node loads it as CommonJS or as an
// ES module depending on the nearest package.json's "type"; the bundle is an
// IIFE that works either way: it only needs `require` for Node's built-in
// modules and makes one with process.getBuiltinModule when it runs as ESM.
// The .proto files are inlined, so the sha256 Vault checks covers all the code
// and definitions the plugin runs. Prints the path and its sha256.
//
// --sea also builds a single executable (Node's single executable application:
// this node binary with the bundle and its code cache injected), for servers
// whose images carry no Node.js (Vault's and OpenBao's): <outfile>-sea.
//
//   npm run build:plugin [-- --outfile path] [--sea]

import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const protoDir = join(root, 'src/plugin/proto');
const args = process.argv.slice(2);
const outIndex = args.indexOf('--outfile');
const outfile = resolve(outIndex >= 0 ? args[outIndex + 1] : join(root, 'dist/plugin/tvm-plugin'));

/** Replaces src/plugin/proto/sources.ts with a module holding the files' text. */
const inlineProtos = {
  name: 'inline-protos',
  setup(b) {
    b.onLoad({ filter: /src[\\/]plugin[\\/]proto[\\/]sources\.ts$/ }, async (args) => {
      const text = readFileSync(args.path, 'utf8');
      const list = /PROTO_FILES[^=]*=\s*\[([\s\S]*?)\]/.exec(text);
      if (!list) throw new Error('cannot find PROTO_FILES in sources.ts');
      const files = [...list[1].matchAll(/'([^']+)'/g)].map((m) => m[1]);
      const sources = Object.fromEntries(files.map((f) => [f, readFileSync(join(protoDir, f), 'utf8')]));
      return {
        loader: 'js',
        contents: [
          `export const PROTO_FILES = ${JSON.stringify(files)};`,
          `const SOURCES = ${JSON.stringify(sources)};`,
          'export function protoSource(file) { const s = SOURCES[file]; if (s === undefined) throw new Error("no proto " + file); return s; }',
        ].join('\n'),
      };
    });
  },
};

const REQUIRE_SHIM = [
  '#!/usr/bin/env node',
  "var require = typeof require === 'function' ? require : process.getBuiltinModule('node:module').createRequire(process.argv[1]);",
].join('\n');

mkdirSync(dirname(outfile), { recursive: true });
await build({
  entryPoints: [join(root, 'src/plugin/main.ts')],
  outfile,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'iife',
  banner: { js: REQUIRE_SHIM },
  plugins: [inlineProtos],
  legalComments: 'none',
  minify: false,
  logLevel: 'warning',
});
chmodSync(outfile, 0o755);
const sha256Of = (file) => createHash('sha256').update(readFileSync(file)).digest('hex');
console.log(`${outfile}\nsha256 ${sha256Of(outfile)}`);

if (args.includes('--sea')) {
  // The SEA's main script is the same bundle without its shebang line.
  const work = mkdtempSync(join(tmpdir(), 'tvm-sea-'));
  try {
    const main = join(work, 'main.js');
    writeFileSync(main, readFileSync(outfile, 'utf8').replace(/^#![^\n]*\n/, ''));
    const blob = join(work, 'sea-prep.blob');
    writeFileSync(
      join(work, 'sea-config.json'),
      JSON.stringify({ main, output: blob, disableExperimentalSEAWarning: true, useCodeCache: true }),
    );
    execFileSync(process.execPath, ['--experimental-sea-config', join(work, 'sea-config.json')], { stdio: ['ignore', 'ignore', 'inherit'] });
    const sea = `${outfile}-sea`;
    copyFileSync(process.execPath, sea);
    chmodSync(sea, 0o755);
    const { inject } = createRequire(import.meta.url)('postject');
    await inject(sea, 'NODE_SEA_BLOB', readFileSync(blob), { sentinelFuse: 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2' });
    console.log(`${sea}\nsha256 ${sha256Of(sea)}`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
