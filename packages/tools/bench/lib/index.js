// @m2m-auth/tools/bench: the measuring and reporting helpers of the benchmarks, for a package that
// benchmarks its own modules (the server's bench/micro.js) and for tests of such benchmarks.

export { ALGS, rawCrypto, rawSignSeconds, SAMPLE_SIGNING_INPUT } from './crypto-floor.js';
export { measureAsync, measureSync, measureSyncInterleaved } from './measure.js';
export { checkTarget, floorRate, formatBytes, formatDuration, formatRate, formatRatio, table } from './report.js';
export { latencySummary, median, quantileSorted } from './stats.js';
export { firstJsonLine, startNode, stop } from './processes.js';
