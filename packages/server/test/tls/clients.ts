// Small real clients for the TLS tests: node:http2 (ALPN h2), node:https with a keep-alive agent
// (HTTP/1.1) and a bare TLS handshake that reports the certificate the server presented.

import { connect as h2connect, type ClientHttp2Session, type IncomingHttpHeaders } from 'node:http2';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';

export interface SimpleResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export function openH2(origin: string, ca: string): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = h2connect(origin, { ca });
    session.once('connect', () => resolve(session));
    session.once('error', reject);
  });
}

/** One request on an HTTP/2 session; `body` may be sent in parts through `write`. */
export function h2Request(
  session: ClientHttp2Session,
  path: string,
  options: { method?: string; headers?: Record<string, string>; body?: string; holdBody?: boolean } = {},
) {
  const stream = session.request({ ':method': options.method ?? 'GET', ':path': path, ...options.headers });
  const response = new Promise<SimpleResponse>((resolve, reject) => {
    let headers: IncomingHttpHeaders = {};
    let body = '';
    stream.on('response', (h) => (headers = h));
    stream.setEncoding('utf8');
    stream.on('data', (d: string) => (body += d));
    stream.on('end', () => resolve({ status: Number(headers[':status']), headers, body }));
    stream.on('error', reject);
  });
  if (options.body !== undefined && !options.holdBody) stream.end(options.body);
  else if (!options.holdBody) stream.end();
  return { stream, response };
}

export function httpsAgent(ca: string): HttpsAgent {
  return new HttpsAgent({ ca, keepAlive: true, maxSockets: 1 });
}

/** One HTTP/1.1 request over TLS; resolves with the socket it used. */
export function httpsGet(url: string, agent: HttpsAgent): Promise<SimpleResponse & { socket: TLSSocket; httpVersion: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { agent }, (res) => {
      // Taken now: a keep-alive agent detaches the socket from the response once it ends.
      const socket = res.socket as TLSSocket;
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body, socket, httpVersion: res.httpVersion }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The serial number of the certificate a new TLS connection is shown (upper-case hex). */
export function presentedSerial(port: number, ca: string, servername = 'localhost'): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, ca, servername }, () => {
      const serial = socket.getPeerCertificate().serialNumber;
      socket.destroy();
      resolve(serial.toUpperCase());
    });
    socket.once('error', reject);
  });
}
