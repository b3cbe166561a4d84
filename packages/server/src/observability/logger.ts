// Structured logs (pino): JSON lines for machines, readable lines (pino-pretty) for a person at a
// terminal, with one tested redaction list: secrets, client assertions, DPoP proofs and tokens never reach a
// log line, even if a future change passes one to the logger by mistake.

import { tracingChannel } from 'node:diagnostics_channel';
import { createRequire } from 'node:module';
import pino, { type DestinationStream, type Logger } from 'pino';

/**
 * Sensitive field names, censored at the top level of a log object and one level down inside
 * the containers below. Explicit paths, not `*.name` wildcards: pino's wildcard redaction costs
 * about 20 µs a line, explicit paths under 1 µs. Tested in test/observability/redaction.test.ts.
 */
export const SENSITIVE_FIELDS: readonly string[] = [
  'authorization', 'cookie', 'client_secret', 'clientSecret', 'client_assertion', 'clientAssertion',
  'token', 'access_token', 'accessToken', 'secret', 'password', 'adminToken', 'admin_token',
  'kek', 'privateKey', 'private_key', 'body', 'params', 'dpop',
];

/** Objects that may wrap a sensitive field when something is logged. */
export const REDACT_CONTAINERS: readonly string[] = [
  'req', 'request', 'headers', 'body', 'params', 'query', 'input', 'client', 'config', 'payload', 'err', 'error', 'data',
];

/** Every path pino censors: the one tested redaction list. */
export const REDACT_PATHS: readonly string[] = [
  ...SENSITIVE_FIELDS,
  ...REDACT_CONTAINERS.flatMap((c) => SENSITIVE_FIELDS.map((f) => `${c}.${f}`)),
  'req.headers.authorization', 'req.headers.cookie', 'request.headers.authorization', 'request.headers.cookie',
  // RFC 9440's Client-Cert (a certificate a trusted proxy passes on), wherever request headers are logged.
  'headers["client-cert"]', 'req.headers["client-cert"]', 'request.headers["client-cert"]',
  // RFC 9449 DPoP proofs.
  'req.headers.dpop', 'request.headers.dpop',
];

/** `json`: one JSON object a line (log collectors); `pretty`: readable lines (a person at a terminal). */
export type LogFormat = 'json' | 'pretty';

export interface LoggerOptions {
  level?: string;
  /** Where lines go; defaults to an asynchronous stdout writer so logging never blocks a request. */
  destination?: DestinationStream;
  /** Defaults to `pretty` when the lines go to stdout and stdout is a terminal, else `json`. */
  format?: LogFormat;
}

/** The format of stdout's lines when none is configured: readable on a terminal, JSON anywhere else. */
export function defaultLogFormat(stdout: { isTTY?: boolean } = process.stdout): LogFormat {
  return stdout.isTTY === true ? 'pretty' : 'json';
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const format = options.format ?? (options.destination === undefined ? defaultLogFormat() : 'json');
  const lines = options.destination ?? bufferedStdout();
  // Pretty lines are made from the JSON line pino wrote (redaction has happened by then), so that
  // both formats carry the same fields and the request line's fast writer serves both.
  const destination = format === 'pretty' ? prettyLines(lines, options.destination === undefined && colorTerminal()) : lines;
  return pino(
    {
      level: options.level ?? 'info',
      base: { service: 'm2m-auth' },
      redact: { paths: [...REDACT_PATHS], censor: '[REDACTED]' },
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}

function colorTerminal(): boolean {
  // https://no-color.org: any non-empty NO_COLOR turns colours off.
  return process.stdout.isTTY === true && !process.env.NO_COLOR;
}

/**
 * A destination that turns each JSON line into a readable one (pino-pretty's formatter, run
 * synchronously in this thread) and hands it on to `sink`, batching and exit flush included.
 * pino-pretty is loaded here, on first use: a server logging JSON never loads it.
 */
function prettyLines(sink: DestinationStream, colorize: boolean): DestinationStream {
  const { prettyFactory } = createRequire(import.meta.url)('pino-pretty') as typeof import('pino-pretty');
  const pretty = prettyFactory({
    colorize,
    // One line per entry: the fields follow the message as compact JSON.
    singleLine: true,
    translateTime: 'SYS:HH:MM:ss.l',
    // Every line has service "m2m-auth"; a terminal shows one server.
    ignore: 'service',
  });
  const flushable = sink as Partial<Sink>;
  return {
    write: (line: string) => sink.write(pretty(line)),
    flush: (cb?: (err?: Error) => void) => (flushable.flush ? flushable.flush(cb) : cb?.()),
    flushSync: () => flushable.flushSync?.(),
  } as DestinationStream;
}

/** Characters of log lines held before they are written (bytes, for ASCII lines). */
const STDOUT_BATCH_CHARS = 64 * 1024;

/**
 * Stdout written in batches: lines collect up to about 64 KiB and go out in one asynchronous
 * write, at the latest 100 ms after they were logged (a write per line costs a request tens of
 * µs), and synchronously when the process exits. A write costs about the same whatever its size:
 * under token load on a 2-core VM, 8-KiB batches spent 3 µs a request in writes and 64-KiB ones
 * 0.7 µs (a median 2.6% more tokens a second; BENCHMARKS.md, "Known ways"). At 10,000 requests a second a
 * batch fills in about 25 ms. The lines are kept in an array and joined once per batch:
 * SonicBoom's own batching (`minLength`) measures the whole pending batch again on every line
 * (`Buffer.byteLength` of a growing string: about 3% of a token request's CPU under load). One
 * batch per process, shared by every logger that writes to stdout.
 */
function bufferedStdout(): DestinationStream {
  return (stdoutBatch ??= stdoutLineBatch());
}

let stdoutBatch: LineBatch | undefined;

function stdoutLineBatch(): LineBatch {
  const batch = new LineBatch(pino.destination({ dest: 1, sync: false }), STDOUT_BATCH_CHARS);
  setInterval(() => batch.drain(), 100).unref();
  // Before pino's own exit handlers (which end or flush the inner stream), hand them the lines.
  process.prependListener('beforeExit', () => batch.drain());
  process.prependListener('exit', () => {
    try {
      batch.flushSync();
    } catch {
      // stdout is gone: nothing more can be written
    }
  });
  return batch;
}

interface Sink {
  write(chunk: string): boolean;
  flush(cb?: (err?: Error) => void): void;
  flushSync(): void;
}

/** Lines held until `chars` characters have collected (or `drain()`), then written to `sink` as one string. */
export class LineBatch implements DestinationStream {
  #lines: string[] = [];
  #length = 0;

  constructor(
    private readonly sink: Sink,
    private readonly chars: number,
  ) {}

  write(line: string): boolean {
    this.#lines.push(line);
    this.#length += line.length;
    if (this.#length >= this.chars) this.drain();
    return true;
  }

  /** Hands what has collected to the sink (an asynchronous write). */
  drain(): void {
    if (this.#lines.length === 0) return;
    const chunk = this.#lines.length === 1 ? this.#lines[0]! : this.#lines.join('');
    this.#lines = [];
    this.#length = 0;
    this.sink.write(chunk);
  }

  /** pino's `logger.flush()`. */
  flush(cb?: (err?: Error) => void): void {
    this.drain();
    this.sink.flush(cb);
  }

  flushSync(): void {
    this.drain();
    this.sink.flushSync();
  }
}

export type { Logger };

/** pino's own state of a logger, read through the symbols pino exports for that (`pino.symbols`). */
type PinoState = Record<symbol, unknown>;

/** The channel pino publishes every line it builds on, for tracing and monitoring tools. */
const pinoLines = tracingChannel('pino_asJson');

/**
 * A writer of one line shape: the line `log.info(line, msg)` would write, for a caller that
 * passes the line's members already as JSON. The level prefix, time, bindings, message and line end are
 * the logger's own (pino's cached strings and its time function); what is skipped is pino's work
 * on the object, key by key, which made the request line cost 5% of the token endpoint's
 * throughput (BENCHMARKS.md, "Known ways"). `members` is `,"key":value` for each member, values
 * written as JSON; undefined members left out, as pino does.
 *
 * Undefined when the logger does anything this would skip: a mixin, a log formatter, a nested
 * key, a message prefix, a log-method or stream-write hook, a serializer or a redaction of one of
 * `keys`, or a stream that wants metadata. The caller logs through pino then. While something
 * subscribes to pino's `pino_asJson` tracing channel, the writer hands `line` to pino itself, so
 * that subscribers see every line. Both ways are compared, line for line, in
 * test/observability/line-writer.test.ts.
 */
export function infoLineWriter(log: Logger, msg: string, keys: readonly string[]): ((members: string, line: object) => void) | undefined {
  const s = pino.symbols;
  const state = log as unknown as PinoState;
  const stream = state[s.streamSym] as (DestinationStream & Record<symbol, unknown>) | undefined;
  const formatters = state[s.formattersSym] as { log?: unknown } | undefined;
  const hooks = state[s.hooksSym] as { streamWrite?: unknown; logMethod?: unknown } | undefined;
  const serializers = (state[s.serializersSym] ?? {}) as Record<string, unknown>;
  const stringifiers = (state[s.stringifiersSym] ?? {}) as Record<string | symbol, unknown>;
  const levelPrefix = (state[s.lsCacheSym] as Record<number, string> | undefined)?.[log.levels.values.info!];
  const time = state[s.timeSym] as (() => string) | undefined;
  const end = state[s.endSym] as string | undefined;
  if (
    stream === undefined || typeof stream.write !== 'function' || stream[s.needsMetadataGsym] === true
    || state[s.mixinSym] || formatters?.log || state[s.nestedKeySym] || state[(s as unknown as Record<string, symbol>).msgPrefixSym!] || hooks?.streamWrite || hooks?.logMethod
    || stringifiers[s.wildcardFirstSym] || keys.some((k) => serializers[k] || stringifiers[k])
    || serializers[state[s.messageKeySym] as string] || typeof levelPrefix !== 'string' || typeof time !== 'function'
    || typeof end !== 'string'
  ) {
    return undefined;
  }
  const message = `,${JSON.stringify(state[s.messageKeySym])}:${JSON.stringify(msg)}${end}`;
  const timeOf = time.bind(log);
  return (members, line) => {
    if (pinoLines.hasSubscribers) log.info(line, msg);
    else stream.write(levelPrefix + timeOf() + (state[s.chindingsSym] as string) + members + message);
  };
}
