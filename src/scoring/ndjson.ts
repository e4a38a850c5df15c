import type { LineItem } from './lines.js';
import type { RecordFailure } from './pipeline.js';

/** One NDJSON line as a patient object, or the failure to report for it (never the line's content). */
export function parseNdjsonLine(line: LineItem, maxLineBytes: number): { input?: unknown; id?: string; failure?: RecordFailure } {
  if (line.tooLong) {
    return { failure: { error: 'line_too_long', message: `line ${line.number} is longer than ${maxLineBytes} bytes`, details: [] } };
  }
  let value: unknown;
  try {
    value = JSON.parse(line.text);
  } catch {
    // JSON.parse's message quotes the input: patient data must not reach the report or logs.
    return { failure: { error: 'invalid_json', message: `line ${line.number} is not valid JSON`, details: [] } };
  }
  const id = typeof value === 'object' && value !== null && 'id' in value && typeof value.id === 'string' ? value.id : undefined;
  return id === undefined ? { input: value } : { input: value, id };
}
