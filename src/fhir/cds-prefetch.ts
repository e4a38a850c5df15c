import { PREFETCH, type HookRequest } from './cds.js';
import { createFhirClient, FhirFetchError, originAllowed } from './client.js';

/**
 * The resources a CDS Hooks call is scored from: its prefetch, and what it omitted fetched from an
 * allow-listed `fhirServer`. A null key means the EHR has no such data; what is omitted and cannot
 * be fetched is a 412, as the specification asks.
 */

export interface Collected {
  bundle: { resourceType: 'Bundle'; type: 'collection'; entry: Array<{ fullUrl?: string; resource: unknown }> };
  notes: string[];
}

/** A hook call the service cannot score as sent: the answer's status, code, message and field paths. */
export class CdsPrefetchError extends Error {
  override name = 'CdsPrefetchError';
  constructor(
    readonly statusCode: 400 | 412,
    readonly code: 'invalid_prefetch' | 'precondition_failed',
    message: string,
    readonly details: Array<{ path: string; message: string }> = [],
  ) {
    super(message);
  }
}

function preconditionFailed(message: string): CdsPrefetchError {
  return new CdsPrefetchError(412, 'precondition_failed', message);
}

function asResources(value: unknown): unknown[] {
  if (typeof value !== 'object' || value === null) return [];
  const v = value as { resourceType?: unknown; entry?: Array<{ resource?: unknown; search?: { mode?: string } }> };
  if (v.resourceType === 'Bundle')
    return (v.entry ?? [])
      .filter((e) => e.resource !== undefined && e.search?.mode !== 'outcome')
      .map((e) => e.resource);
  return [value];
}

/**
 * `url` without its trailing slashes. A loop, not /\/+$/: that regex backtracks over every run of
 * slashes, so its time grows with the square of a hostile fhirServer's length.
 */
function withoutTrailingSlashes(url: string): string {
  let end = url.length;
  while (end > 0 && url.charCodeAt(end - 1) === 0x2f) end--;
  return url.slice(0, end);
}

/** `allowedOrigins` is CDS_FHIR_SERVERS. */
export async function collectPrefetch(
  body: HookRequest,
  allowedOrigins: readonly string[],
  signal: AbortSignal,
): Promise<Collected> {
  const prefetch = body.prefetch ?? {};
  // CDS Hooks 2.0: a key is null when the client has no such data, and omitted when it could not
  // prefetch it; only an omitted key is fetched from fhirServer.
  const have = (key: string): boolean => prefetch[key] !== undefined;
  const notes: string[] = [];
  const entries: unknown[] = [];
  const missing = (['patient', 'vitals', 'labs'] as const).filter((k) => !have(k));
  const wantEncounter = body.context.encounterId !== undefined && !have('encounter');
  for (const key of ['patient', 'vitals', 'labs', 'encounter'])
    if (have(key) && prefetch[key] !== null) entries.push(...asResources(prefetch[key]));

  if (missing.length > 0 || wantEncounter) {
    const token = body.fhirAuthorization?.access_token;
    const server = body.fhirServer;
    const canFetch = server !== undefined && token !== undefined && originAllowed(server, allowedOrigins);
    if (canFetch) {
      const client = createFhirClient({
        baseUrl: server,
        accessToken: token,
        allowedOrigins,
        signal,
      });
      const patientId = encodeURIComponent(body.context.patientId);
      const fill = (template: string): string => template.replaceAll('{{context.patientId}}', patientId);
      try {
        const fetched = await Promise.all([
          ...missing.map((key) =>
            key === 'patient'
              ? client.read(fill(PREFETCH.patient)).then((r) => [r])
              : client.search(fill(PREFETCH[key])),
          ),
          ...(wantEncounter
            ? [client.read(`Encounter/${encodeURIComponent(body.context.encounterId as string)}`).then((r) => [r])]
            : []),
        ]);
        for (const resources of fetched) entries.push(...resources);
      } catch (error) {
        if (error instanceof FhirFetchError)
          throw preconditionFailed(
            `prefetch incomplete (${missing.join(', ') || 'encounter'}) and fetching from fhirServer failed: ${error.message}`,
          );
        throw error;
      }
    } else if (missing.includes('patient') || missing.includes('vitals')) {
      const why =
        server === undefined || token === undefined
          ? 'no fhirServer with fhirAuthorization was given'
          : "fhirServer is not on this service's allow-list (CDS_FHIR_SERVERS)";
      throw preconditionFailed(`prefetch lacks ${missing.join(', ')} and ${why}`);
    } else if (missing.includes('labs')) {
      notes.push('Laboratory results were not available to the service (no prefetch, no FHIR server access).');
    }
  }
  // A prefetch for another patient than the hook's context is an EHR error, not something to score;
  // a Patient without id cannot be checked, nor can the Observations' subjects against it.
  for (const r of entries) {
    const res = r as { resourceType?: unknown; id?: unknown };
    if (res?.resourceType === 'Patient' && typeof res.id !== 'string') {
      throw new CdsPrefetchError(400, 'invalid_prefetch', 'the prefetched Patient has no id', [
        { path: 'prefetch.patient.id', message: 'is required: it must equal context.patientId' },
      ]);
    }
    if (res?.resourceType === 'Patient' && res.id !== body.context.patientId) {
      throw new CdsPrefetchError(400, 'invalid_prefetch', 'the prefetched Patient is not context.patientId', [
        { path: 'prefetch.patient.id', message: 'does not match context.patientId' },
      ]);
    }
  }
  // The Patient's URL on fhirServer: an absolute subject reference is this patient only on that server.
  const base = body.fhirServer === undefined ? undefined : withoutTrailingSlashes(body.fhirServer);
  const patientUrl = base === undefined ? undefined : `${base}/Patient/${body.context.patientId}`;
  return {
    bundle: {
      resourceType: 'Bundle',
      type: 'collection',
      entry: entries.map((resource) =>
        patientUrl !== undefined && (resource as { resourceType?: unknown })?.resourceType === 'Patient'
          ? { fullUrl: patientUrl, resource }
          : { resource },
      ),
    },
    notes,
  };
}
