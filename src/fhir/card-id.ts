import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Card uuids that show this service issued them, with no state shared between replicas: a
 * UUIDv8 (RFC 9562, section 5.8) whose first 8 bytes are random and last 8 an HMAC-SHA256 tag
 * of them under a server key. Feedback naming any other uuid is refused.
 */

export interface CardIds {
  issue(): string;
  verify(uuid: string): boolean;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function format(bytes: Buffer): string {
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Card ids under `key` (a random one per process when none is given: then only this process verifies them). */
export function cardIds(key: string | undefined): CardIds {
  const secret = key === undefined ? randomBytes(32) : Buffer.from(key, 'utf8');
  const tagOf = (nonce: Buffer): Buffer => {
    const tag = createHmac('sha256', secret).update('cds-card-uuid:').update(nonce).digest().subarray(0, 8);
    tag[0] = ((tag[0] as number) & 0x3f) | 0x80; // RFC 9562 variant bits 10
    return tag;
  };
  return {
    issue() {
      const nonce = randomBytes(8);
      nonce[6] = ((nonce[6] as number) & 0x0f) | 0x80; // version 8
      return format(Buffer.concat([nonce, tagOf(nonce)]));
    },
    verify(uuid) {
      if (!UUID.test(uuid)) return false;
      const bytes = Buffer.from(uuid.replaceAll('-', ''), 'hex');
      const nonce = bytes.subarray(0, 8);
      if (((nonce[6] as number) & 0xf0) !== 0x80) return false;
      return timingSafeEqual(bytes.subarray(8), tagOf(nonce));
    },
  };
}
