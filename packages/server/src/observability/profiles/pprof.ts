// V8 profiles as pprof (github.com/google/pprof/proto/profile.proto), gzipped, for `go tool pprof`
// and speedscope: one Location per profile node, one Function per distinct (name, file, line).

import { gzipSync } from 'node:zlib';
import { Function as PprofFunction, Location, Profile, Sample, StringTable, ValueType } from 'pprof-format';
import type { CallFrame, CpuProfile, CpuProfileNode, SamplingHeapProfile, SamplingHeapProfileNode } from './inspector.js';

/**
 * Time each sample stands for, in microseconds: the delta to the next sample (the last one gets
 * the mean interval). Returns per-node totals.
 */
export function selfTimeByNode(profile: CpuProfile): Map<number, number> {
  const out = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  const n = samples.length;
  const mean = n > 0 ? (profile.endTime - profile.startTime) / n : 0;
  for (let i = 0; i < n; i++) {
    const next = deltas[i + 1];
    const us = next !== undefined && next >= 0 ? next : mean;
    out.set(samples[i]!, (out.get(samples[i]!) ?? 0) + us);
  }
  return out;
}

/** Leaf-first stacks of every node of a CPU profile (the root excluded). */
export function cpuStacks(profile: CpuProfile): Map<number, CpuProfileNode[]> {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const stacks = new Map<number, CpuProfileNode[]>();
  const stackOf = (id: number): CpuProfileNode[] => {
    const known = stacks.get(id);
    if (known) return known;
    const node = byId.get(id)!;
    const up = parent.get(id);
    const stack = node.callFrame.functionName === '(root)' ? [] : [node, ...(up === undefined ? [] : stackOf(up))];
    stacks.set(id, stack);
    return stack;
  };
  for (const n of profile.nodes) stackOf(n.id);
  return stacks;
}

class Tables {
  readonly strings = new StringTable();
  readonly functions: PprofFunction[] = [];
  readonly locations: Location[] = [];
  readonly #functionIds = new Map<string, number>();

  str(s: string): number {
    return this.strings.dedup(s);
  }

  functionId(frame: CallFrame): number {
    const name = frame.functionName || '(anonymous)';
    const key = `${name}\u0000${frame.url}\u0000${frame.lineNumber}`;
    let id = this.#functionIds.get(key);
    if (id === undefined) {
      id = this.functions.length + 1;
      this.functions.push(new PprofFunction({
        id, name: this.str(name), systemName: this.str(name), filename: this.str(frame.url), startLine: Math.max(0, frame.lineNumber + 1),
      }));
      this.#functionIds.set(key, id);
    }
    return id;
  }

  /** A new location for one profile node (its own line within the function). */
  location(frame: CallFrame): number {
    const id = this.locations.length + 1;
    this.locations.push(new Location({ id, line: [{ functionId: this.functionId(frame), line: Math.max(0, frame.lineNumber + 1) }] }));
    return id;
  }
}

export interface PprofMeta {
  /** Wall-clock start of the profile. */
  startedAt: Date;
  comments?: string[];
}

/**
 * A CPU profile with sample types samples/count and cpu/nanoseconds. Idle samples are left out
 * (pprof shows where CPU went); the .cpuprofile keeps them.
 */
export function cpuProfileToPprof(profile: CpuProfile, meta: PprofMeta): Profile {
  const t = new Tables();
  const time = selfTimeByNode(profile);
  const stacks = cpuStacks(profile);
  const locationOf = new Map<number, number>();
  const samples: Sample[] = [];
  const sampleTypes = [
    new ValueType({ type: t.str('samples'), unit: t.str('count') }),
    new ValueType({ type: t.str('cpu'), unit: t.str('nanoseconds') }),
  ];
  const counts = new Map<number, number>();
  for (const id of profile.samples ?? []) counts.set(id, (counts.get(id) ?? 0) + 1);
  for (const [id, us] of time) {
    const stack = stacks.get(id) ?? [];
    if (stack.length === 0 || stack[0]!.callFrame.functionName === '(idle)') continue;
    const locationIds = stack.map((node) => {
      let loc = locationOf.get(node.id);
      if (loc === undefined) {
        loc = t.location(node.callFrame);
        locationOf.set(node.id, loc);
      }
      return loc;
    });
    samples.push(new Sample({ locationId: locationIds, value: [counts.get(id) ?? 0, Math.round(us * 1000)] }));
  }
  const n = profile.samples?.length ?? 0;
  const periodNs = n > 0 ? Math.round(((profile.endTime - profile.startTime) * 1000) / n) : 0;
  return new Profile({
    sampleType: sampleTypes,
    sample: samples,
    location: t.locations,
    function: t.functions,
    stringTable: t.strings,
    timeNanos: BigInt(meta.startedAt.getTime()) * 1_000_000n,
    durationNanos: Math.round((profile.endTime - profile.startTime) * 1000),
    periodType: new ValueType({ type: t.str('cpu'), unit: t.str('nanoseconds') }),
    period: periodNs,
    comment: (meta.comments ?? []).map((c) => t.str(c)),
    defaultSampleType: t.str('cpu'),
  });
}

export type HeapProfileKind = 'alloc' | 'inuse';

/**
 * A sampling heap profile with sample types <kind>_samples/count (sampled allocations at that
 * stack) and <kind>_space/bytes (V8's estimate of the bytes they stand for). `alloc` when the
 * sampler kept collected objects (every allocation), `inuse` when it did not (what is alive).
 */
export function heapProfileToPprof(profile: SamplingHeapProfile, kind: HeapProfileKind, meta: PprofMeta & { samplingInterval: number }): Profile {
  const t = new Tables();
  const sampleTypes = [
    new ValueType({ type: t.str(`${kind}_samples`), unit: t.str('count') }),
    new ValueType({ type: t.str(`${kind}_space`), unit: t.str('bytes') }),
  ];
  const counts = new Map<number, number>();
  for (const s of profile.samples ?? []) counts.set(s.nodeId, (counts.get(s.nodeId) ?? 0) + 1);
  const samples: Sample[] = [];
  const walk = (node: SamplingHeapProfileNode, parentStack: number[]): void => {
    const isRoot = node.callFrame.functionName === '(root)' && parentStack.length === 0 && node === profile.head;
    const stack = isRoot ? parentStack : [t.location(node.callFrame), ...parentStack];
    if (node.selfSize > 0 && stack.length > 0) {
      samples.push(new Sample({ locationId: stack, value: [counts.get(node.id) ?? 0, node.selfSize] }));
    }
    for (const child of node.children) walk(child, stack);
  };
  walk(profile.head, []);
  return new Profile({
    sampleType: sampleTypes,
    sample: samples,
    location: t.locations,
    function: t.functions,
    stringTable: t.strings,
    timeNanos: BigInt(meta.startedAt.getTime()) * 1_000_000n,
    periodType: new ValueType({ type: t.str('space'), unit: t.str('bytes') }),
    period: meta.samplingInterval,
    comment: (meta.comments ?? []).map((c) => t.str(c)),
    defaultSampleType: t.str(`${kind}_space`),
  });
}

/** The gzipped protobuf, as `go tool pprof` reads it. */
export function encodePprof(profile: Profile): Buffer {
  return gzipSync(profile.encode());
}
