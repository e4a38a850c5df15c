import { createHmac, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';

/**
 * Patients and encounters are stored under an HMAC-SHA256 of their id with a site key, never
 * the raw id: the same id always maps to the same key (outcomes join to predictions), and
 * without the key the table cannot be matched back to a record number.
 */

/** At least 32 bytes: HMAC-SHA256's block-size guidance is a key as long as the hash (RFC 2104 §3). */
export const SITE_KEY_MIN_BYTES = 32;

export type SubjectKey = (id: string) => string;

export function subjectKeyer(siteKey: Buffer): SubjectKey {
  if (siteKey.length < SITE_KEY_MIN_BYTES) throw new Error(`the site key must be at least ${SITE_KEY_MIN_BYTES} bytes`);
  return (id) => createHmac('sha256', siteKey).update(id, 'utf8').digest('hex');
}

/**
 * The key of a single-node SQLite install without SITE_ID_KEY: generated once into `file`
 * (mode 0600) and read back on every later start, so keys stay stable across restarts.
 */
export function loadOrCreateSiteKey(file: string): Buffer {
  try {
    writeFileSync(file, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  const key = Buffer.from(readFileSync(file, 'utf8').trim(), 'utf8');
  if (key.length < SITE_KEY_MIN_BYTES) throw new Error(`${file} holds fewer than ${SITE_KEY_MIN_BYTES} bytes`);
  return key;
}
