// The profiler's pprof files from DevTools profiles (src/profiling/pprof.ts), read back with
// pprof-format's decoder.

import { gunzipSync } from 'node:zlib';
import { Profile } from 'pprof-format';
import { describe, expect, it } from 'vitest';
import type { CallFrame, CpuProfile, SamplingHeapProfile } from '../../src/profiling/devtools-profile.js';
import { cpuProfileToPprof, encodePprof, heapProfileToPprof } from '../../src/profiling/pprof.js';

function frame(functionName: string, url: string, lineNumber = 0): CallFrame {
  return { functionName, url, scriptId: '0', lineNumber, columnNumber: 0 };
}

function decode(gz: Buffer): Profile {
  expect(gz.subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b])); // gzip magic
  return Profile.decode(gunzipSync(gz));
}

const str = (p: Profile, i: number | bigint): string => p.stringTable.strings[Number(i)]!;
const types = (p: Profile): string[] => p.sampleType.map((t) => `${str(p, t.type)}/${str(p, t.unit)}`);

describe('cpuProfileToPprof', () => {
  // (root) -> handler -> sign; (root) -> (idle)
  const profile: CpuProfile = {
    startTime: 0,
    endTime: 4_000,
    nodes: [
      { id: 1, callFrame: frame('(root)', ''), children: [2, 4] },
      { id: 2, callFrame: frame('handler', 'file:///app/http.js', 9), children: [3] },
      { id: 3, callFrame: frame('sign', 'file:///app/keys.js', 19), children: [] },
      { id: 4, callFrame: frame('(idle)', ''), children: [] },
    ],
    samples: [3, 3, 2, 4],
    timeDeltas: [0, 1000, 1000, 1000],
  };

  it('has samples/count and cpu/nanoseconds, the stacks leaf first, and no idle samples', () => {
    const p = decode(encodePprof(cpuProfileToPprof(profile, { startedAt: new Date(0), comments: ['test'] })));
    expect(types(p)).toEqual(['samples/count', 'cpu/nanoseconds']);
    expect(str(p, p.defaultSampleType)).toBe('cpu');
    const byLeaf = new Map(p.sample.map((s) => {
      const loc = p.location.find((l) => Number(l.id) === Number(s.locationId[0]))!;
      const fn = p.function.find((f) => Number(f.id) === Number(loc.line[0]!.functionId))!;
      return [str(p, fn.name), s.value.map(Number)] as const;
    }));
    expect([...byLeaf.keys()].sort()).toEqual(['handler', 'sign']);
    expect(byLeaf.get('sign')).toEqual([2, 2_000_000]);
    expect(byLeaf.get('handler')).toEqual([1, 1_000_000]);
    expect(p.comment.map((c) => str(p, c))).toEqual(['test']);
  });
});

describe('heapProfileToPprof', () => {
  const heap: SamplingHeapProfile = {
    head: {
      id: 1, callFrame: frame('(root)', ''), selfSize: 0, children: [
        { id: 2, callFrame: frame('handler', 'file:///app/http.js'), selfSize: 100, children: [
          { id: 3, callFrame: frame('info', 'file:///app/log.js'), selfSize: 50, children: [] },
        ] },
      ],
    },
    samples: [{ size: 100, nodeId: 2, ordinal: 1 }, { size: 50, nodeId: 3, ordinal: 2 }],
  };

  it('an allocation profile has alloc_samples/count and alloc_space/bytes with every byte of the tree', () => {
    const p = decode(encodePprof(heapProfileToPprof(heap, 'alloc', { startedAt: new Date(0), samplingInterval: 4096 })));
    expect(types(p)).toEqual(['alloc_samples/count', 'alloc_space/bytes']);
    expect(str(p, p.defaultSampleType)).toBe('alloc_space');
    expect(Number(p.period)).toBe(4096);
    expect(p.sample.reduce((a, s) => a + Number(s.value[1]), 0)).toBe(150);
    expect(p.sample.map((s) => s.locationId.length).sort()).toEqual([1, 2]);
  });
});
