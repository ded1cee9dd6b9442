#!/usr/bin/env node
// Entry shim. Runs the compiled CLI (dist/cli/main.js, which `npm install`
// builds through the prepare script) when it is at least as new as every file
// under src/; otherwise (no build, or a checkout being edited since) it runs
// the TypeScript sources through tsx, slower to start but never stale.
import { readdirSync, statSync } from 'node:fs';
import module from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const built = join(root, 'dist/cli/main.js');

function newestUnder(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    const t = entry.isDirectory() ? newestUnder(path) : statSync(path).mtimeMs;
    if (t > newest) newest = t;
  }
  return newest;
}

function builtIsFresh() {
  let builtAt;
  try {
    builtAt = statSync(built).mtimeMs;
  } catch {
    return false;
  }
  try {
    return newestUnder(join(root, 'src')) <= builtAt;
  } catch {
    // No sources beside the build (a package published built): the build is all there is.
    return true;
  }
}

let main;
if (builtIsFresh()) {
  // Node 22.1 and later keep V8's compiled code between runs (Node 20 has no such cache).
  module.enableCompileCache?.();
  ({ main } = await import(pathToFileURL(built).href));
} else {
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import('../src/cli/main.ts'));
}
process.exitCode = await main(process.argv);
