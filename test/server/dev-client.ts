// A bare HTTP client of a dev server for tests that need the status and the
// parsed body of every answer, errors included (the client library throws).

/** Calls as `token`; answers `{ status, body }` with the body parsed (null when empty). */
export function devServerClient(address: string, token: string) {
  return async (method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> => {
    const r = await fetch(`${address}/v1/${path}`, {
      method,
      headers: { 'x-vault-token': token, 'content-type': 'application/json' },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await r.text();
    return { status: r.status, body: text ? JSON.parse(text) : null };
  };
}
