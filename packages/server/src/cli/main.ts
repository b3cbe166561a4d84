#!/usr/bin/env node
// The m2m-auth executable (package.json "bin"): runs the command line and sets the exit code.

import { run } from './program.js';

process.exitCode = await run(process.argv);
