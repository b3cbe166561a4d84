// What a grant is (RFC 6749 §4): given the authenticated client and the request's parameters, the
// scope and audiences of the token, or an OAuthError.

import type { ClientRecord } from '../../../ground/records.js';
import type { FormParams } from '../../request/form.js';

export interface GrantContext {
  client: ClientRecord;
  params: FormParams;
}

export interface GrantResult {
  scope: string[];
  audience: string[];
}

export type Grant = (ctx: GrantContext) => GrantResult;
