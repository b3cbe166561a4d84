// Preloaded with `node --import` by test/tracing/otlp-export.test.ts: registers the hooks that
// append every resolved @opentelemetry module URL to the file in M2M_AUTH_TEST_RECORD_LOADS.
import { register } from 'node:module';

register('./record-loads-hooks.mjs', import.meta.url, { data: { file: process.env.M2M_AUTH_TEST_RECORD_LOADS } });
