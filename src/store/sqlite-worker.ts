/** Entry point of the SQLite worker thread (started by sqlite.ts). */
import { parentPort, workerData } from 'node:worker_threads';
import { serveSqlite, type SqliteInit } from './sqlite-host.js';

if (parentPort === null) throw new Error('sqlite-worker.ts must run in a worker thread');
serveSqlite(parentPort, workerData as SqliteInit);
