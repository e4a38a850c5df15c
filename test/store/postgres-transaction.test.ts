/**
 * A PostgreSQL connection that dies inside a transaction, between two of its queries (a server
 * restart or an administrator's pg_terminate_backend): the transaction fails and nothing else
 * does. A checked-out pg client emits 'error' on itself then; unheard, that error closed the
 * whole service (the soak's PostgreSQL outage found it).
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { openPostgres } from '../../src/store/postgres.js';
import { PG_SKIP } from './backends.js';

const url = process.env.TEST_DATABASE_URL;

test(
  'a connection killed between two queries of a transaction fails that transaction only',
  { skip: PG_SKIP },
  async () => {
    const client = openPostgres(url as string, { onIdleError: () => {} });
    const killer = openPostgres(url as string);
    const uncaught: unknown[] = [];
    const onUncaught = (error: unknown): void => {
      uncaught.push(error);
    };
    process.on('uncaughtException', onUncaught);
    try {
      await assert.rejects(
        client.transaction(async (tx) => {
          const row = await tx.get<{ pid: number }>('SELECT pg_backend_pid() AS pid');
          await killer.run('SELECT pg_terminate_backend($1)', [row?.pid ?? 0]);
          // Wait, outside any query, until the server has dropped the backend, then a little longer
          // for its goodbye to reach this process's socket.
          for (let tries = 0; tries < 250; tries++) {
            const gone = await killer.get('SELECT 1 AS alive FROM pg_stat_activity WHERE pid = $1', [row?.pid ?? 0]);
            if (gone === undefined) break;
            await sleep(20);
          }
          await sleep(200);
          return row;
        }),
      );
      assert.deepEqual(uncaught, []);
      assert.equal((await client.get<{ one: number }>('SELECT 1 AS one'))?.one, 1, 'the pool serves again');
    } finally {
      process.off('uncaughtException', onUncaught);
      await killer.close();
      await client.close();
    }
  },
);
