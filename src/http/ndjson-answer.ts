import type { RecordFailure, ScoreOutcome } from '../scoring/pipeline.js';
import { describeError, issuesToDetails } from './error-table.js';

/** The NDJSON answer of a streamed cohort: one line per outcome, and the line that says why a stream was cut. */

/** Why a stream stopped reading its input before the end. */
export type CutReason = 'shutting_down' | 'error_limit';

export function endLine(reason: CutReason, afterLine: number, maxErrorLines: number): string {
  const message =
    reason === 'error_limit'
      ? `more than ${maxErrorLines} lines were invalid: the stream was ended after line ${afterLine}; check the input, then resubmit from line ${afterLine + 1}`
      : `the service is shutting down: lines after ${afterLine} were not scored; resubmit them from line ${afterLine + 1}`;
  return `${JSON.stringify({ end: { reason, afterLine, message } })}\n`;
}

/** A line's failure says what the whole request would (src/http/error-table.ts): code, and a 5xx's message hidden. */
export function failureOf(error: unknown): RecordFailure {
  const { code, message } = describeError(error);
  return { error: code, message, details: [] };
}

export function outcomeLine(outcome: ScoreOutcome<number>): string {
  if (outcome.ok) return JSON.stringify({ line: outcome.where, ...outcome.result });
  const { failure } = outcome;
  return JSON.stringify({
    line: outcome.where,
    ...(outcome.id === undefined ? {} : { id: outcome.id }),
    error: { error: failure.error, message: failure.message, details: issuesToDetails(failure.details) },
  });
}
