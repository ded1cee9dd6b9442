// How the PEP fetches the issuer's documents (JWKS, status lists): a bounded,
// timed GET with ETag revalidation. The fetch implementation is injectable
// (tests, a custom CA, a proxy); the default is the runtime's.

export type FetchLike = (url: string, init: { headers: Record<string, string>; signal: AbortSignal; redirect?: 'error' }) => Promise<Response>;

export const DEFAULT_FETCH_TIMEOUT_MS = 5000;
/** Larger documents are refused: a JWKS or a status list token is a few KiB. */
export const MAX_DOCUMENT_BYTES = 1 << 20;

export type Fetched = { status: 'ok'; body: string; etag?: string } | { status: 'unchanged' };

/** GETs a document; `etag` revalidates (304: unchanged). Throws an Error that names the URL and what failed. */
export async function fetchDocument(
  fetchFn: FetchLike,
  url: string,
  options: { etag?: string; accept: string; timeoutMs?: number },
): Promise<Fetched> {
  const headers: Record<string, string> = { accept: options.accept };
  if (options.etag) headers['if-none-match'] = options.etag;
  // No redirects: a document of the issuer comes from the issuer's URL, never from wherever it points.
  const response = await fetchFn(url, { headers, signal: AbortSignal.timeout(options.timeoutMs ?? DEFAULT_FETCH_TIMEOUT_MS), redirect: 'error' });
  if (response.status === 304 && options.etag) {
    await response.body?.cancel();
    return { status: 'unchanged' };
  }
  if (response.status !== 200) {
    await response.body?.cancel();
    throw new Error(`GET ${url} answered ${response.status}`);
  }
  const length = Number(response.headers.get('content-length') ?? '0');
  if (length > MAX_DOCUMENT_BYTES) {
    await response.body?.cancel();
    throw new Error(`GET ${url} answered ${length} bytes, more than ${MAX_DOCUMENT_BYTES}`);
  }
  const body = await readBounded(response, url);
  const etag = response.headers.get('etag') ?? undefined;
  return { status: 'ok', body, ...(etag ? { etag } : {}) };
}

/** The body as text, reading no more than MAX_DOCUMENT_BYTES whatever the headers say (chunked answers included). */
async function readBounded(response: Response, url: string): Promise<string> {
  if (!response.body) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_DOCUMENT_BYTES) {
      await reader.cancel();
      throw new Error(`GET ${url} answered more than ${MAX_DOCUMENT_BYTES} bytes`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}
