// The relative links of Markdown files and the anchors they point at, resolved as GitHub renders
// them: a link names a file (or folder) that exists, and its #anchor the slug of a heading of the
// target page (github-slugger: lower case, punctuation dropped, each space a hyphen, "-1", "-2", ...
// for repeated headings). Links to other sites (https:, mailto:) are not followed.

import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

/** A Markdown file's text without its fenced code blocks (their lines kept blank, so line numbers hold). */
export function withoutCodeBlocks(markdown: string): string {
  const lines = markdown.split('\n');
  let fence: string | null = null;
  return lines
    .map((line) => {
      const m = /^ {0,3}(`{3,}|~{3,})/.exec(line);
      if (fence === null && m) {
        fence = m[1]!;
        return '';
      }
      if (fence !== null) {
        if (m && m[1]!.startsWith(fence) && line.trim().replace(/[`~]/g, '') === '') fence = null;
        return '';
      }
      return line;
    })
    .join('\n');
}

/** The text of a heading as GitHub shows it: links as their text, HTML tags dropped. */
function headingText(raw: string): string {
  return raw
    .replace(/\s+#+\s*$/, '')
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/<[^>]+>/g, '')
    .trim();
}

/** The anchor GitHub gives a heading (github-slugger), before duplicates are numbered. */
export function slug(heading: string): string {
  return headingText(heading)
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
    .replace(/ /g, '-');
}

/** Every anchor of a Markdown page: its headings' slugs (repeats numbered) and explicit ids. */
export function anchors(markdown: string): Set<string> {
  const text = withoutCodeBlocks(markdown);
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const m of text.matchAll(/^ {0,3}#{1,6}[ \t]+(.+)$/gm)) {
    const base = slug(m[1]!);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  for (const m of text.matchAll(/<a\s+(?:id|name)="([^"]+)"/g)) out.add(m[1]!);
  return out;
}

export interface Link {
  file: string;
  line: number;
  target: string;
}

/** The link targets of a Markdown page outside code blocks and code spans: inline links, images, reference definitions. */
export function links(file: string, markdown: string): Link[] {
  const out: Link[] = [];
  withoutCodeBlocks(markdown)
    .split('\n')
    .forEach((line, i) => {
      const prose = line.replace(/(`+)[\s\S]*?\1/g, (span) => ' '.repeat(span.length));
      for (const m of prose.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) out.push({ file, line: i + 1, target: m[1]! });
      const def = /^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/.exec(prose);
      if (def) out.push({ file, line: i + 1, target: def[1]! });
      for (const m of prose.matchAll(/\bhref="([^"]+)"/g)) out.push({ file, line: i + 1, target: m[1]! });
    });
  return out;
}

/** What is wrong with each link of `files` (paths under `root`): "file:line: target: why". Empty when all resolve. */
export function brokenLinks(root: string, files: string[]): string[] {
  const problems: string[] = [];
  const anchorCache = new Map<string, Set<string>>();
  const anchorsOf = (path: string): Set<string> => {
    let set = anchorCache.get(path);
    if (!set) anchorCache.set(path, (set = anchors(readFileSync(path, 'utf8'))));
    return set;
  };
  for (const file of files) {
    const path = join(root, file);
    for (const link of links(file, readFileSync(path, 'utf8'))) {
      const where = `${file}:${link.line}: ${link.target}`;
      if (/^[a-z][a-z0-9+.-]*:/i.test(link.target) || link.target.startsWith('//')) continue;
      const hash = link.target.indexOf('#');
      const pathPart = decodeURI(hash === -1 ? link.target : link.target.slice(0, hash));
      const anchor = hash === -1 ? null : decodeURIComponent(link.target.slice(hash + 1));
      const target = pathPart === '' ? path : resolve(dirname(path), pathPart.split('?')[0]!);
      if (relative(root, target).startsWith('..')) {
        problems.push(`${where}: points outside the repository`);
        continue;
      }
      if (!existsSync(target)) {
        problems.push(`${where}: no such file`);
        continue;
      }
      if (anchor === null) continue;
      if (!target.endsWith('.md') || statSync(target).isDirectory()) {
        if (!/^L\d+(-L\d+)?$/.test(anchor)) problems.push(`${where}: an anchor into a file that is not Markdown`);
        continue;
      }
      if (!anchorsOf(target).has(anchor)) problems.push(`${where}: no heading with this anchor in ${relative(root, target)}`);
    }
  }
  return problems;
}
