import { z } from 'zod';
import type { RiskThresholds } from './thresholds.js';

/**
 * Environment variables of the FHIR and CDS Hooks endpoints (composed into src/config.ts; the
 * README's configuration table says what each means). CDS_FHIR_SERVERS is an allow-list: any
 * other fhirServer is never contacted.
 */

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

const origins = z.string().transform((s, ctx) => {
  const out: string[] = [];
  for (const item of s
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p.length > 0)) {
    try {
      const url = new URL(item);
      if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error('scheme');
      out.push(url.origin);
    } catch {
      ctx.addIssue({ code: 'custom', message: `"${item}" is not an http(s) origin` });
    }
  }
  return out;
});

const probability = z.coerce.number().min(0).max(1);

export const fhirEnvShape = {
  RISK_MODERATE_THRESHOLD: probability.default(0.15),
  RISK_HIGH_THRESHOLD: probability.default(0.4),
  MODEL_CARD_URL: z.url({ protocol: /^https?$/ }).optional(),
  CDS_SILENT: bool.default(false),
  CDS_FHIR_SERVERS: origins.default([]),
  /** Browser origins allowed to call the CDS Hooks routes (CORS), or "*"; empty = no CORS. */
  CDS_CORS_ORIGINS: z.union([z.literal('*').transform(() => ['*']), origins]).default([]),
  /** HMAC key of the CDS card uuids (the same on every replica); unset: a random key per process. */
  CDS_CARD_KEY: z.string().min(32, 'must be at least 32 characters (e.g. openssl rand -hex 32)').optional(),
  FHIR_FETCH_TIMEOUT_MS: z.coerce.number().int().min(50).max(60_000).default(3000),
  FHIR_BODY_LIMIT_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .max(1 << 30)
    .default(16 * 1024 * 1024),
  /** The SMART app's client id, as registered in the EHR (README, "SMART on FHIR app"). */
  SMART_CLIENT_ID: z
    .string()
    .regex(/^[\x21-\x7e]{1,128}$/, '1-128 printable ASCII characters')
    .default('icu-mortality'),
  /** EHR origins (FHIR server, authorization server) the app's page may call and be framed by; empty: none. */
  SMART_EHR_ORIGINS: origins.default([]),
  /** Absolute launch URL of the app for CDS cards' SMART links; unset: this request's own origin + /app/launch. */
  SMART_LAUNCH_URL: z.url({ protocol: /^https?$/ }).optional(),
  /** Hours after which a request's latest data count as stale (a warning in the answer). */
  FHIR_STALE_AFTER_HOURS: z.coerce
    .number()
    .positive()
    .max(24 * 366)
    .default(24),
};

export const fhirEnvSchema = z.object(fhirEnvShape);

export interface FhirConfig {
  thresholds: RiskThresholds;
  modelCardUrl?: string;
  cdsSilent: boolean;
  cdsFhirServers: string[];
  cdsCorsOrigins: string[];
  cdsCardKey?: string;
  fetchTimeoutMs: number;
  bodyLimitBytes: number;
  staleAfterHours: number;
  smartApp: SmartAppConfig;
}

export interface SmartAppConfig {
  clientId: string;
  ehrOrigins: string[];
  launchUrl?: string;
}

export function toFhirConfig(e: z.infer<typeof fhirEnvSchema>): FhirConfig {
  if (e.RISK_HIGH_THRESHOLD <= e.RISK_MODERATE_THRESHOLD) {
    throw new Error('invalid FHIR configuration:\n  RISK_HIGH_THRESHOLD must be greater than RISK_MODERATE_THRESHOLD');
  }
  const config: FhirConfig = {
    thresholds: { moderate: e.RISK_MODERATE_THRESHOLD, high: e.RISK_HIGH_THRESHOLD },
    cdsSilent: e.CDS_SILENT,
    cdsFhirServers: e.CDS_FHIR_SERVERS,
    cdsCorsOrigins: e.CDS_CORS_ORIGINS,
    fetchTimeoutMs: e.FHIR_FETCH_TIMEOUT_MS,
    bodyLimitBytes: e.FHIR_BODY_LIMIT_BYTES,
    staleAfterHours: e.FHIR_STALE_AFTER_HOURS,
    smartApp: {
      clientId: e.SMART_CLIENT_ID,
      ehrOrigins: e.SMART_EHR_ORIGINS,
      ...(e.SMART_LAUNCH_URL === undefined ? {} : { launchUrl: e.SMART_LAUNCH_URL }),
    },
  };
  if (e.MODEL_CARD_URL !== undefined) config.modelCardUrl = e.MODEL_CARD_URL;
  if (e.CDS_CARD_KEY !== undefined) config.cdsCardKey = e.CDS_CARD_KEY;
  return config;
}
