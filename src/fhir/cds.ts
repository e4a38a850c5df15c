import { z } from 'zod';
import type { PredictionResult } from '../clinical/types.js';
import { MODEL_SYSTEM } from './codes.js';
import { explanationSentences, percent } from './explain-text.js';
import { inputProfileText } from './risk-assessment.js';
import { policyThresholds, tierOf, type AlertPolicy } from '../clinical/alert-policy.js';
import { missingForAnswer } from './variables.js';

/**
 * CDS Hooks 2.0 (https://cds-hooks.hl7.org/2.0/) shapes: the service description for discovery,
 * the hook request, and the card this service answers for `patient-view`.
 */

export const SERVICE_ID = 'icu-mortality';

/**
 * Prefetch templates: the Patient and the stay's Observations, newest first. Vital signs and
 * laboratory results are separate searches because EHRs index them by category.
 */
export const PREFETCH = {
  patient: 'Patient/{{context.patientId}}',
  vitals: 'Observation?patient={{context.patientId}}&category=vital-signs&_sort=-date&_count=500',
  labs: 'Observation?patient={{context.patientId}}&category=laboratory&_sort=-date&_count=500',
} as const;

export function serviceDescription(model: { name: string; version: string } | undefined) {
  return {
    hook: 'patient-view',
    id: SERVICE_ID,
    title: 'ICU in-hospital mortality risk',
    description: `Probability of in-hospital death from the first hours of an ICU stay (vital signs and laboratory results), by ${model ? `${model.name} ${model.version}` : 'the serving model'}.`,
    prefetch: { ...PREFETCH },
    usageRequirements:
      'Adult ICU patients (15 years and over). Needs Observations coded with LOINC and UCUM units; an Encounter with the ICU admission time (context.encounterId) improves the time axis. Decision support only: not a substitute for clinical judgement.',
  };
}

/**
 * FHIR R4 id syntax (https://hl7.org/fhir/R4/datatypes.html#id), without the ids "." and "..":
 * they are dot segments, so `Patient/..` would resolve to the server's base URL.
 */
const fhirId = z
  .string()
  .regex(/^[A-Za-z0-9.-]{1,64}$/, 'must be a FHIR id: 1-64 letters, digits, "-" or "."')
  .refine((id) => id !== '.' && id !== '..', 'must be a FHIR id, not a dot segment');

export const hookRequestSchema = z.looseObject({
  hook: z.string().min(1),
  hookInstance: z.string().min(1).max(256),
  fhirServer: z.url({ protocol: /^https?$/ }).optional(),
  fhirAuthorization: z
    .looseObject({
      access_token: z.string().min(1),
      token_type: z.string().optional(),
      expires_in: z.number().optional(),
      scope: z.string().optional(),
      subject: z.string().optional(),
      patient: z.string().optional(),
    })
    .nullable()
    .optional(),
  context: z.looseObject({
    userId: z.string().optional(),
    patientId: fhirId,
    encounterId: fhirId.optional(),
  }),
  prefetch: z.record(z.string(), z.unknown()).nullable().optional(),
});

export type HookRequest = z.infer<typeof hookRequestSchema>;

/** A type, not an interface: the route's response schema is a loose object, which only a type alias satisfies. */
export type Card = {
  uuid: string;
  summary: string;
  detail: string;
  indicator: 'info' | 'warning' | 'critical';
  source: { label: string; url?: string; topic?: { system: string; code: string; display: string } };
  /** CDS Hooks 2.0 Link: a `smart` link's url is the app's launch URL, to which the EHR adds iss and launch. */
  links?: Array<{ label: string; url: string; type: 'absolute' | 'smart'; appContext?: string }>;
};

export interface CardInput {
  /** From cardIds(): feedback naming any other uuid is refused. */
  uuid: string;
  result: PredictionResult;
  /** The alert policy: the probability's tier and its card indicator. */
  policy: AlertPolicy;
  modelCardUrl?: string;
  /** The SMART app's launch URL (/app/launch): the trend and the measurements behind the estimate. */
  appLaunchUrl?: string;
  bootstrap: boolean;
  /** The mapping's warnings, each already merged by message (IssueCollector): what was not used and why. */
  warnings: string[];
  /** Shown right under the probability: what about the data bears on trusting it. */
  alerts?: string[];
  notes: string[];
}

/**
 * A clinician reads the card, not the RiskAssessment: the warnings themselves, the first few,
 * each cut short (they may quote codes from the request, which have no length limit).
 */
const WARNINGS_ON_CARD = 5;
const WARNING_CHARACTERS = 200;

function warningItems(warnings: string[]): string[] {
  const cut = (w: string): string => (w.length > WARNING_CHARACTERS ? `${w.slice(0, WARNING_CHARACTERS - 1)}…` : w);
  const shown = warnings.slice(0, WARNINGS_ON_CARD).map((w) => `- ${cut(w)}`);
  const more = warnings.length - WARNINGS_ON_CARD;
  return more > 0 ? [...shown, `- and ${more} more`] : shown;
}

export function modelCardLink(
  template: string | undefined,
  model: { name: string; version: string },
): string | undefined {
  return template
    ?.replaceAll('{name}', encodeURIComponent(model.name))
    .replaceAll('{version}', encodeURIComponent(model.version));
}

export function riskCard(input: CardInput): Card {
  const { result } = input;
  const tier = tierOf(input.policy, result.probability);
  const band = tier.name;
  const thresholds = policyThresholds(input.policy);
  const modelText = `${result.model.name} ${result.model.version}`;
  const missing = missingForAnswer(result.missingThroughout);
  const lines = [
    `Estimated probability of **in-hospital death**: **${percent(result.probability)}** (${band} risk; bands: moderate from ${percent(thresholds.moderate)}, high from ${percent(thresholds.high)}).`,
    ...(input.alerts ?? []).flatMap((alert) => ['', alert]),
    '',
    `Based on the last ${result.hoursUsed} hour(s) of the ICU stay.${missing.length > 0 ? ` Not measured in that time: ${missing.join(', ')}.` : ''}`,
  ];
  for (const sentence of explanationSentences(result)) lines.push('', sentence);
  if (result.inputProfile) lines.push('', inputProfileText(result.inputProfile));
  if (input.warnings.length > 0) lines.push('', 'About the data:', ...warningItems(input.warnings));
  for (const note of input.notes) lines.push('', note);
  if (input.bootstrap)
    lines.push('', '**Warning: the serving model is an untrained placeholder; this number has no clinical meaning.**');
  if (input.appLaunchUrl)
    lines.push('', 'Open the ICU mortality app (link below) for the risk hour by hour and the measurements behind it.');
  lines.push('', 'Decision support only: the estimate does not replace clinical judgement.');
  const url = input.modelCardUrl;
  const card: Card = {
    uuid: input.uuid,
    summary: `ICU mortality risk ${percent(result.probability)} (${band})`,
    detail: lines.join('\n'),
    indicator: tier.indicator,
    source: {
      label: modelText,
      topic: { system: MODEL_SYSTEM, code: result.model.name, display: modelText },
      ...(url ? { url } : {}),
    },
  };
  const links: NonNullable<Card['links']> = [];
  if (input.appLaunchUrl)
    links.push({ label: 'ICU mortality app: trend and basis', url: input.appLaunchUrl, type: 'smart' });
  if (url) links.push({ label: `Model card: ${modelText}`, url, type: 'absolute' });
  if (links.length > 0) card.links = links;
  return card;
}
