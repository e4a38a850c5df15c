import { SERVICE_SYSTEM_BASE } from './codes.js';

/**
 * The CapabilityStatement a FHIR client reads at `GET [base]/metadata` (FHIR R4 RESTful API,
 * https://hl7.org/fhir/R4/http.html#capabilities): this service is no FHIR store; it offers one
 * operation, RiskAssessment/$predict, behind OAuth bearer tokens or API keys.
 */

export const PREDICT_OPERATION = `${SERVICE_SYSTEM_BASE}:OperationDefinition:RiskAssessment-predict`;

export function capabilityStatement(
  model: { name: string; version: string } | undefined,
  now: Date,
): Record<string, unknown> {
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: now.toISOString(),
    kind: 'instance',
    software: { name: 'icu-mortality', ...(model ? { version: model.version } : {}) },
    implementation: {
      description: `ICU in-hospital mortality prediction${model ? ` (${model.name} ${model.version})` : ''}: POST a Bundle or Parameters of Observations (LOINC, UCUM) with the Patient to RiskAssessment/$predict.`,
    },
    fhirVersion: '4.0.1',
    format: ['application/fhir+json', 'json'],
    rest: [
      {
        mode: 'server',
        documentation: 'Decision support only. Errors are OperationOutcomes.',
        security: {
          cors: false,
          service: [
            {
              coding: [
                {
                  system: 'http://terminology.hl7.org/CodeSystem/restful-security-service',
                  code: 'OAuth',
                  display: 'OAuth',
                },
              ],
            },
          ],
          description:
            'Authorization: Bearer <JWT> (issuer, audience and expiry checked against the configured JWKS; scope predict) or an API key (X-API-Key). /metadata needs none.',
        },
        resource: [
          {
            type: 'RiskAssessment',
            documentation: 'Not stored: the operation computes and returns one RiskAssessment per call.',
            operation: [
              {
                name: 'predict',
                definition: PREDICT_OPERATION,
                documentation:
                  'Type-level operation: Bundle (collection or searchset) or Parameters in, RiskAssessment out.',
              },
            ],
          },
        ],
      },
    ],
  };
}
