// client_secret_basic: RFC 6749 §2.3.1 with RFC 7617 Basic credentials, where the client_id and
// secret are form-urlencoded before base64 (RFC 6749 Appendix B).

import { OAuthError } from '../../ground/errors.js';
import { decodeComponent } from '../request/form.js';

export interface BasicCredentials {
  clientId: string;
  clientSecret: string;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

function malformed(detail: string): OAuthError {
  return new OAuthError('invalid_request', 'The Authorization header is malformed.', { detail });
}

function formDecode(raw: string): string {
  try {
    return decodeComponent(raw);
  } catch {
    throw malformed('bad percent-encoding in Basic credentials');
  }
}

/** True when the header uses the Basic scheme (case-insensitive, RFC 7235 §2.1). */
export function isBasic(header: string): boolean {
  return header.length > 6 && header.slice(0, 6).toLowerCase() === 'basic ';
}

export function parseBasicAuthorization(header: string): BasicCredentials {
  const encoded = header.slice(6).trim();
  if (encoded.length === 0 || encoded.length % 4 !== 0 || !BASE64.test(encoded)) {
    throw malformed('Basic credentials are not base64');
  }
  let decoded: string;
  try {
    decoded = utf8.decode(Buffer.from(encoded, 'base64'));
  } catch {
    throw malformed('Basic credentials are not UTF-8');
  }
  const colon = decoded.indexOf(':');
  if (colon === -1) throw malformed('Basic credentials have no colon');
  const clientId = formDecode(decoded.slice(0, colon));
  const clientSecret = formDecode(decoded.slice(colon + 1));
  if (clientId.length === 0 || clientSecret.length === 0) throw malformed('empty client_id or secret in Basic credentials');
  return { clientId, clientSecret };
}
