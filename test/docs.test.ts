// The documentation holds together: every relative link and #anchor of the README, the docs/ pages,
// the packages' READMEs, examples/, BENCHMARKS.md, SECURITY.md and CHANGELOG.md resolves (a file
// that exists, a heading GitHub gives that anchor), and the README is still a short page that starts
// with the two commands. The checker itself is shown to catch a broken link and a broken anchor.

import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { anchors, brokenLinks, links, slug } from './markdown-links.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** The Markdown files of the repository that people read (not node_modules, not build output). */
function documentation(): string[] {
  const files = readdirSync(ROOT).filter((f) => f.endsWith('.md'));
  const walk = (dir: string): void => {
    for (const entry of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory() && entry.name !== 'node_modules' && entry.name !== 'dist' && !entry.name.startsWith('.')) walk(path);
      else if (entry.isFile() && entry.name.endsWith('.md')) files.push(path);
    }
  };
  walk('docs');
  walk('examples');
  for (const pkg of readdirSync(join(ROOT, 'packages'))) files.push(`packages/${pkg}/README.md`);
  return files.sort();
}

describe('the documentation', () => {
  it('covers the README, the docs/ pages, the packages, examples/ and the project files', () => {
    const files = documentation();
    for (const f of ['README.md', 'docs/README.md', 'docs/configuration.md', 'docs/deployment.md', 'BENCHMARKS.md', 'SECURITY.md', 'CHANGELOG.md', 'packages/sdk/README.md', 'packages/server/README.md', 'packages/tools/README.md', 'examples/README.md']) {
      expect(files).toContain(f);
    }
  });

  it('has no broken relative link or anchor', () => {
    expect(brokenLinks(ROOT, documentation())).toEqual([]);
  });

  it('links every docs/ page from the README and from the docs index', () => {
    const readme = links('README.md', readFileSync(join(ROOT, 'README.md'), 'utf8')).map((l) => l.target.split('#')[0]);
    const index = links('docs/README.md', readFileSync(join(ROOT, 'docs/README.md'), 'utf8')).map((l) => l.target.split('#')[0]);
    for (const page of readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md') && f !== 'README.md')) {
      expect(readme, `README.md links docs/${page}`).toContain(`docs/${page}`);
      expect(index, `docs/README.md links ${page}`).toContain(page);
    }
  });

  it('keeps the README a short page with the two commands and npm test', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    expect(readme).toMatch(/^```sh\nnpm install\nnpm start\n```$/m);
    expect(readme).toMatch(/^```sh\nnpm test\n```$/m);
    expect(readme.split('\n').length).toBeLessThanOrEqual(300);
  });
});

describe('the link checker', () => {
  const dir = mkdtempSync(join(tmpdir(), 'm2m-auth-links-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const write = (path: string, text: string): void => {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  };

  it('gives headings the anchors GitHub gives them', () => {
    expect(slug('Compose: the full local stack')).toBe('compose-the-full-local-stack');
    expect(slug('SDK: getting and verifying tokens')).toBe('sdk-getting-and-verifying-tokens');
    expect(slug('Micro-benchmarks: `npm run bench` (packages/server/bench/micro.js)')).toBe('micro-benchmarks-npm-run-bench-packagesserverbenchmicrojs');
    expect(slug('[Unreleased]')).toBe('unreleased');
    expect(slug('1. The authorization server')).toBe('1-the-authorization-server');
    expect([...anchors('# A\n## Notes\n```sh\n# not a heading\n```\n### Notes\n')]).toEqual(['a', 'notes', 'notes-1']);
  });

  it('finds a missing file, a missing anchor and an anchor of a missing heading in the same page', () => {
    write('README.md', '# Top\n\nSee [the guide](docs/guide.md), [setup](docs/setup.md#install), [gone](docs/gone.md) and [here](#top).\n');
    write('docs/setup.md', '# Setup\n\n## Install it\n\nBack to [the top](../README.md#top), [nowhere](#install).\n\n```md\n[in code](missing.md)\n```\n');
    expect(brokenLinks(dir, ['README.md', 'docs/setup.md'])).toEqual([
      'README.md:3: docs/guide.md: no such file',
      'README.md:3: docs/setup.md#install: no heading with this anchor in docs/setup.md',
      'README.md:3: docs/gone.md: no such file',
      'docs/setup.md:5: #install: no heading with this anchor in docs/setup.md',
    ]);
    write('docs/guide.md', '# Guide\n');
    write('docs/gone.md', '# Gone\n');
    write('docs/setup.md', '# Setup\n\n## Install\n\nBack to [the top](../README.md#top), [here](#install).\n');
    expect(brokenLinks(dir, ['README.md', 'docs/setup.md'])).toEqual([]);
  });
});
