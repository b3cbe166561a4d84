// RFC 8705 §2.1.2: the certificate names a tls_client_auth client registers (one subject DN, DNS
// name, URI, IP address or e-mail address) and how a presented certificate is matched against
// them: the DN as RFC 4514 text compared attribute by attribute (case and spacing ignored, RFC
// 4517 caseIgnoreMatch near enough), DNS names without case, IP addresses in one spelling.

import type { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import type { TlsClientAuthField } from '../ground/names.js';

/** One attribute of a distinguished name: its type (upper-case short name or OID) and value. */
type Ava = [type: string, value: string];

const TYPE_ALIASES: Record<string, string> = { E: 'EMAILADDRESS', EMAIL: 'EMAILADDRESS', S: 'ST', '2.5.4.3': 'CN', '2.5.4.6': 'C', '2.5.4.10': 'O', '2.5.4.11': 'OU' };

/** RFC 4514 §3 unescaping of an attribute value: `\` and a special character, or `\` and two hex digits (UTF-8 bytes). */
function unescapeValue(raw: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!;
    if (c === '\\' && i + 1 < raw.length) {
      const hex = raw.slice(i + 1, i + 3);
      if (/^[0-9A-Fa-f]{2}$/.test(hex)) {
        bytes.push(parseInt(hex, 16));
        i += 2;
        continue;
      }
      i += 1;
      bytes.push(...Buffer.from(raw[i]!, 'utf8'));
      continue;
    }
    bytes.push(...Buffer.from(c, 'utf8'));
  }
  return Buffer.from(bytes).toString('utf8');
}

/** Splits on `sep` where it is not escaped by a backslash. */
function splitUnescaped(s: string, sep: string): string[] {
  const out: string[] = [];
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '\\') i += 1;
    else if (s[i] === sep) {
      out.push(s.slice(start, i));
      start = i + 1;
    }
  }
  out.push(s.slice(start));
  return out;
}

function ava(part: string): Ava | undefined {
  const eq = part.indexOf('=');
  if (eq <= 0) return undefined;
  const type = part.slice(0, eq).trim().toUpperCase();
  if (!/^([A-Z][A-Z0-9-]*|\d+(\.\d+)+)$/.test(type)) return undefined;
  return [TYPE_ALIASES[type] ?? type, unescapeValue(part.slice(eq + 1).trim())];
}

/** A relative distinguished name: its attributes, sorted (RFC 4514 §2.2: a set, in any order). */
type Rdn = Ava[];

function rdn(text: string): Rdn | undefined {
  const avas: Ava[] = [];
  for (const part of splitUnescaped(text, '+')) {
    const a = ava(part);
    if (a === undefined) return undefined;
    avas.push(a);
  }
  const key = ([t, v]: Ava) => `${t}=${normalValue(v)}`;
  return avas.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

/**
 * An RFC 4514 distinguished name as its RDNs, most significant (C, O) first, the order a
 * certificate stores them; undefined when it is not one.
 */
export function parseDistinguishedName(dn: string): Rdn[] | undefined {
  const rdns: Rdn[] = [];
  for (const text of splitUnescaped(dn, ',')) {
    const r = rdn(text);
    if (r === undefined) return undefined;
    rdns.push(r);
  }
  return rdns.reverse();
}

/** The subject of a certificate as Node prints it (an RDN a line, `+` between its attributes, RFC 4514 escapes, most significant first). */
function certificateSubject(cert: X509Certificate): Rdn[] | undefined {
  const rdns: Rdn[] = [];
  for (const line of cert.subject.split('\n')) {
    if (line === '') continue;
    const r = rdn(line);
    if (r === undefined) return undefined;
    rdns.push(r);
  }
  return rdns;
}

/** RFC 4517 caseIgnoreMatch, near enough: spaces folded, case ignored. */
function normalValue(v: string): string {
  return v.trim().replace(/\s+/g, ' ').toLowerCase();
}

function sameDistinguishedName(a: Rdn[], b: Rdn[]): boolean {
  return a.length === b.length && a.every((r, i) => {
    const other = b[i]!;
    return r.length === other.length && r.every(([t, v], j) => t === other[j]![0] && normalValue(v) === normalValue(other[j]![1]));
  });
}

/**
 * The subjectAltName entries of a certificate as [type, value] (types as Node names them: DNS,
 * URI, IP Address, email). Node quotes a value holding a separator or quote as a JSON string.
 */
export function subjectAltNames(cert: X509Certificate): Array<[string, string]> {
  const text = cert.subjectAltName;
  if (text === undefined) return [];
  const out: Array<[string, string]> = [];
  let i = 0;
  while (i < text.length) {
    const colon = text.indexOf(':', i);
    if (colon === -1) break;
    const type = text.slice(i, colon);
    let value: string;
    let end: number;
    if (text[colon + 1] === '"') {
      // A JSON string: find its closing quote.
      let j = colon + 2;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      try {
        value = JSON.parse(text.slice(colon + 1, j + 1)) as string;
      } catch {
        return out;
      }
      end = j + 1;
    } else {
      const comma = text.indexOf(', ', colon + 1);
      end = comma === -1 ? text.length : comma;
      value = text.slice(colon + 1, end);
    }
    out.push([type, value]);
    i = text.startsWith(', ', end) ? end + 2 : end + 1;
  }
  return out;
}

/** An IP address in one spelling: IPv6 compressed and lower-case (URL's canonical form). */
export function canonicalIp(ip: string): string | undefined {
  const family = isIP(ip);
  if (family === 4) return ip;
  if (family === 6) return new URL(`http://[${ip}]/`).hostname.slice(1, -1);
  return undefined;
}

/** An e-mail address with its domain lower-cased (the local part is the mailbox's to interpret). */
function canonicalEmail(email: string): string {
  const at = email.lastIndexOf('@');
  return at === -1 ? email : email.slice(0, at) + email.slice(at).toLowerCase();
}

const SAN_TYPES: Record<Exclude<TlsClientAuthField, 'tls_client_auth_subject_dn'>, { type: string; same: (registered: string, presented: string) => boolean }> = {
  tls_client_auth_san_dns: { type: 'DNS', same: (r, p) => r.toLowerCase() === p.toLowerCase() },
  tls_client_auth_san_uri: { type: 'URI', same: (r, p) => r === p },
  tls_client_auth_san_ip: { type: 'IP Address', same: (r, p) => canonicalIp(r) === canonicalIp(p) },
  tls_client_auth_san_email: { type: 'email', same: (r, p) => canonicalEmail(r) === canonicalEmail(p) },
};

/** True when the certificate carries the registered value in the registered field (RFC 8705 §2.1.2). */
export function certificateNames(cert: X509Certificate, field: TlsClientAuthField, value: string): boolean {
  if (field === 'tls_client_auth_subject_dn') {
    const registered = parseDistinguishedName(value);
    const subject = certificateSubject(cert);
    return registered !== undefined && subject !== undefined && sameDistinguishedName(registered, subject);
  }
  const { type, same } = SAN_TYPES[field];
  return subjectAltNames(cert).some(([t, v]) => t === type && same(value, v));
}


const MAX_NAME_LENGTH = 1000;
// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001F\u007F-\u009F]/;
/** A DNS name of letters, digits, '-' and '.' labels (a leading '*.' as certificates write wildcards). */
const DNS_NAME = /^(\*\.)?([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;

/**
 * Checks a registered value of `field`; returns the reason it is not one, or undefined when it
 * is. The value is kept as written (matching normalises both sides).
 */
export function tlsClientAuthValueProblem(field: TlsClientAuthField, value: string): string | undefined {
  if (value.length === 0 || value.length > MAX_NAME_LENGTH) return `must be 1 to ${MAX_NAME_LENGTH} characters`;
  if (CONTROL_CHARS.test(value)) return 'must not contain control characters';
  switch (field) {
    case 'tls_client_auth_subject_dn':
      return parseDistinguishedName(value) === undefined ? 'must be a distinguished name as RFC 4514 writes it, e.g. "CN=billing,O=Example,C=US"' : undefined;
    case 'tls_client_auth_san_dns':
      return DNS_NAME.test(value) && value.length <= 253 ? undefined : 'must be a DNS name';
    case 'tls_client_auth_san_uri':
      return URL.canParse(value) && /^[A-Za-z][A-Za-z0-9+.-]*:/.test(value) && !/\s/.test(value) ? undefined : 'must be an absolute URI';
    case 'tls_client_auth_san_ip':
      return canonicalIp(value) === undefined ? 'must be an IPv4 or IPv6 address' : undefined;
    case 'tls_client_auth_san_email':
      return /^[^\s@]+@[^\s@]+$/.test(value) ? undefined : 'must be an e-mail address';
  }
}
