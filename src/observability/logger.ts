// Structured JSON logs (pino) with one tested redaction list: secrets, client assertions and
// tokens never reach a log line, even if a future change passes one to the logger by mistake.

import pino, { type DestinationStream, type Logger } from 'pino';

/** Every path pino censors. Tested in test/observability/redaction.test.ts. */
export const REDACT_PATHS: readonly string[] = [
  'authorization', '*.authorization', 'headers.authorization', 'req.headers.authorization',
  'headers.cookie', 'req.headers.cookie',
  'client_secret', '*.client_secret', 'clientSecret', '*.clientSecret',
  'client_assertion', '*.client_assertion', 'clientAssertion', '*.clientAssertion',
  'token', '*.token', 'access_token', '*.access_token', 'accessToken', '*.accessToken',
  'secret', '*.secret', 'password', '*.password',
  'adminToken', '*.adminToken', 'admin_token', '*.admin_token',
  'kek', '*.kek', 'privateKey', '*.privateKey', 'private_key', '*.private_key',
  'body', '*.body', 'params', '*.params',
];

export interface LoggerOptions {
  level?: string;
  /** Where lines go; defaults to an asynchronous stdout writer so logging never blocks a request. */
  destination?: DestinationStream;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const destination = options.destination ?? pino.destination({ dest: 1, sync: false });
  return pino(
    {
      level: options.level ?? 'info',
      base: { service: 'm2m-auth' },
      redact: { paths: [...REDACT_PATHS], censor: '[REDACTED]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}

export type { Logger };
