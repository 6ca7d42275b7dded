#!/usr/bin/env node
// Thin launcher: the CLI is compiled from src/ to dist/ by `npm run build` (run by `npm ci` via prepare).
import { main } from '../dist/cli/index.js';

main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    console.error(err);
    process.exitCode = 1;
  },
);
