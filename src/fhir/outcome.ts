/**
 * OperationOutcome issues: how the FHIR endpoints report errors (the whole request refused)
 * and warnings (one input not used, and why). Messages name codes, units and FHIRPath
 * locations, never values, so they are safe to log as well as to return.
 */

/** A subset of the R4 IssueType value set (http://hl7.org/fhir/issue-type). */
export type IssueCode =
  | 'invalid'
  | 'structure'
  | 'required'
  | 'value'
  | 'not-supported'
  | 'code-invalid'
  | 'business-rule'
  | 'incomplete'
  | 'informational'
  | 'processing'
  | 'not-found'
  | 'login'
  | 'forbidden'
  | 'throttled'
  | 'transient'
  | 'timeout'
  | 'too-costly'
  | 'security'
  | 'exception';

export interface InputIssue {
  severity: 'fatal' | 'error' | 'warning' | 'information';
  code: IssueCode;
  message: string;
  /** FHIRPath-style locations in the request, e.g. Bundle.entry[3].resource.valueQuantity.code */
  expression?: string[];
}

export interface OperationOutcome {
  resourceType: 'OperationOutcome';
  id?: string;
  issue: Array<{
    severity: InputIssue['severity'];
    code: IssueCode;
    diagnostics: string;
    expression?: string[];
  }>;
}

export function operationOutcome(issues: readonly InputIssue[], id?: string): OperationOutcome {
  const out: OperationOutcome = {
    resourceType: 'OperationOutcome',
    // R4 requires at least one issue: "all OK" is itself an informational issue.
    issue:
      issues.length > 0
        ? issues.map((i) => ({
            severity: i.severity,
            code: i.code,
            diagnostics: i.message,
            ...(i.expression ? { expression: i.expression } : {}),
          }))
        : [{ severity: 'information', code: 'informational', diagnostics: 'all inputs were used' }],
  };
  if (id !== undefined) out.id = id;
  return out;
}

/** Thrown by the mapping when the request as a whole cannot be scored. */
export class FhirInputError extends Error {
  override name = 'FhirInputError';
  constructor(
    /** 400: malformed request; 422: well formed, but nothing or not enough to score. */
    readonly statusCode: 400 | 422,
    readonly issues: InputIssue[],
  ) {
    super(
      issues.find((i) => i.severity === 'error' || i.severity === 'fatal')?.message ??
        'the FHIR input cannot be scored',
    );
  }
}
