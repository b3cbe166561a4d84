import { describe, expect, it } from 'vitest';
import { buildProgram, kidAfterDoubleDash } from '../../src/cli/program.js';

const program = buildProgram({ out: () => {}, err: () => {} });
const argv = (...args: string[]) => ['node', 'm2m-auth', ...args];

describe('a kid that begins with "-" after keys revoke', () => {
  it('is moved after "--", the options before it kept and their values left alone', () => {
    expect(kidAfterDoubleDash(argv('keys', 'revoke', '-jI4_x', '--rotate', '--admin-token', '-tok'), program))
      .toEqual(argv('keys', 'revoke', '--rotate', '--admin-token', '-tok', '--', '-jI4_x'));
    expect(kidAfterDoubleDash(argv('keys', 'revoke', '--admin-url=http://a', '-k'), program))
      .toEqual(argv('keys', 'revoke', '--admin-url=http://a', '--', '-k'));
  });

  it('leaves every other command line as it is', () => {
    for (const args of [
      argv('keys', 'revoke', 'abc', '--rotate'),
      argv('keys', 'revoke', '--json', '--', '-abc'),
      argv('keys', 'revoke', '-h'),
      argv('clients', 'revoke-tokens', '-x'),
      argv('keys', 'list', '-x'),
    ]) expect(kidAfterDoubleDash(args, program)).toEqual(args);
  });

  it('is parsed by commander as the kid', async () => {
    let kid: unknown;
    const p = buildProgram({ out: () => {}, err: () => {} });
    const revoke = p.commands.find((c) => c.name() === 'keys')!.commands.find((c) => c.name() === 'revoke')!;
    revoke.action((k: string) => { kid = k; });
    await p.parseAsync(kidAfterDoubleDash(argv('keys', 'revoke', '-jI4', '--rotate'), p));
    expect(kid).toBe('-jI4');
    expect(revoke.opts()).toMatchObject({ rotate: true });
  });
});
