#!/usr/bin/env node
// argv → serve | agent | first-boot | operator CLI. Nothing else lives here.
import { runCli } from './cli/run.ts';

runCli(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`nexus: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exitCode = 1;
  },
);
