// The parse step (RFC 6749 §3.2, Appendix B): the request body must be
// application/x-www-form-urlencoded in UTF-8; its parameters, duplicates not yet rejected.

import { OAuthError } from '../../ground/errors.js';
import { parseForm, type FormParams } from './form.js';
import type { OAuthRequest } from './context.js';

const FORM_TYPE = 'application/x-www-form-urlencoded';

/** True for the form media type with no charset, or UTF-8. */
export function isForm(contentType: string | undefined): boolean {
  if (contentType === FORM_TYPE) return true;
  if (!contentType) return false;
  const semi = contentType.indexOf(';');
  const media = (semi === -1 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
  if (media !== FORM_TYPE) return false;
  // A charset other than UTF-8 would change what the bytes mean (RFC 6749 Appendix B).
  const charset = /charset\s*=\s*"?([^";\s]+)/i.exec(contentType)?.[1];
  return charset === undefined || charset.toLowerCase() === 'utf-8';
}

/** Throws invalid_request unless the body is a UTF-8 form. */
export function checkFormType(contentType: string | undefined): void {
  if (!isForm(contentType)) {
    throw new OAuthError('invalid_request', 'The request body must be application/x-www-form-urlencoded (UTF-8).');
  }
}

/** The parse step: the request's form parameters. */
export function parseRequest(req: OAuthRequest): FormParams {
  checkFormType(req.contentType);
  return parseForm(req.body ?? '');
}
