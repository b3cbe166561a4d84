// An in-memory ClientStore for unit tests: copies on the way in and out, as a database would.

import { StorageConflictError, type ClientStore, type ListClientsOptions } from '../../src/storage/types.js';
import { type ClientRecord } from '../../src/ground/records.js';

export class MemoryClientStore implements ClientStore {
  readonly rows = new Map<string, ClientRecord>();
  /** Counts of store calls, to tell cache hits from store reads. */
  readonly calls = { get: 0, create: 0, update: 0, delete: 0, list: 0 };

  async createClient(client: ClientRecord): Promise<void> {
    this.calls.create++;
    if (this.rows.has(client.clientId)) throw new StorageConflictError(`client ${client.clientId} exists`);
    this.rows.set(client.clientId, structuredClone(client));
  }

  async getClient(clientId: string): Promise<ClientRecord | undefined> {
    this.calls.get++;
    const row = this.rows.get(clientId);
    return row === undefined ? undefined : structuredClone(row);
  }

  async listClients(options: ListClientsOptions): Promise<ClientRecord[]> {
    this.calls.list++;
    return [...this.rows.keys()]
      .sort()
      .filter((id) => options.after === undefined || id > options.after)
      .slice(0, options.limit)
      .map((id) => structuredClone(this.rows.get(id)!));
  }

  async updateClient(client: ClientRecord): Promise<boolean> {
    this.calls.update++;
    if (!this.rows.has(client.clientId)) return false;
    this.rows.set(client.clientId, structuredClone(client));
    return true;
  }

  async deleteClient(clientId: string): Promise<boolean> {
    this.calls.delete++;
    return this.rows.delete(clientId);
  }
}
