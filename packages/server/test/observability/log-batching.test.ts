// Log lines are written in batches (src/observability/logger.ts): in order, whole, within 100 ms,
// and every one of them when the process exits, however it exits.

import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LineBatch } from '../../src/observability/logger.js';
import { ensureBuilt, REPO } from '../helpers/process.js';

function fakeSink() {
  const writes: string[] = [];
  let syncFlushes = 0;
  return {
    writes,
    get syncFlushes() {
      return syncFlushes;
    },
    write: (chunk: string) => writes.push(chunk) > 0,
    flush: (cb?: (err?: Error) => void) => cb?.(),
    flushSync: () => void syncFlushes++,
  };
}

describe('LineBatch', () => {
  it('holds lines until the batch is full, then writes them as one string, in order', () => {
    const sink = fakeSink();
    const batch = new LineBatch(sink, 10);
    batch.write('aaaa\n');
    batch.write('bbb\n');
    expect(sink.writes).toEqual([]);
    batch.write('cc\n');
    expect(sink.writes).toEqual(['aaaa\nbbb\ncc\n']);
    batch.write('d\n');
    batch.drain();
    batch.drain();
    expect(sink.writes).toEqual(['aaaa\nbbb\ncc\n', 'd\n']);
  });

  it('flush and flushSync hand over what is held first', () => {
    const sink = fakeSink();
    const batch = new LineBatch(sink, 1000);
    batch.write('x\n');
    let flushed = false;
    batch.flush(() => (flushed = true));
    expect(flushed).toBe(true);
    batch.write('y\n');
    batch.flushSync();
    expect(sink.writes).toEqual(['x\n', 'y\n']);
    expect(sink.syncFlushes).toBe(1);
  });
});

describe('the server logger at exit', () => {
  ensureBuilt();
  const logger = join(REPO, 'dist/observability/logger.js');
  const run = (ending: string) => spawnSync(process.execPath, ['--input-type=module', '-e', `
    const { createLogger } = await import(${JSON.stringify(logger)});
    const log = createLogger({ level: 'info' });
    for (let i = 0; i < 500; i++) log.info({ i }, 'line');
    ${ending}
  `], { encoding: 'utf8', timeout: 20_000 });

  for (const [name, ending] of [
    ['process.exit() right after logging', 'process.exit(0);'],
    ['the event loop running out', ''],
    ['an uncaught exception', 'throw new Error("boom");'],
  ] as const) {
    it(`writes every line, in order, on ${name}`, () => {
      const r = run(ending);
      const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { i: number });
      expect(lines.map((l) => l.i)).toEqual(Array.from({ length: 500 }, (_, i) => i));
    });
  }
});
