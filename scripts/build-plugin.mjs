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
//   npm run build:plugin [-- --outfile path]

import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync } from 'node:fs';
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
const sha256 = createHash('sha256').update(readFileSync(outfile)).digest('hex');
console.log(`${outfile}\nsha256 ${sha256}`);
