#!/usr/bin/env node
// Entry shim: loads the TypeScript CLI through tsx's ESM loader so `npx tvm` works without a build step.
import { register } from 'tsx/esm/api';
register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv);
