import type { InputIssue } from './outcome.js';

/**
 * Collects warnings, merging those with the same message into one issue that lists every
 * location: a search result of a whole stay can hold thousands of Observations the model
 * does not use, and one issue per code reads better (and stays bounded) than thousands.
 */

const MAX_EXPRESSIONS = 50;

export class IssueCollector {
  readonly #issues = new Map<string, InputIssue & { count: number }>();

  add(issue: InputIssue): void {
    const key = `${issue.severity}|${issue.code}|${issue.message}`;
    const existing = this.#issues.get(key);
    if (!existing) {
      this.#issues.set(key, { ...issue, expression: [...(issue.expression ?? [])], count: 1 });
      return;
    }
    existing.count++;
    for (const e of issue.expression ?? []) {
      if ((existing.expression as string[]).length < MAX_EXPRESSIONS) (existing.expression as string[]).push(e);
    }
  }

  get size(): number {
    return this.#issues.size;
  }

  list(): InputIssue[] {
    return [...this.#issues.values()].map(({ count, ...issue }) => {
      const shown = issue.expression?.length ?? 0;
      const message =
        count > 1
          ? `${issue.message} (${count} occurrences${count > shown && shown > 0 ? `, first ${shown} located` : ''})`
          : issue.message;
      const out: InputIssue = { severity: issue.severity, code: issue.code, message };
      if (shown > 0) out.expression = issue.expression as string[];
      return out;
    });
  }
}
