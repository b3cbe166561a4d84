// Writes acknowledged only once the other workers of this server have applied them: each write to
// clients, trusts, signing keys or revocations resolves after `propagate` (ClusterSync.propagate, which
// waits for the workers through the primary, src/sync/ipc-notifier.ts). Reads pass through.

import type { ClientStore, KeyStore, RevocationStore, TrustStore } from '../storage/types.js';

export interface WriteStores {
  clients: ClientStore;
  keys: KeyStore;
  revocations: RevocationStore;
  trusts?: TrustStore;
}

/** The write's result, once the workers have applied it (not waited for when it changed nothing). */
async function then<T>(write: Promise<T>, propagate: () => Promise<void>, changed: (result: T) => boolean = () => true): Promise<T> {
  const result = await write;
  if (changed(result)) await propagate();
  return result;
}

const isTrue = (result: boolean): boolean => result;

/** `stores` with every write of clients, keys and revocations followed by `propagate`. */
export function propagatingWrites<T extends WriteStores>(stores: T, propagate: () => Promise<void>): T {
  const { clients, keys, revocations, trusts } = stores;
  return {
    ...stores,
    ...(trusts && {
      trusts: {
        createTrust: (trust) => then(trusts.createTrust(trust), propagate),
        getTrust: (name) => trusts.getTrust(name),
        listTrusts: (options) => trusts.listTrusts(options),
        updateTrust: (trust) => then(trusts.updateTrust(trust), propagate, isTrue),
        deleteTrust: (name) => then(trusts.deleteTrust(name), propagate, isTrue),
        clientsOfTrust: (name, limit) => trusts.clientsOfTrust(name, limit),
      } satisfies TrustStore,
    }),
    clients: {
      createClient: (client) => then(clients.createClient(client), propagate),
      getClient: (clientId) => clients.getClient(clientId),
      listClients: (options) => clients.listClients(options),
      updateClient: (client) => then(clients.updateClient(client), propagate, isTrue),
      deleteClient: (clientId) => then(clients.deleteClient(clientId), propagate, isTrue),
    } satisfies ClientStore,
    keys: {
      listKeys: () => keys.listKeys(),
      insertKey: (key) => then(keys.insertKey(key), propagate),
      insertKeyIfNoneSince: (key, since) => then(keys.insertKeyIfNoneSince(key, since), propagate, isTrue),
      retireKey: (kid, retiredAt, expiresAt) => then(keys.retireKey(kid, retiredAt, expiresAt), propagate, isTrue),
      revokeKey: (kid, revokedAt, expiresAt) => then(keys.revokeKey(kid, revokedAt, expiresAt), propagate, isTrue),
      deleteExpiredKeys: (now) => then(keys.deleteExpiredKeys(now), propagate, (kids) => kids.length > 0),
    } satisfies KeyStore,
    revocations: {
      revokeToken: (record) => then(revocations.revokeToken(record), propagate),
      isTokenRevoked: (jti, now) => revocations.isTokenRevoked(jti, now),
      listRevocations: (now) => revocations.listRevocations(now),
    } satisfies RevocationStore,
  };
}
