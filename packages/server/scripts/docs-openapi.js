// Writes docs/openapi.json, the OpenAPI 3.1 document of the admin listener, from the route table
// and schemas the admin routes validate with (src/admin/openapi/). Run it after changing an admin
// route or a client field; test/admin/openapi.test.ts checks that the committed file matches.
//
//   npm run docs:openapi                     (builds, then runs this file)
//   node scripts/docs-openapi.js [--check] [--out PATH]
//
// --check changes nothing and exits 1 when the file differs from what the code generates; --out
// names another file than the repository's docs/openapi.json.

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { openApiJson } from '../dist/admin/openapi/document.js';

const { values } = parseArgs({
  options: {
    check: { type: 'boolean', default: false },
    out: { type: 'string', default: fileURLToPath(new URL('../../../docs/openapi.json', import.meta.url)) },
  },
});

const generated = openApiJson();
const current = existsSync(values.out) ? readFileSync(values.out, 'utf8') : undefined;
if (current === generated) {
  console.log(`${values.out}: the OpenAPI document is up to date`);
} else if (values.check) {
  console.error(`${values.out}: the OpenAPI document differs from the code; run npm run docs:openapi`);
  process.exit(1);
} else {
  writeFileSync(values.out, generated);
  console.log(`${values.out}: the OpenAPI document written from the admin routes' schemas`);
}
