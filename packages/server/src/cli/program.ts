// The m2m-auth command line: commander program and its one error path (one line, exit code 1).

import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { clientsCommand, keysCommand } from './admin-commands.js';
import { applyCommand } from './apply-command.js';
import { loadtestCommand, profileCommand } from './loadtest-commands.js';
import { stdio, type Output } from './output.js';
import { exportCommand, importCommand, migrateCommand, serveCommand } from './server-commands.js';

function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

export function buildProgram(io: Output = stdio): Command {
  const program = new Command('m2m-auth')
    .description('OAuth 2.0 authorization server for machine-to-machine traffic: client credentials to RFC 9068 JWT access tokens')
    .version(version())
    .showSuggestionAfterError(true);
  program.addCommand(serveCommand());
  program.addCommand(migrateCommand(io));
  program.addCommand(exportCommand(io));
  program.addCommand(importCommand(io));
  program.addCommand(clientsCommand(io));
  program.addCommand(keysCommand(io));
  program.addCommand(applyCommand(io));
  program.addCommand(loadtestCommand(io));
  program.addCommand(profileCommand(io));
  return program;
}

/** Runs the CLI; resolves to the exit code. Usage errors are reported and exited by commander itself. */
export async function run(argv: string[], io: Output = stdio): Promise<number> {
  try {
    await buildProgram(io).parseAsync(argv);
    return 0;
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    io.err(`m2m-auth: ${message.replace(/\s*\n\s*/g, ' ')}`);
    return 1;
  }
}
