// Typed events the core emits; logging, metrics and audit subscribe to them. Payloads carry
// identifiers (client_id, kid, jti) and outcomes, never a secret, an assertion or a token.

import { EventEmitter } from 'node:events';

export interface AuditContext {
  /** Source address of the request, when there was one. */
  ip?: string;
  /** Request id, when there was one. */
  requestId?: string;
}

export interface EventMap {
  /** trust and federatedSubject: a federated client's (federated_jwt) platform identity, the external subject it authenticated as. */
  'token.issued': { clientId: string; jti: string; scope: string; aud: string[]; exp: number; kid: string; trust?: string; federatedSubject?: string } & AuditContext;
  'token.denied': { clientId?: string; error: string; reason?: string } & AuditContext;
  'token.revoked': { clientId: string; jti: string } & AuditContext;
  'token.introspected': { callerClientId: string; active: boolean } & AuditContext;
  'client.created': { clientId: string } & AuditContext;
  'client.updated': { clientId: string; fields: string[] } & AuditContext;
  'client.disabled': { clientId: string } & AuditContext;
  'client.enabled': { clientId: string } & AuditContext;
  'client.deleted': { clientId: string } & AuditContext;
  'client.secret_rotated': { clientId: string; previousExpiresAt: number | null } & AuditContext;
  'client.tokens_revoked': { clientId: string; before: number } & AuditContext;
  /** A trusted issuer (issue 17) was created, changed (the wire names of the fields) or deleted. */
  'trust.created': { trust: string } & AuditContext;
  'trust.updated': { trust: string; fields: string[] } & AuditContext;
  'trust.deleted': { trust: string } & AuditContext;
  'key.created': { kid: string; alg: string; activatesAt: number };
  'key.activated': { kid: string };
  'key.retired': { kid: string; expiresAt: number };
  'key.deleted': { kid: string };
  /** An operator revoked the key (it leaked): unpublished, never signs again, its tokens refused. */
  'key.revoked': { kid: string } & AuditContext;
  'key.rotation_failed': { error: string };
  'admin.auth_failed': { reason: string } & AuditContext;
  /** A trusted issuer's keys fetched (result ok: `keys` usable keys) or not (failed: `reason`). */
  'federation.keys_fetched': { trust: string; result: 'ok' | 'failed'; keys?: number; reason?: string };
  /** A trust's keys could not be had within the staleness bound: its clients' requests fail. */
  'federation.keys_unavailable': { trust: string; reason: string };
  /**
   * A single-use platform token jti that this instance accepted had already been used elsewhere
   * (another instance or worker): found by the write behind the request, after the token was issued.
   */
  'federation.jti_replayed': { trust: string; clientId: string; jti: string };
}

export type EventName = keyof EventMap;

/** A small typed wrapper over EventEmitter. Listeners must not throw; errors are swallowed. */
export class EventBus {
  readonly #emitter = new EventEmitter();

  constructor() {
    this.#emitter.setMaxListeners(50);
  }

  on<E extends EventName>(name: E, listener: (payload: EventMap[E]) => void): () => void {
    const wrapped = (payload: EventMap[E]): void => {
      try {
        listener(payload);
      } catch {
        // an observer must never break the request that emitted the event
      }
    };
    this.#emitter.on(name, wrapped);
    return () => this.#emitter.off(name, wrapped);
  }

  /** Subscribes to every event. */
  onAny(listener: <E extends EventName>(name: E, payload: EventMap[E]) => void): () => void {
    const offs = EVENT_NAMES.map((name) => this.on(name, (p) => listener(name, p)));
    return () => offs.forEach((off) => off());
  }

  emit<E extends EventName>(name: E, payload: EventMap[E]): void {
    if (this.#emitter.listenerCount(name) > 0) this.#emitter.emit(name, payload);
  }
}

export const EVENT_NAMES: readonly EventName[] = [
  'token.issued', 'token.denied', 'token.revoked', 'token.introspected',
  'client.created', 'client.updated', 'client.disabled', 'client.enabled', 'client.deleted',
  'client.secret_rotated', 'client.tokens_revoked',
  'trust.created', 'trust.updated', 'trust.deleted',
  'key.created', 'key.activated', 'key.retired', 'key.deleted', 'key.revoked', 'key.rotation_failed',
  'admin.auth_failed',
  'federation.keys_fetched', 'federation.keys_unavailable', 'federation.jti_replayed',
];
