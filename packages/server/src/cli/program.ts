// The m2m-auth command line: commander program and its one error path (one line, exit code 1).

import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { clientsCommand, keysCommand } from './admin-commands.js';
import { applyCommand } from './apply-command.js';
import { trustsCommand } from './trust-commands.js';
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
  program.addCommand(trustsCommand(io));
  program.addCommand(keysCommand(io));
  program.addCommand(applyCommand(io));
  program.addCommand(loadtestCommand(io));
  program.addCommand(profileCommand(io));
  return program;
}

/**
 * A kid is a base64url JWK thumbprint, so one in 64 begins with '-', which commander would take for an
 * unknown option ("keys revoke -jI4..." refused). After `keys revoke`, an argument that begins with
 * '-' but is none of the command's options (nor an option's value) is the kid: it is moved after
 * '--', where commander reads operands only, and the options before it are parsed as usual.
 */
export function kidAfterDoubleDash(argv: readonly string[], program: Command): string[] {
  const at = argv.findIndex((arg, i) => arg === 'revoke' && argv[i - 1] === 'keys');
  const revoke = program.commands.find((c) => c.name() === 'keys')?.commands.find((c) => c.name() === 'revoke');
  if (at < 0 || revoke === undefined) return [...argv];
  const flags = new Map<string, boolean>([['-h', false], ['--help', false]]);
  for (const option of revoke.options) {
    for (const flag of [option.short, option.long]) if (flag) flags.set(flag, option.required || option.optional);
  }
  const before = argv.slice(0, at + 1);
  const rest: string[] = [];
  const kids: string[] = [];
  for (let i = at + 1; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      kids.push(...argv.slice(i + 1));
      break;
    }
    const name = arg.startsWith('--') ? arg.split('=')[0]! : arg;
    if (flags.has(name)) {
      rest.push(arg);
      if (flags.get(name) === true && !arg.includes('=') && i + 1 < argv.length) rest.push(argv[++i]!);
    } else if (arg.startsWith('-') && arg.length > 1) kids.push(arg);
    else rest.push(arg);
  }
  return kids.length === 0 ? [...argv] : [...before, ...rest, '--', ...kids];
}

/** Runs the CLI; resolves to the exit code. Usage errors are reported and exited by commander itself. */
export async function run(argv: string[], io: Output = stdio): Promise<number> {
  try {
    const program = buildProgram(io);
    await program.parseAsync(kidAfterDoubleDash(argv, program));
    return 0;
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    io.err(`m2m-auth: ${message.replace(/\s*\n\s*/g, ' ')}`);
    return 1;
  }
}
