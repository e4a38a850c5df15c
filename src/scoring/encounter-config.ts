import { z } from 'zod';

/** The encounters' environment variables (spread into src/config.ts's schema). */

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

export const encounterEnvShape = {
  /** An encounter with no delivery for this long is removed (its hours with it). */
  ENCOUNTER_IDLE_TTL_MS: int(60_000, 366 * 24 * 3_600_000).default(24 * 3_600_000),
  /** Encounters held at once; a new one past it gets 503 until some end or expire. */
  ENCOUNTER_MAX_HELD: int(1, 10_000_000).default(10_000),
};

export interface EncounterConfig {
  idleTtlMs: number;
  maxHeld: number;
}

type EncounterEnv = { [K in keyof typeof encounterEnvShape]: z.infer<(typeof encounterEnvShape)[K]> };

export function toEncounterConfig(e: EncounterEnv): EncounterConfig {
  return { idleTtlMs: e.ENCOUNTER_IDLE_TTL_MS, maxHeld: e.ENCOUNTER_MAX_HELD };
}
