// The default connection cap (src/http/connections.ts): 4096 per listener, lowered to fit under the
// process's open-file limit read from /proc/self/limits.

import { describe, expect, it } from 'vitest';
import {
  defaultMaxConnections, DEFAULT_MAX_CONNECTIONS, openFileLimit, parseOpenFileLimit, RESERVED_FILES,
} from '../../src/http/connections.js';

describe('the default connection cap', () => {
  it('reads the soft open-file limit from /proc/<pid>/limits', () => {
    const text = [
      'Limit                     Soft Limit           Hard Limit           Units     ',
      'Max processes             63504                63504                processes ',
      'Max open files            1024                 524288               files     ',
    ].join('\n');
    expect(parseOpenFileLimit(text)).toBe(1024);
    expect(parseOpenFileLimit(text.replace('1024  ', 'unlimited'))).toBeUndefined();
    expect(parseOpenFileLimit('')).toBeUndefined();
  });

  it.runIf(process.platform === 'linux')('reads this process\'s limit on Linux', () => {
    expect(openFileLimit()).toBeGreaterThan(0);
  });

  it('is 4096 where the file limit holds both listeners at it, and fits under a smaller limit', () => {
    expect(DEFAULT_MAX_CONNECTIONS).toBe(4096);
    expect(defaultMaxConnections(undefined)).toBe(4096);
    expect(defaultMaxConnections(1_048_576)).toBe(4096);
    expect(defaultMaxConnections(2 * 4096 + RESERVED_FILES)).toBe(4096);
    expect(defaultMaxConnections(1024)).toBe((1024 - RESERVED_FILES) / 2);
    expect(defaultMaxConnections(256)).toBe(96);
    for (const limit of [100, 256, 1024, 5000, 8000]) {
      expect(2 * defaultMaxConnections(limit) + RESERVED_FILES).toBeLessThanOrEqual(limit);
    }
  });
});
