import type { SqlClient } from './sql-client.js';

/**
 * Versioned schema migrations, applied in order at start. Each feature module (predictions,
 * outcomes, alert state, encounters) owns its entries; src/store/migrations.ts lists them all.
 */

export interface Migration {
  /** 1, 2, 3...: applied in this order, once each, recorded in schema_migrations. */
  version: number;
  name: string;
  /** Statements in the portable dialect (src/store/sql-client.ts), run in one transaction. */
  up: readonly string[];
}

// Any fixed 64-bit number; replicas starting together queue on it (pg_advisory_xact_lock).
const MIGRATION_LOCK = 0x1c0_304;

/** Checks the list once: versions 1..n, strictly increasing, no gaps, no repeats. */
export function checkMigrations(migrations: readonly Migration[]): void {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`migration ${m.name}: version ${m.version}, expected ${i + 1}`);
  });
}

/**
 * Applies the migrations not yet recorded; returns the versions it applied. One transaction
 * holds them all: on PostgreSQL under an advisory lock, so that a second replica starting at
 * the same time waits and then finds nothing left to do; on SQLite under BEGIN IMMEDIATE.
 */
export async function migrate(client: SqlClient, migrations: readonly Migration[]): Promise<number[]> {
  checkMigrations(migrations);
  return client.transaction(async (tx) => {
    if (tx.dialect === 'postgres') await tx.run('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await tx.run(
      'CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)',
    );
    const done = new Set(
      (await tx.all<{ version: number }>('SELECT version FROM schema_migrations')).map((r) => Number(r.version)),
    );
    const newest = Math.max(0, ...done);
    if (newest > migrations.length) {
      // A newer release migrated this database: an older one must not write to a schema it does not know.
      throw new Error(`the store's schema is at version ${newest}, newer than this release's ${migrations.length}`);
    }
    const applied: number[] = [];
    for (const m of migrations) {
      if (done.has(m.version)) continue;
      for (const statement of m.up) await tx.run(statement);
      await tx.run('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [
        m.version,
        m.name,
        Date.now(),
      ]);
      applied.push(m.version);
    }
    return applied;
  });
}
