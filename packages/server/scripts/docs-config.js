// Writes the configuration reference into docs/configuration.md: the table between
// <!-- config:start --> and <!-- config:end --> is the one the schema generates (configReference()).
// Run it after changing src/config/schema.ts; test/config checks that the committed page matches.
//
//   npm run docs:config                      (builds, then runs this file)
//   node scripts/docs-config.js [--check] [--page PATH]
//
// --check changes nothing and exits 1 when the page differs from the schema; --page names another
// page than the repository's docs/configuration.md.

import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { configReference } from '../dist/config/schema.js';

const { values } = parseArgs({
  options: {
    check: { type: 'boolean', default: false },
    page: { type: 'string', default: fileURLToPath(new URL('../../../docs/configuration.md', import.meta.url)) },
  },
});

const MARKERS = /(<!-- config:start -->\n)[\s\S]*?(\n<!-- config:end -->)/;
const page = readFileSync(values.page, 'utf8');
if (!MARKERS.test(page)) {
  console.error(`${values.page} has no <!-- config:start --> ... <!-- config:end --> markers`);
  process.exit(2);
}
const generated = page.replace(MARKERS, (_, start, end) => `${start}${configReference()}${end}`);
if (generated === page) {
  console.log(`${values.page}: the configuration reference is up to date`);
} else if (values.check) {
  console.error(`${values.page}: the configuration reference differs from the schema; run npm run docs:config`);
  process.exit(1);
} else {
  writeFileSync(values.page, generated);
  console.log(`${values.page}: the configuration reference written from the schema`);
}
