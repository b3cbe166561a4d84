// A small HTTP load balancer for restart tests, doing what a real one does: round robin over the
// backends whose /readyz answers 200 (checked every 100 ms), a keep-alive pool per backend, and a
// retry on another backend only when the connection was refused, that is before any byte of the
// request was sent. Any other upstream failure becomes a 502 the client counts as a failure.

import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool, request } from 'undici';

export interface Backend {
  name: string;
  url: string;
}

interface Member extends Backend {
  pool: Pool;
  healthy: boolean;
  served: number;
}

/** RFC 9110 §7.6.1 connection-specific fields, which a proxy does not forward. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'host']);

function forwardable(headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined && !HOP_BY_HOP.has(k.toLowerCase())) out[k] = v;
  return out;
}

export class LoadBalancer {
  readonly #members: Member[];
  #server: Server | undefined;
  #timer: NodeJS.Timeout | undefined;
  #next = 0;
  /** Requests retried on another backend after a refused connection. */
  refusedRetries = 0;

  constructor(backends: Backend[]) {
    this.#members = backends.map((b) => ({ ...b, pool: new Pool(b.url), healthy: false, served: 0 }));
  }

  /** Starts health checks and the listener; resolves to the balancer's URL. */
  async start(): Promise<string> {
    await this.checkHealth();
    this.#timer = setInterval(() => void this.checkHealth(), 100);
    this.#server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.#forward(req.method ?? 'GET', req.url ?? '/', req.headers, Buffer.concat(chunks)).then(
          ({ status, headers, body }) => {
            res.writeHead(status, forwardable(headers));
            res.end(body);
          },
          (err: Error & { code?: string }) => {
            res.writeHead(502, { 'content-type': 'text/plain' });
            res.end(`bad gateway: ${err.code ?? ''} ${err.message}`);
          },
        );
      });
    });
    await new Promise<void>((resolve) => this.#server!.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  /** How many requests each backend answered. */
  served(name: string): number {
    return this.#members.find((m) => m.name === name)?.served ?? 0;
  }

  healthy(name: string): boolean {
    return this.#members.find((m) => m.name === name)?.healthy ?? false;
  }

  async checkHealth(): Promise<void> {
    await Promise.all(this.#members.map(async (m) => {
      try {
        const r = await request(`${m.url}/readyz`, { headersTimeout: 500, bodyTimeout: 500 });
        await r.body.dump();
        m.healthy = r.statusCode === 200;
      } catch {
        m.healthy = false;
      }
    }));
  }

  async #forward(method: string, path: string, headers: IncomingHttpHeaders, body: Buffer) {
    const deadline = Date.now() + 5000;
    let lastError: Error | undefined;
    while (Date.now() < deadline) {
      const member = this.#pick();
      if (!member) {
        await new Promise((r) => setTimeout(r, 20));
        continue;
      }
      try {
        const r = await member.pool.request({ method: method as 'POST', path, headers: forwardable(headers), body });
        const buf = Buffer.from(await r.body.arrayBuffer());
        member.served++;
        return { status: r.statusCode, headers: r.headers, body: buf };
      } catch (err) {
        // Refused: nothing was sent, so another backend may take the request.
        if ((err as { code?: string }).code !== 'ECONNREFUSED') throw err;
        member.healthy = false;
        this.refusedRetries++;
        lastError = err as Error;
      }
    }
    throw lastError ?? new Error('no healthy backend');
  }

  #pick(): Member | undefined {
    for (let i = 0; i < this.#members.length; i++) {
      const m = this.#members[(this.#next + i) % this.#members.length]!;
      if (m.healthy) {
        this.#next = (this.#next + i + 1) % this.#members.length;
        return m;
      }
    }
    return undefined;
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    const closed = new Promise<void>((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
    this.#server?.closeAllConnections();
    await closed;
    await Promise.all(this.#members.map((m) => m.pool.destroy()));
  }
}
