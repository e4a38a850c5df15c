import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import type { ModelFiles } from '../model/repository.js';

/**
 * The ids of the stays a model version was fitted on, from the split file its manifest names
 * (provenance.splits.file, written by training/train.py with every RecordID): a score of such a
 * stay is not held out, and an AUROC computed from those scores overstates the model's accuracy.
 */

export interface TrainingStays {
  ids: ReadonlySet<string>;
  /** The split file, as the manifest names it. */
  file: string;
  /** The manifest's words for the data, e.g. "PhysioNet/Computing in Cardiology Challenge 2012, sets a and c". */
  dataset: string;
}

const splitsSchema = z.object({ file: z.string().min(1) }).passthrough();
const splitFileSchema = z.object({
  train: z.array(z.string()),
  validation: z.array(z.string()).default([]),
  test: z.array(z.string()).default([]),
});

/**
 * Train and validation stays always count (validation picks the epoch, the calibration and the threshold: the model
 * cards); test stays too when the shipped networks were refit on every stay, which train.py records as
 * trainingRecords = train + validation + test. Undefined when the manifest names no split file.
 */
export async function readTrainingStays(files: ModelFiles): Promise<TrainingStays | undefined> {
  const { provenance } = files.manifest;
  const splits = splitsSchema.safeParse(provenance.splits);
  if (!splits.success) return undefined;
  const file = splits.data.file;
  let split: z.infer<typeof splitFileSchema>;
  try {
    split = splitFileSchema.parse(JSON.parse(await readFile(join(files.dir, file), 'utf8')));
  } catch (error) {
    throw new Error(
      `${file} of model ${files.name} ${files.version} (its training stays) cannot be read: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  }
  const all = split.train.length + split.validation.length + split.test.length;
  const refit = provenance.trainingRecords === all;
  const ids = new Set([...split.train, ...split.validation, ...(refit ? split.test : [])]);
  const dataset = typeof provenance.dataset === 'string' ? provenance.dataset : 'its training data';
  return { ids, file, dataset };
}

/** The warning, without `warning: `, for `overlap` of `scored` records; `certain`: ids are PhysioNet RecordIDs. */
export function trainingOverlapWarning(
  training: TrainingStays,
  model: { name: string; version: string },
  overlap: number,
  scored: number,
  certain: boolean,
): string {
  const which = `stays ${model.name} ${model.version} was trained or tuned on (${training.file}: ${training.dataset})`;
  const subject = certain
    ? `${overlap} of ${scored} scored records are ${which}:`
    : `${overlap} of ${scored} scored records have the ids of ${which}; if they are those stays,`;
  return `${subject} their scores are not held out, and an AUROC computed from them overstates the model's accuracy on new patients (the model card gives the held-out figures)`;
}
