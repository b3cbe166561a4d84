// The profiler's side of a server's debug endpoints (admin listener, admin token, M2M_AUTH_PPROF):
// a profile or runtime window is asked for 60 seconds and ended by DELETE when the phase it
// measures is over; its GET then answers with what was taken.

import { Agent, request } from 'undici';

/** Longest recording the server takes (its MAX_PROFILE_SECONDS); a phase ends it earlier. */
const RECORD_SECONDS = 60;
/** How long an end() keeps asking while the server has not started the recording yet. */
const END_TIMEOUT_MS = 5_000;

export class DebugError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DebugError';
  }
}

export interface Recording {
  /** Ends the recording now and resolves to what it took. */
  end(): Promise<Buffer>;
}

export class DebugEndpoints {
  readonly #base: string;
  readonly #headers: Record<string, string>;
  // Connections closed as soon as they are idle: the server counts open sockets among its active handles.
  readonly #agent = new Agent({ keepAliveTimeout: 10, keepAliveMaxTimeout: 10 });

  constructor(adminUrl: string, adminToken: string) {
    this.#base = adminUrl.replace(/\/+$/, '');
    this.#headers = { authorization: `Bearer ${adminToken}` };
  }

  /** Starts a recording at `path` (e.g. /debug/runtime, /debug/pprof/profile) with these query parameters. */
  record(path: string, query: Record<string, string> = {}): Recording {
    const qs = new URLSearchParams({ seconds: String(RECORD_SECONDS), ...query }).toString();
    let settled = false;
    const answer = this.#get(`${path}?${qs}`).finally(() => {
      settled = true;
    });
    // Keep an early failure from being unhandled while the phase runs; end() reports it.
    answer.catch(() => undefined);
    return {
      end: async () => {
        const deadline = Date.now() + END_TIMEOUT_MS;
        // The GET may not have reached the server yet: ask again until it says it ended one.
        while (!settled) {
          const res = await request(`${this.#base}${path}`, { method: 'DELETE', headers: this.#headers, dispatcher: this.#agent });
          await res.body.dump();
          if (res.statusCode === 204) break;
          if (res.statusCode !== 404) throw new DebugError(`DELETE ${path} answered ${res.statusCode}`);
          if (Date.now() > deadline) throw new DebugError(`DELETE ${path}: the server never started the recording`);
          await new Promise((r) => setTimeout(r, 20));
        }
        return answer;
      },
    };
  }

  /**
   * Whether the debug endpoints answer: a CPU profile asked for 0 seconds is refused with 400 when
   * they are on, 404 when they are off (nothing registered), 401 when the token is wrong.
   */
  async probe(): Promise<'on' | 'off' | 'unauthorized'> {
    const res = await request(`${this.#base}/debug/pprof/profile?seconds=0`, { method: 'GET', headers: this.#headers, dispatcher: this.#agent });
    await res.body.dump();
    if (res.statusCode === 404) return 'off';
    if (res.statusCode === 401 || res.statusCode === 403) return 'unauthorized';
    if (res.statusCode === 400) return 'on';
    throw new DebugError(`GET /debug/pprof/profile?seconds=0 answered ${res.statusCode}`);
  }

  async close(): Promise<void> {
    await this.#agent.close();
  }

  async #get(pathAndQuery: string): Promise<Buffer> {
    const res = await request(`${this.#base}${pathAndQuery}`, { method: 'GET', headers: this.#headers, dispatcher: this.#agent });
    const body = Buffer.from(await res.body.arrayBuffer());
    if (res.statusCode === 404) throw new DebugError(`GET ${pathAndQuery} answered 404: is the server started with M2M_AUTH_PPROF=true?`);
    if (res.statusCode !== 200) throw new DebugError(`GET ${pathAndQuery} answered ${res.statusCode}: ${body.toString('utf8').slice(0, 200)}`);
    return body;
  }
}
