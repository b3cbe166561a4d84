// application/x-www-form-urlencoded request bodies (RFC 6749 §3.2, Appendix B), parsed strictly:
// bad percent-encoding or invalid UTF-8 is an error, never a silently repaired value.

import { isAscii } from 'node:buffer';
import { OAuthError } from '../../ground/errors.js';

/** Parameters in request order; a name may carry several values until a step rejects repeats. */
export type FormParams = Map<string, string[]>;

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** One form-urlencoded name or value decoded (`+` is a space); throws invalid_request when malformed. */
export function decodeComponent(raw: string): string {
  if (raw.indexOf('%') === -1) return raw.indexOf('+') === -1 ? raw : raw.replace(/\+/g, ' ');
  try {
    // decodeURIComponent throws on malformed escapes and on escapes that are not valid UTF-8.
    return decodeURIComponent(raw.replace(/\+/g, ' '));
  } catch {
    throw new OAuthError('invalid_request', 'The request body is not valid application/x-www-form-urlencoded.', {
      detail: 'bad percent-encoding or invalid UTF-8 in a form field',
    });
  }
}

export function parseForm(body: Buffer | string): FormParams {
  let text: string;
  if (typeof body === 'string') {
    text = body;
  } else if (isAscii(body)) {
    text = body.toString('latin1');
  } else {
    try {
      text = utf8.decode(body);
    } catch {
      throw new OAuthError('invalid_request', 'The request body is not valid UTF-8.');
    }
  }
  const params: FormParams = new Map();
  if (text.length === 0) return params;
  let start = 0;
  while (start <= text.length) {
    let end = text.indexOf('&', start);
    if (end === -1) end = text.length;
    if (end > start) {
      const pair = text.slice(start, end);
      const eq = pair.indexOf('=');
      const name = decodeComponent(eq === -1 ? pair : pair.slice(0, eq));
      const value = eq === -1 ? '' : decodeComponent(pair.slice(eq + 1));
      // RFC 6749 §3.1: parameters sent without a value are treated as omitted.
      if (name.length > 0 && value.length > 0) {
        const existing = params.get(name);
        if (existing) existing.push(value);
        else params.set(name, [value]);
      }
    }
    start = end + 1;
  }
  return params;
}

const NONE: ReadonlySet<string> = new Set();

/**
 * RFC 6749 §3.1 and §3.2: request parameters MUST NOT be included more than once, except those
 * named in `repeatable` (the token endpoint's RFC 8707 `resource`, and `audience`).
 */
export function rejectRepeatedParams(params: FormParams, repeatable: ReadonlySet<string> = NONE): void {
  for (const [name, values] of params) {
    if (values.length > 1 && !repeatable.has(name)) {
      throw new OAuthError('invalid_request', `The "${safeName(name)}" parameter must not be repeated.`);
    }
  }
}

/** The single value of a parameter (call after rejectRepeatedParams). */
export function param(params: FormParams, name: string): string | undefined {
  return params.get(name)?.[0];
}

/** Parameter names are echoed in error descriptions; keep them short and printable. */
function safeName(name: string): string {
  return /^[A-Za-z0-9_.-]{1,64}$/.test(name) ? name : 'parameter';
}
