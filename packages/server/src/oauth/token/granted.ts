// The grant step: a grant's answer for one client record, with what every token of it shares: the
// scope string and the leading claims (RFC 9068 §2.2: iss, sub, aud, client_id, scope, then the
// client's custom claims) as JSON without the closing brace; each token appends exp, iat and jti.

import type { ClientRecord } from '../../ground/records.js';
import type { FormParams } from '../request/form.js';
import type { AccessTokenClaims } from '../access-token.js';
import type { Grant, GrantResult } from './grants/grant.js';

export interface Granted {
  /** The record the grant was run for. */
  client: ClientRecord;
  result: GrantResult;
  /** result.scope, space-delimited (RFC 6749 §3.3). */
  scope: string;
  claimsJson: string;
}

/** The custom claims of a record as JSON members after a comma ("" for none), written once per record. */
const claimsMembers = new WeakMap<ClientRecord, string>();

function customClaimsJson(client: ClientRecord): string {
  let members = claimsMembers.get(client);
  if (members === undefined) {
    // The registry refused reserved names, so no member here repeats one written before it.
    const json = JSON.stringify(client.claims);
    members = json.length > 2 ? `,${json.slice(1, -1)}` : '';
    claimsMembers.set(client, members);
  }
  return members;
}

export function grantAnswer(issuer: string, grant: Grant, client: ClientRecord, params: FormParams): Granted {
  const result = grant({ client, params });
  const scope = result.scope.join(' ');
  const leading: Omit<AccessTokenClaims, 'exp' | 'iat' | 'jti'> = {
    iss: issuer,
    sub: client.clientId,
    aud: result.audience.length === 1 ? result.audience[0]! : result.audience,
    client_id: client.clientId,
  };
  if (scope.length > 0) leading.scope = scope;
  return { client, result, scope, claimsJson: JSON.stringify(leading).slice(0, -1) + customClaimsJson(client) };
}
