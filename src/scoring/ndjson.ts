import type { PatientValidator } from '../clinical/validate.js';
import type { LineItem } from './lines.js';
import type { RecordFailure } from './pipeline.js';

/**
 * One NDJSON line as a patient object, or the failure to report for it (never the line's content).
 * With a validator, a line its scanner takes becomes a ScannedPatient (read and validated in
 * one pass, several times faster than JSON.parse and validation); any other line is parsed here.
 */
export function parseNdjsonLine(
  line: LineItem,
  maxLineBytes: number,
  validator?: PatientValidator,
): { input?: unknown; id?: string; failure?: RecordFailure } {
  if (line.tooLong) {
    return {
      failure: {
        error: 'line_too_long',
        message: `line ${line.number} is longer than ${maxLineBytes} bytes`,
        details: [],
      },
    };
  }
  const scanned = validator?.scanText(line.bytes);
  if (scanned !== undefined) {
    const id = scanned.patient.id;
    return id === undefined ? { input: scanned } : { input: scanned, id };
  }
  let value: unknown;
  try {
    value = JSON.parse(line.bytes.toString('utf8'));
  } catch {
    // JSON.parse's message quotes the input: patient data must not reach the report or logs.
    return { failure: { error: 'invalid_json', message: `line ${line.number} is not valid JSON`, details: [] } };
  }
  const id =
    typeof value === 'object' && value !== null && 'id' in value && typeof value.id === 'string' ? value.id : undefined;
  return id === undefined ? { input: value } : { input: value, id };
}
