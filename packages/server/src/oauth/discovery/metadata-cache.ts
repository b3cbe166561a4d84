// The RFC 8414 metadata document as served: rebuilt from the registered clients' scopes and the
// published keys' algorithms only when one of them changes, and the last one kept while the
// database does not answer.

import type { ClientRecord } from '../../ground/records.js';
import { authorizationServerMetadata, type MutualTlsMetadata } from './metadata.js';

/** What the document is built from: the registry's pages and the key ring's JWKS. */
export interface MetadataSources {
  clients: { list(options: { after?: string; limit: number }): Promise<{ clients: ClientRecord[]; next: string | null }> };
  keys: { jwks(): { keys: Array<Record<string, unknown>> } };
}

/** The RFC 8414 document, recomputed only when clients or keys change. */
export class MetadataCache {
  #json: Promise<string> | undefined;
  /** The last document built: served while a rebuild fails (the database does not answer). */
  #last: string | undefined;
  constructor(
    /** Read when the document is built: the issuer is final once the public listener listens. */
    private readonly issuer: () => string,
    private readonly clients: MetadataSources['clients'],
    private readonly keys: MetadataSources['keys'],
    /** Read when the document is built (the mTLS listener's port is final once it listens); none when absent. */
    private readonly mutualTls: () => MutualTlsMetadata | undefined = () => undefined,
  ) {}

  invalidate(): void {
    this.#json = undefined;
  }

  json(): Promise<string> {
    this.#json ??= this.#build().then(
      (json) => (this.#last = json),
      (err: unknown) => {
        this.#json = undefined;
        if (this.#last !== undefined) return this.#last;
        throw err;
      },
    );
    return this.#json;
  }

  async #build(): Promise<string> {
    const scopes = new Set<string>();
    let after: string | undefined;
    for (;;) {
      const page = await this.clients.list({ ...(after !== undefined && { after }), limit: 1000 });
      for (const c of page.clients) for (const s of c.scope) scopes.add(s);
      if (page.next === null) break;
      after = page.next;
    }
    const algs = [...new Set(this.keys.jwks().keys.map((k) => String(k.alg)))];
    const mutualTls = this.mutualTls();
    return JSON.stringify(authorizationServerMetadata({
      issuer: this.issuer(), scopes: [...scopes].sort(), accessTokenSigningAlgs: algs, ...(mutualTls && { mutualTls }),
    }));
  }
}
