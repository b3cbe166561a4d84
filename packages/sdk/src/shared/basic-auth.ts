// client_secret_basic credentials: RFC 6749 §2.3.1 says the client_id and secret are encoded with
// application/x-www-form-urlencoded (Appendix B) before they become RFC 7617 Basic credentials.

/** The form-urlencoding of one value, as URLSearchParams writes it (space as "+", "*-._" kept). */
function formEncode(value: string): string {
  return new URLSearchParams([['', value]]).toString().slice(1);
}

export function basicAuthorization(clientId: string, clientSecret: string): string {
  return 'Basic ' + Buffer.from(`${formEncode(clientId)}:${formEncode(clientSecret)}`, 'utf8').toString('base64');
}
