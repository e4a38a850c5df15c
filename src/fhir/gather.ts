import type { z } from 'zod';
import { FhirInputError, type InputIssue } from './outcome.js';
import { bundleSchema, parametersSchema, type AnyResource } from './resources.js';

/**
 * Collects the resources of one request, whatever the envelope: a Bundle (collection from a
 * client, searchset from a search or a CDS Hooks prefetch), a Parameters resource whose
 * parameters carry resources or Bundles, or a single resource. Each resource keeps its
 * location (for OperationOutcome.expression) and the references it can be known by.
 */

export interface GatheredResource {
  resource: AnyResource;
  /** FHIRPath of the resource in the request, e.g. Bundle.entry[4].resource */
  path: string;
  /** Literal references that point at it: `Type/id`, and the entry's fullUrl. */
  refs: string[];
  /** The Bundle entry's fullUrl, if any: relative references inside the resource resolve against its base. */
  fullUrl?: string;
}

export interface Gathered {
  resources: GatheredResource[];
  /** Parameters.parameter named predictionTime (valueDateTime), if given. */
  predictionTime?: string;
}

const MAX_DEPTH = 2;

function zodIssues(root: string, error: z.ZodError): InputIssue[] {
  return error.issues.slice(0, 20).map((i) => ({
    severity: 'error',
    code: 'structure',
    message: `${[root, ...i.path.map(String)].join('.')}: ${i.message}`,
    expression: [
      [root, ...i.path.map((p) => (typeof p === 'number' ? `[${p}]` : String(p)))].join('.').replace(/\.\[/g, '['),
    ],
  }));
}

function refsOf(resource: AnyResource, fullUrl: string | undefined): string[] {
  const refs: string[] = [];
  if (resource.id) refs.push(`${resource.resourceType}/${resource.id}`);
  if (fullUrl) refs.push(fullUrl);
  return refs;
}

function collect(body: unknown, root: string, depth: number, out: Gathered): void {
  const kind =
    typeof body === 'object' && body !== null && !Array.isArray(body)
      ? (body as { resourceType?: unknown }).resourceType
      : undefined;
  if (kind === 'Bundle') {
    const parsed = bundleSchema.safeParse(body);
    if (!parsed.success) throw new FhirInputError(400, zodIssues(root, parsed.error));
    const seen = new Set<string>();
    (parsed.data.entry ?? []).forEach((entry, i) => {
      const path = `${root}.entry[${i}].resource`;
      if (entry.fullUrl !== undefined) {
        // R4 bdl-7: fullUrl is unique within a Bundle; a duplicate makes every reference ambiguous.
        if (seen.has(entry.fullUrl)) {
          throw new FhirInputError(400, [
            {
              severity: 'error',
              code: 'invalid',
              message: `${root}.entry[${i}].fullUrl repeats an earlier entry's fullUrl`,
              expression: [`${root}.entry[${i}].fullUrl`],
            },
          ]);
        }
        seen.add(entry.fullUrl);
      }
      if (!entry.resource) return;
      if (entry.resource.resourceType === 'Bundle' && depth < MAX_DEPTH) collect(entry.resource, path, depth + 1, out);
      else
        out.resources.push({
          resource: entry.resource,
          path,
          refs: refsOf(entry.resource, entry.fullUrl),
          ...(entry.fullUrl === undefined ? {} : { fullUrl: entry.fullUrl }),
        });
    });
    return;
  }
  if (kind === 'Parameters') {
    const parsed = parametersSchema.safeParse(body);
    if (!parsed.success) throw new FhirInputError(400, zodIssues(root, parsed.error));
    (parsed.data.parameter ?? []).forEach((p, i) => {
      const path = `${root}.parameter[${i}].resource`;
      if (p.name === 'predictionTime' && p.valueDateTime !== undefined) out.predictionTime = p.valueDateTime;
      if (!p.resource) return;
      if ((p.resource.resourceType === 'Bundle' || p.resource.resourceType === 'Parameters') && depth < MAX_DEPTH)
        collect(p.resource, path, depth + 1, out);
      else out.resources.push({ resource: p.resource, path, refs: refsOf(p.resource, undefined) });
    });
    return;
  }
  throw new FhirInputError(400, [
    {
      severity: 'error',
      code: 'structure',
      message: 'the request body must be a FHIR R4 Bundle (type collection or searchset) or Parameters resource',
      expression: [root === '' ? 'resourceType' : `${root}.resourceType`],
    },
  ]);
}

/** Gathers the resources of a request body; throws FhirInputError(400) when the envelope is malformed. */
export function gatherResources(body: unknown): Gathered {
  const out: Gathered = { resources: [] };
  const root =
    typeof body === 'object' && body !== null && (body as { resourceType?: unknown }).resourceType === 'Parameters'
      ? 'Parameters'
      : 'Bundle';
  collect(body, root, 0, out);
  return out;
}

/** `<base>` of an absolute RESTful URL `<base>/<type>/<id>` (R4 3.1.0.1.8), else undefined. */
function serverBaseOf(url: string | undefined, type: string): string | undefined {
  if (url === undefined || !/^https?:\/\//.test(url)) return undefined;
  const parts = url.split('/');
  return parts.length >= 5 && parts.at(-2) === type && (parts.at(-1) ?? '') !== ''
    ? parts.slice(0, -2).join('/')
    : undefined;
}

/**
 * True when `reference` (an Observation's or Encounter's subject) is exactly `patient`: its
 * fullUrl, or `Patient/<id>`. A relative reference in an entry whose fullUrl is a RESTful URL
 * resolves against that server's base (R4 Bundle, "Resolving references in Bundles"), so
 * `Patient/p1` from another server's entry is that server's p1, not this one.
 */
export function refersToSubject(reference: string, from: GatheredResource, patient: GatheredResource): boolean {
  if (patient.fullUrl !== undefined && reference === patient.fullUrl) return true;
  const id = patient.resource.id;
  if (id === undefined || reference !== `Patient/${id}`) return false;
  const base = serverBaseOf(from.fullUrl, from.resource.resourceType);
  if (base === undefined) return true;
  return patient.fullUrl !== undefined && `${base}/${reference}` === patient.fullUrl;
}
