// Admin API request checks: query strings, bodies and path parameters, each failing with a 4xx
// whose message names the field, so bad input never becomes a 500.

import { describeJsonType, isPlainObject } from '../ground/json.js';

/** A client mistake in an admin request; `message` is sent to the caller. */
export class AdminRequestError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.name = 'AdminRequestError';
    this.status = status;
  }
}

function bad(message: string): never {
  throw new AdminRequestError(400, message);
}

/** The query as single strings; unknown or repeated parameters are rejected. */
export function readQuery(query: unknown, allowed: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  if (!isPlainObject(query)) return out;
  for (const [name, value] of Object.entries(query)) {
    if (!allowed.includes(name)) {
      bad(`Unknown query parameter ${JSON.stringify(name)}${allowed.length ? ` (allowed: ${allowed.join(', ')})` : ''}`);
    }
    if (typeof value !== 'string') bad(`Query parameter ${name} must appear once`);
    out[name] = value;
  }
  return out;
}

/** A whole number from the query, within bounds. */
export function queryInt(raw: string | undefined, name: string, min: number, max: number, fallback: number): number {
  if (raw === undefined) return fallback;
  if (!/^\d{1,9}$/.test(raw)) bad(`${name} must be a whole number between ${min} and ${max}`);
  const n = Number(raw);
  if (n < min || n > max) bad(`${name} must be a whole number between ${min} and ${max}`);
  return n;
}

/**
 * Member names that reach an object's prototype or constructor when a parsed body is copied or
 * merged carelessly (JSON.parse keeps "__proto__" as an ordinary member, so a later
 * `Object.assign` or a check with `in` would see through it).
 */
const RESERVED_MEMBERS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * Refuses (400) a parsed JSON body with a reserved member name at any depth, naming where.
 * Iterative, so a deeply nested body is refused or accepted, never a stack overflow.
 */
export function refuseReservedMembers(body: unknown): void {
  const stack: Array<[unknown, string]> = [[body, '']];
  while (stack.length > 0) {
    const [v, path] = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push([v[i], `${path}[${i}]`]);
      continue;
    }
    const names = Object.keys(v);
    for (let i = names.length - 1; i >= 0; i--) {
      const name = names[i]!;
      const at = path === '' ? name : `${path}.${name}`;
      if (RESERVED_MEMBERS.has(name)) {
        bad(`The request body has a member named ${JSON.stringify(name)} (at ${at}); "__proto__", "constructor" and "prototype" are refused at any depth`);
      }
      stack.push([(v as Record<string, unknown>)[name], at]);
    }
  }
}

/** A required JSON object body. */
export function objectBody(body: unknown): Record<string, unknown> {
  if (body === undefined) bad('The request body must be a JSON object (Content-Type: application/json)');
  if (!isPlainObject(body)) bad(`The request body must be a JSON object, got ${describeJsonType(body)}`);
  return body;
}

/** An optional JSON object body limited to `allowed` members; no body reads as {}. */
export function optionalBody(body: unknown, allowed: readonly string[]): Record<string, unknown> {
  if (body === undefined) return {};
  const obj = objectBody(body);
  for (const name of Object.keys(obj)) {
    if (!allowed.includes(name)) {
      bad(allowed.length === 0
        ? `This endpoint takes no body members; got ${JSON.stringify(name)}`
        : `Unknown field ${JSON.stringify(name)} (allowed: ${allowed.join(', ')})`);
    }
  }
  return obj;
}

/** A non-negative whole number of seconds, or undefined when absent. */
export function optionalSeconds(v: unknown, name: string): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    bad(`${name} must be a non-negative whole number of seconds, got ${typeof v === 'number' ? String(v) : describeJsonType(v)}`);
  }
  return v;
}

/** true or false, or undefined when absent. */
export function optionalBoolean(v: unknown, name: string): boolean | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') bad(`${name} must be true or false, got ${typeof v === 'string' ? 'a string' : describeJsonType(v)}`);
  return v;
}
