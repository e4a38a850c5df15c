#!/usr/bin/env node
// Runs the TypeScript CLI straight from src/ through tsx, so `npx icu-mortality` works after a
// plain `npm ci` with no build step. tsx is registered before the CLI module is imported; the
// inference worker threads get the loader from engine.ts.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
