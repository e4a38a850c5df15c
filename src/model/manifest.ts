import { z } from 'zod';

/**
 * The model manifest (models/<name>/<version>/manifest.json), written by training/ and read
 * here. It is the one definition of variables, units, bounds and normalisation; see
 * models/README.md for the meaning of each field and the input tensor it defines.
 */

const boundsSchema = z.object({ min: z.number(), max: z.number() });

/** canonical = (value + offset) * scale */
const linearConversionSchema = z.object({
  unit: z.string(),
  offset: z.number(),
  scale: z.number(),
});

const rawUnitSlipSchema = z.object({
  above: z.number(),
  offset: z.number(),
  scale: z.number(),
  why: z.string(),
});

export const variableSchema = z.object({
  name: z.string(),
  label: z.string(),
  unit: z.string(),
  loinc: z.array(z.string()).default([]),
  bounds: boundsSchema,
  aggregation: z.enum(['last', 'sum']),
  mean: z.number(),
  std: z.number().positive(),
  alternativeUnits: z.array(linearConversionSchema).default([]),
  /** g/mol, for mass <-> moles conversions (src/clinical/units.ts). */
  molarMass: z.number().positive().optional(),
  /** Absolute ionic charge, for equivalents <-> moles (sodium 1, magnesium 2). */
  charge: z.number().int().positive().optional(),
  rawUnitSlips: z.array(rawUnitSlipSchema).default([]),
});

const numericStaticSchema = z.object({
  name: z.string(),
  kind: z.literal('numeric'),
  unit: z.string(),
  bounds: boundsSchema,
  mean: z.number(),
  std: z.number().positive(),
});

const categoricalStaticSchema = z.object({
  name: z.string(),
  kind: z.literal('categorical'),
  categories: z.array(z.number()),
  labels: z.array(z.string()),
});

export const staticSchema = z.discriminatedUnion('kind', [numericStaticSchema, categoricalStaticSchema]);

export const manifestSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9-]*$/),
    version: z.string(),
    createdAt: z.string(),
    bootstrap: z.boolean().default(false),
    description: z.string(),
    onnx: z.object({
      /** A file of the version folder itself: a plain name, never a path. */
      file: z.string().regex(/^[A-Za-z0-9_-][A-Za-z0-9._-]*$/, 'a file name inside the version folder'),
      opset: z.number().int(),
      /** `note` only for a model with a noteEmbedding: the graph input it is fed to. */
      inputs: z.object({ values: z.string(), statics: z.string(), lengths: z.string(), note: z.string().optional() }),
      output: z.string(),
      /** Further outputs: perHour, the probability after each hour [batch, time] (models/README.md). */
      outputs: z.object({ perHour: z.string().optional() }).passthrough().optional(),
      /** The one-step graph (models/README.md, "Step graph"): one hour in, state and carry in and out. */
      step: z
        .object({
          file: z.string().regex(/^[A-Za-z0-9_-][A-Za-z0-9._-]*$/, 'a file name inside the version folder'),
          inputs: z.object({
            values: z.string(),
            statics: z.string(),
            state: z.string(),
            carry: z.string(),
            note: z.string().optional(),
          }),
          outputs: z.object({ probability: z.string(), state: z.string(), carry: z.string() }),
          stateShape: z.array(z.number().int().positive()),
          carryShape: z.array(z.number().int().positive()),
        })
        .optional(),
    }),
    architecture: z
      .object({
        type: z.string(),
        layers: z.number().int().positive(),
        hidden: z.number().int().positive(),
        head: z.array(z.number().int().positive()),
        nInputs: z.number().int().positive(),
      })
      .passthrough(),
    maxHours: z.number().int().positive(),
    hourAggregation: z.string(),
    variables: z.array(variableSchema).min(1),
    statics: z.array(staticSchema),
    staticWeightVariable: z.string().optional(),
    deltaCap: z.number().positive(),
    calibration: z.object({ method: z.string() }).passthrough(),
    decisionThreshold: z.number().min(0).max(1),
    provenance: z.record(z.string(), z.unknown()),
    metrics: z.record(z.string(), z.unknown()),
    /** Validated input profiles, most specific first (src/clinical/input-profile.ts). */
    scenarios: z
      .array(
        z
          .object({
            name: z.string().min(1),
            label: z.string(),
            variables: z.array(z.string()).nullable(),
            maxHours: z.number().int().positive().nullable(),
            heldOutAuroc: z.number().min(0).max(1).nullable(),
            /** Least a stay needs for the profile to be claimed (training/scenarios.py coverage_rule); else never. */
            coverage: z
              .object({ minVariables: z.number().int().min(0), minHours: z.number().int().min(0) })
              .passthrough()
              .optional(),
          })
          .passthrough(),
      )
      .optional(),
    /** A hybrid model's second input: one clinical-note embedding per stay (training/model.py HybridClinicalModel). */
    noteEmbedding: z
      .object({
        dimension: z.number().int().positive().max(65536),
        /** The model that makes the embedding; another encoder's vectors mean nothing to this model. */
        encoder: z.string().min(1),
        /** How the embedding was scaled before training, so that callers send it the same way. */
        normalisation: z.string().min(1),
      })
      .passthrough()
      .optional(),
  })
  .passthrough()
  .refine((m) => (m.noteEmbedding === undefined) === (m.onnx.inputs.note === undefined), {
    message: 'noteEmbedding and onnx.inputs.note go together: a hybrid model declares both, others neither',
    path: ['noteEmbedding'],
  });

export type Manifest = z.infer<typeof manifestSchema>;

/** A graph that takes x: exported before the input tensor moved into the graph (training/repackage.py). */
export function takesInputTensor(raw: unknown): boolean {
  const inputs = (raw as { onnx?: { inputs?: Record<string, unknown> } } | null)?.onnx?.inputs;
  return inputs !== undefined && inputs !== null && 'x' in inputs && !('values' in inputs);
}
export type VariableSpec = z.infer<typeof variableSchema>;
export type StaticSpec = z.infer<typeof staticSchema>;
export type NumericStaticSpec = Extract<StaticSpec, { kind: 'numeric' }>;
export type CategoricalStaticSpec = Extract<StaticSpec, { kind: 'categorical' }>;

/**
 * The stay descriptors: the API field that carries each, by the manifest static that encodes it
 * (the PhysioNet 2012 descriptor name, models/README.md). The graph's statics follow the manifest's order.
 */
export const DESCRIPTORS = {
  age: 'Age',
  sex: 'Gender',
  icuType: 'ICUType',
  height: 'Height',
} as const;
export type DescriptorField = keyof typeof DESCRIPTORS;
export const DESCRIPTOR_FIELDS = Object.keys(DESCRIPTORS) as DescriptorField[];

const descriptorFields = new Map<string, DescriptorField>(DESCRIPTOR_FIELDS.map((f) => [DESCRIPTORS[f], f]));

/** The API field of a static or record parameter name (Gender -> sex); undefined for any other name. */
export function descriptorField(name: string): DescriptorField | undefined {
  return descriptorFields.get(name);
}

/** The manifest's numeric static for a descriptor, if it encodes one. */
export function numericDescriptor(manifest: Manifest, field: 'age' | 'height'): NumericStaticSpec | undefined {
  const s = manifest.statics.find((st) => st.name === DESCRIPTORS[field]);
  return s && s.kind === 'numeric' ? s : undefined;
}

/** The manifest's categorical static for a descriptor, if it encodes one. */
export function categoricalDescriptor(manifest: Manifest, field: 'sex' | 'icuType'): CategoricalStaticSpec | undefined {
  const s = manifest.statics.find((st) => st.name === DESCRIPTORS[field]);
  return s && s.kind === 'categorical' ? s : undefined;
}

/** Number of input columns the manifest defines: 3V + 2 per numeric static + one-hot widths. */
export function inputWidth(manifest: Manifest): number {
  const statics = manifest.statics.reduce((width, s) => width + (s.kind === 'numeric' ? 2 : s.categories.length), 0);
  return 3 * manifest.variables.length + statics;
}
