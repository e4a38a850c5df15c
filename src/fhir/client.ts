/**
 * A minimal FHIR REST reader for CDS calls without prefetch. Only allow-listed origins are
 * contacted and `next` links must stay on them (a forged hook would otherwise make this service
 * fetch anything); one deadline and a byte cap bound each call; the token is never logged.
 */

export class FhirFetchError extends Error {
  override name = 'FhirFetchError';
}

export interface FhirClientOptions {
  /** fhirServer from the hook request, e.g. https://ehr.example.org/fhir */
  baseUrl: string;
  accessToken: string;
  allowedOrigins: readonly string[];
  signal: AbortSignal;
  /** Pages followed per search (default 10). */
  maxPages?: number;
  /** Bytes per response (default 16 MiB). */
  maxBytes?: number;
  fetchImpl?: typeof fetch;
}

export interface FhirClient {
  read(path: string): Promise<unknown>;
  /** All entries' resources of a search, following `next` links. */
  search(pathAndQuery: string): Promise<unknown[]>;
}

/** True when `baseUrl` is on an allow-listed origin (exact scheme, host and port). */
export function originAllowed(baseUrl: string, allowedOrigins: readonly string[]): boolean {
  try {
    const url = new URL(baseUrl);
    return (url.protocol === 'https:' || url.protocol === 'http:') && allowedOrigins.includes(url.origin);
  } catch {
    return false;
  }
}

/**
 * The body as bytes, counted as they arrive: a chunked answer without content-length (or one
 * that lies about it) is cut at `maxBytes`, and a drip-fed one at the caller's deadline.
 */
async function readCapped(res: Response, maxBytes: number, signal: AbortSignal): Promise<Uint8Array> {
  if (res.body === null) return new Uint8Array(0);
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  const onAbort = (): void => {
    reader.cancel().catch(() => undefined);
  };
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    for (;;) {
      if (signal.aborted) throw new FhirFetchError('the FHIR server did not answer in time');
      let next: ReadableStreamReadResult<Uint8Array>;
      try {
        next = await reader.read();
      } catch {
        throw new FhirFetchError(
          signal.aborted ? 'the FHIR server did not answer in time' : 'the FHIR server answer was cut off',
        );
      }
      if (next.done) break;
      total += next.value.byteLength;
      if (total > maxBytes) {
        await reader.cancel().catch(() => undefined);
        throw new FhirFetchError('the FHIR server answer is larger than allowed');
      }
      chunks.push(next.value);
    }
    if (signal.aborted) throw new FhirFetchError('the FHIR server did not answer in time');
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
  const out = new Uint8Array(total);
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.byteLength;
  }
  return out;
}

export function createFhirClient(options: FhirClientOptions): FhirClient {
  if (!originAllowed(options.baseUrl, options.allowedOrigins))
    throw new FhirFetchError('the FHIR server is not on the allow-list (CDS_FHIR_SERVERS)');
  const base = options.baseUrl.endsWith('/') ? options.baseUrl : `${options.baseUrl}/`;
  const origin = new URL(base).origin;
  const maxBytes = options.maxBytes ?? 16 * 1024 * 1024;
  const doFetch = options.fetchImpl ?? fetch;

  async function get(url: string): Promise<unknown> {
    if (new URL(url).origin !== origin) throw new FhirFetchError('a link points outside the FHIR server');
    let res: Response;
    try {
      res = await doFetch(url, {
        headers: { accept: 'application/fhir+json', authorization: `Bearer ${options.accessToken}` },
        signal: options.signal,
        redirect: 'error',
      });
    } catch (error) {
      throw new FhirFetchError(
        options.signal.aborted
          ? 'the FHIR server did not answer in time'
          : `the FHIR server could not be reached (${(error as Error).name})`,
      );
    }
    if (!res.ok) {
      await res.body?.cancel();
      throw new FhirFetchError(`the FHIR server answered HTTP ${res.status}`);
    }
    const length = Number(res.headers.get('content-length') ?? '0');
    if (length > maxBytes) {
      await res.body?.cancel();
      throw new FhirFetchError('the FHIR server answer is larger than allowed');
    }
    const bytes = await readCapped(res, maxBytes, options.signal);
    try {
      return JSON.parse(new TextDecoder().decode(bytes)) as unknown;
    } catch {
      throw new FhirFetchError('the FHIR server answer is not JSON');
    }
  }

  return {
    read: (path) => get(new URL(path, base).toString()),
    async search(pathAndQuery) {
      const resources: unknown[] = [];
      let url: string | undefined = new URL(pathAndQuery, base).toString();
      for (let page = 0; url !== undefined && page < (options.maxPages ?? 10); page++) {
        const bundle = (await get(url)) as {
          resourceType?: unknown;
          entry?: Array<{ resource?: unknown; search?: { mode?: string } }>;
          link?: Array<{ relation?: string; url?: string }>;
        };
        if (bundle?.resourceType !== 'Bundle') throw new FhirFetchError('the FHIR search did not answer a Bundle');
        for (const entry of bundle.entry ?? []) {
          // search.mode "outcome" entries are the server's OperationOutcome about the search itself.
          if (entry.resource !== undefined && entry.search?.mode !== 'outcome') resources.push(entry.resource);
        }
        url = bundle.link?.find((l) => l.relation === 'next')?.url;
      }
      return resources;
    },
  };
}

export interface Deadline {
  signal: AbortSignal;
  dispose(): void;
}

/**
 * Aborts at `parent`'s abort or after `ms`, with a timer held here: on Node 20 an
 * AbortSignal.timeout() combined by AbortSignal.any() can be garbage-collected before it fires
 * (nodejs/node#57736).
 */
export function withDeadline(parent: AbortSignal, ms: number): Deadline {
  const controller = new AbortController();
  const onParent = (): void => controller.abort(parent.reason);
  if (parent.aborted) onParent();
  else parent.addEventListener('abort', onParent, { once: true });
  const timer = setTimeout(
    () => controller.abort(new DOMException('the FHIR fetch deadline passed', 'TimeoutError')),
    ms,
  );
  return {
    signal: controller.signal,
    dispose: () => {
      clearTimeout(timer);
      parent.removeEventListener('abort', onParent);
    },
  };
}
