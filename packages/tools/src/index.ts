// @m2m-auth/tools: the load generator and the profiler of m2m-auth. They talk to a server over HTTP
// and its admin API only, and start one as a child process (with the command they are given) when
// there is none to talk to. The `m2m-auth loadtest` and `m2m-auth profile` commands load them.

export {
  runLoadTest, LoadTestError, LOAD_TEST_MODES, LOADTEST_AUDIENCE,
  type LoadTestMode, type LoadTestOptions, type LoadTestProgress, type LoadTestResult, type ClientCredentials,
} from './loadtest/run.js';
export { startServerProcess, type ServerProcess, type ServerProcessOptions } from './loadtest/server-process.js';
export { formatBytes, formatInt, formatMs, formatPercent, progressLine, resultLines } from './loadtest/format.js';
export type { LatencySummary, HistogramBin } from './loadtest/latency.js';
export {
  runProfile, evaluateKpis, KPI_TARGETS, MAX_PROFILED_LOAD_MS, ProfileError,
  type ProfileOptions, type ProfileResult, type ProfileData, type Kpi, type ProfileFile,
} from './profiling/profile-run.js';
export { renderMarkdownReport } from './profiling/report-md.js';
export { compareResults, comparisonLines, readResults, CompareError, type Comparison, type ComparisonRow } from './profiling/compare.js';
export { renderHtmlReport } from './profiling/report-html.js';
