// Real V8 profiles of this process (src/observability/profiles), converted to pprof and read back with pprof-format's decoder.

import { gunzipSync } from 'node:zlib';
import { Profile } from 'pprof-format';
import { describe, expect, it } from 'vitest';
import { ProfilerBusyError, startCpuProfile, startHeapSampling, type SamplingHeapProfileNode } from '../../src/observability/profiles/inspector.js';
import { cpuProfileToPprof, encodePprof, heapProfileToPprof } from '../../src/observability/profiles/pprof.js';

function decode(gz: Buffer): Profile {
  expect(gz.subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b])); // gzip magic
  return Profile.decode(gunzipSync(gz));
}

function str(p: Profile, i: number | bigint): string {
  return p.stringTable.strings[Number(i)]!;
}

/** Every sample's locations exist and every location's function exists. */
function expectWellFormed(p: Profile): void {
  const locations = new Map(p.location.map((l) => [Number(l.id), l]));
  const functions = new Set(p.function.map((f) => Number(f.id)));
  for (const s of p.sample) {
    expect(s.locationId.length).toBeGreaterThan(0);
    expect(s.value).toHaveLength(p.sampleType.length);
    for (const id of s.locationId) {
      const loc = locations.get(Number(id));
      expect(loc).toBeDefined();
      for (const line of loc!.line) expect(functions.has(Number(line.functionId))).toBe(true);
    }
  }
}

/** Every byte the sampled heap profile stands for: each node's selfSize, summed over the tree. */
function sampledBytes(node: SamplingHeapProfileNode): number {
  return node.selfSize + node.children.reduce((a, c) => a + sampledBytes(c), 0);
}

function burnCpu(ms: number): number {
  const end = Date.now() + ms;
  let x = 0;
  while (Date.now() < end) for (let i = 0; i < 1e4; i++) x += Math.sqrt(i * x + 1);
  return x;
}

describe('CPU profile to pprof', () => {
  it('has samples/count and cpu/nanoseconds, samples, functions and the function that burnt the CPU', async () => {
    const profiling = await startCpuProfile(500);
    burnCpu(300);
    const profile = await profiling.stop();
    const p = decode(encodePprof(cpuProfileToPprof(profile, { startedAt: profiling.startedAt, comments: ['test'] })));

    expect(p.sampleType.map((t) => `${str(p, t.type)}/${str(p, t.unit)}`)).toEqual(['samples/count', 'cpu/nanoseconds']);
    expect(`${str(p, p.periodType!.type)}/${str(p, p.periodType!.unit)}`).toBe('cpu/nanoseconds');
    expect(str(p, p.defaultSampleType)).toBe('cpu');
    expect(p.sample.length).toBeGreaterThan(0);
    expect(p.function.length).toBeGreaterThan(0);
    expectWellFormed(p);
    const names = p.function.map((f) => str(p, f.name));
    expect(names).toContain('burnCpu');
    expect(names).not.toContain('(idle)');
    const cpuNs = p.sample.reduce((a, s) => a + Number(s.value[1]), 0);
    // At least most of the 300 ms burnt is in the profile (the machine may be busy with other work).
    expect(cpuNs).toBeGreaterThan(150e6);
    expect(Number(p.timeNanos)).toBeGreaterThan(1.6e18);
    expect(p.comment.map((c) => str(p, c))).toEqual(['test']);
  });

  it('refuses a second CPU profile while one runs', async () => {
    const first = await startCpuProfile();
    try {
      await expect(startCpuProfile()).rejects.toBeInstanceOf(ProfilerBusyError);
    } finally {
      await first.stop();
    }
    const again = await startCpuProfile();
    await again.stop();
  });
});

describe('heap profile to pprof', () => {
  it('an allocation profile (collected objects kept) has alloc_samples/count and alloc_space/bytes matching the V8 profile', async () => {
    const sampling = await startHeapSampling({ samplingInterval: 4096, includeCollected: true });
    const kept: string[][] = [];
    for (let i = 0; i < 2000; i++) kept.push(Array.from({ length: 20 }, (_, j) => `value ${i} ${j}`));
    kept.length = 0;
    const profile = await sampling.stop();
    const p = decode(encodePprof(heapProfileToPprof(profile, 'alloc', { startedAt: sampling.startedAt, samplingInterval: 4096 })));

    expect(p.sampleType.map((t) => `${str(p, t.type)}/${str(p, t.unit)}`)).toEqual(['alloc_samples/count', 'alloc_space/bytes']);
    expect(str(p, p.defaultSampleType)).toBe('alloc_space');
    expect(Number(p.period)).toBe(4096);
    expect(p.sample.length).toBeGreaterThan(0);
    expect(p.function.length).toBeGreaterThan(0);
    expectWellFormed(p);
    const bytes = p.sample.reduce((a, s) => a + Number(s.value[1]), 0);
    expect(bytes).toBe(sampledBytes(profile.head));
    // 40 000 strings of ~20 characters and their arrays: well over a megabyte, all collected since.
    expect(bytes).toBeGreaterThan(1_000_000);
  });

  it('refuses a second heap sampler while one runs', async () => {
    const first = await startHeapSampling();
    try {
      await expect(startHeapSampling()).rejects.toBeInstanceOf(ProfilerBusyError);
      const snapshot = await first.snapshot();
      expect(snapshot.head.callFrame.functionName).toBe('(root)');
    } finally {
      await first.stop();
    }
  });
});
