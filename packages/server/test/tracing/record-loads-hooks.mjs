// Module resolution hooks (node:module register): record which @opentelemetry modules a process
// imports, so a test can tell whether the OpenTelemetry SDK was loaded at all.
import { appendFileSync } from 'node:fs';

let file;

export async function initialize(data) {
  file = data.file;
}

export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  if (file && result.url.includes('@opentelemetry')) appendFileSync(file, `${result.url}\n`);
  return result;
}
