import type { Migration } from './migrate.js';
import { predictionsTable } from './predictions.js';
import { encountersTable } from './encounters.js';
import { outcomesAtIndex, outcomesTable } from './outcomes.js';
import { alertStateAtIndex, alertStateTable } from './alert-state.js';

/**
 * Every migration of the store, in the order applied. Feature modules own their SQL; a new one
 * appends its entries here with the next free number. Never renumber or edit an applied entry.
 */
export const migrations: readonly Migration[] = [
  { version: 1, ...predictionsTable },
  { version: 2, ...outcomesTable },
  { version: 3, ...alertStateTable },
  { version: 4, ...encountersTable },
  { version: 5, name: 'retention_indexes', up: [outcomesAtIndex, alertStateAtIndex] },
];
