// The words of a refused write, the same on every backend (StorageConflictError's message).

import type { ClientRecord } from '../ground/records.js';
import type { ConflictReason } from './types.js';

export function conflictMessage(client: ClientRecord, reason: ConflictReason): string {
  const f = client.federation;
  if (reason === 'federated_identity' && f) {
    return `another client already has federated_subject ${JSON.stringify(f.subject)} at trust ${JSON.stringify(f.trust)}`;
  }
  if (reason === 'unknown_trust' && f) return `trust ${JSON.stringify(f.trust)} does not exist`;
  return `client ${client.clientId} already exists`;
}

export function trustConflictMessage(name: string, reason: ConflictReason): string {
  if (reason === 'trust_in_use') return `trust ${JSON.stringify(name)} is named by clients`;
  return `trust ${JSON.stringify(name)} already exists`;
}
