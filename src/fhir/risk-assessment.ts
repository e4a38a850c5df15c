import type { Contribution, TrajectoryPoint } from '../clinical/types.js';
import type { InputProfile } from '../clinical/input-profile.js';
import {
  CONTRIBUTIONS_EXTENSION,
  INPUT_PROFILE_EXTENSION,
  INPUT_WARNINGS_EXTENSION,
  MODEL_SYSTEM,
  OUTCOME_DEATH,
  OUTCOME_TEXT,
  RISK_PROBABILITY,
  TRAJECTORY_EXTENSION,
} from './codes.js';
import { explanationSentences } from './explain-text.js';
import { operationOutcome, type InputIssue, type OperationOutcome } from './outcome.js';
import type { RiskThresholds } from './thresholds.js';
import { riskBand } from './thresholds.js';

/**
 * The R4 RiskAssessment of `$predict`: probabilityDecimal always 0..1 (R4 allows either reading)
 * with qualitativeRisk; input warnings in a contained OperationOutcome that an extension
 * references (R4 dom-3).
 */

export interface RiskAssessment {
  resourceType: 'RiskAssessment';
  id: string;
  meta?: { profile?: string[] };
  contained?: OperationOutcome[];
  extension?: Extension[];
  status: 'final';
  method: { coding: Array<{ system: string; code: string; version: string; display: string }>; text: string };
  subject: { reference?: string; display?: string };
  encounter?: { reference: string };
  occurrenceDateTime: string;
  performer: { display: string };
  basis?: Array<{ reference: string }>;
  prediction: Array<{
    outcome: { coding: Array<{ system: string; code: string; display: string }>; text: string };
    probabilityDecimal: number;
    qualitativeRisk: { coding: Array<{ system: string; code: string; display: string }> };
    whenRange?: { high: { value: number; unit: string; system: string; code: string } };
    rationale?: string;
  }>;
  note?: Array<{ text: string }>;
}

/** The R4 Extension shapes this resource uses (simple values, or nested extensions). */
export type Extension =
  | { url: string; valueReference: { reference: string } }
  | { url: string; valueCode: string }
  | { url: string; valueDecimal: number }
  | { url: string; valueInteger: number }
  | { url: string; valueString: string }
  | { url: string; extension: Extension[] };

export interface RiskAssessmentInput {
  id: string;
  model: { name: string; version: string; architecture?: string; bootstrap?: boolean };
  probability: number;
  subject: { reference?: string; display?: string };
  encounter?: { reference: string };
  occurrence: Date;
  basis: readonly string[];
  issues: readonly InputIssue[];
  thresholds: RiskThresholds;
  hoursUsed: number;
  truncated: boolean;
  missingThroughout: readonly string[];
  inputProfile?: InputProfile;
  trajectory?: readonly TrajectoryPoint[];
  contributions?: readonly Contribution[];
  timeZeroSource: 'encounter' | 'earliest-observation';
}

/** How much weight the score bears, in words: the profile and its held-out AUROC. */
export function inputProfileText(profile: InputProfile): string {
  const auroc = profile.heldOutAuroc === null ? 'not evaluated for this model' : `${profile.heldOutAuroc.toFixed(2)}`;
  return `Scored on ${profile.label}; on such stays the model's held-out AUROC is ${auroc}.`;
}

const LABELS: Record<string, string> = {
  low: 'Low likelihood',
  moderate: 'Moderate likelihood',
  high: 'High likelihood',
};

export function buildRiskAssessment(input: RiskAssessmentInput): RiskAssessment {
  const band = riskBand(input.probability, input.thresholds);
  const modelText = `${input.model.name} ${input.model.version}`;
  const notes = [
    'probabilityDecimal is a probability between 0 and 1 (not a percentage) of death before hospital discharge.',
    `Scored on the last ${input.hoursUsed} hour(s) of the ICU stay${input.truncated ? ' (earlier hours were beyond the model window)' : ''}; time zero = ${
      input.timeZeroSource === 'encounter'
        ? 'Encounter.period.start (ICU admission)'
        : 'the earliest usable observation (no Encounter start was given)'
    }.`,
  ];
  if (input.missingThroughout.length > 0)
    notes.push(`Not observed in the hours used: ${input.missingThroughout.join(', ')}.`);
  notes.push(...explanationSentences(input));
  if (input.inputProfile) notes.push(inputProfileText(input.inputProfile));
  if (input.model.bootstrap)
    notes.push(
      'WARNING: the serving model is an untrained bootstrap placeholder; its probabilities carry no clinical meaning.',
    );

  const ra: RiskAssessment = {
    resourceType: 'RiskAssessment',
    id: input.id,
    status: 'final',
    method: {
      coding: [{ system: MODEL_SYSTEM, code: input.model.name, version: input.model.version, display: modelText }],
      text: `${modelText} (stacked ${input.model.architecture?.toUpperCase() ?? 'recurrent network'} over hourly vitals and labs)`,
    },
    subject: input.subject,
    occurrenceDateTime: input.occurrence.toISOString(),
    performer: { display: `Device: ${modelText}` },
    prediction: [
      {
        outcome: { coding: [{ ...OUTCOME_DEATH }], text: OUTCOME_TEXT },
        probabilityDecimal: input.probability,
        qualitativeRisk: { coding: [{ system: RISK_PROBABILITY, code: band, display: LABELS[band] ?? band }] },
        rationale: `Band ${band}: thresholds moderate >= ${input.thresholds.moderate}, high >= ${input.thresholds.high}.`,
      },
    ],
    note: notes.map((text) => ({ text })),
  };
  if (input.encounter) ra.encounter = input.encounter;
  if (input.basis.length > 0) ra.basis = input.basis.map((reference) => ({ reference }));
  const extensions: NonNullable<RiskAssessment['extension']> = [];
  if (input.issues.length > 0) {
    ra.contained = [operationOutcome(input.issues, 'input-warnings')];
    extensions.push({ url: INPUT_WARNINGS_EXTENSION, valueReference: { reference: '#input-warnings' } });
  }
  if (input.inputProfile) {
    const { scenario, heldOutAuroc } = input.inputProfile;
    extensions.push({
      url: INPUT_PROFILE_EXTENSION,
      extension: [
        { url: 'scenario', valueCode: scenario },
        ...(heldOutAuroc === null ? [] : [{ url: 'heldOutAuroc', valueDecimal: heldOutAuroc }]),
      ],
    });
  }
  if (input.trajectory) {
    extensions.push(
      listExtension(TRAJECTORY_EXTENSION, 'point', input.trajectory, (p) => [
        { url: 'hour', valueInteger: p.hour },
        { url: 'probability', valueDecimal: p.probability },
      ]),
    );
  }
  if (input.contributions && input.contributions.length > 0) {
    extensions.push(
      listExtension(CONTRIBUTIONS_EXTENSION, 'contribution', input.contributions, (c) => [
        { url: 'variable', valueString: c.variable },
        { url: 'effect', valueDecimal: c.effect },
      ]),
    );
  }
  if (extensions.length > 0) ra.extension = extensions;
  return ra;
}

/** A complex extension with one sub-extension `item` per entry, made of that entry's parts. */
function listExtension<T>(
  url: string,
  item: string,
  entries: readonly T[],
  parts: (entry: T) => Extension[],
): Extension {
  return { url, extension: entries.map((entry) => ({ url: item, extension: parts(entry) })) };
}
