import { Worker } from 'node:worker_threads';

/**
 * A worker thread running `url`. Node 20 workers do not inherit `--import tsx` ("Unknown file
 * extension .ts"): a .ts worker (the service run from src/ through tsx) registers it first.
 */
export function newWorker(url: URL, workerData: unknown): Worker {
  if (!url.pathname.endsWith('.ts')) return new Worker(url, { workerData });
  const api = import.meta.resolve('tsx/esm/api');
  const bootstrap = `import(${JSON.stringify(api)}).then(({ register }) => { register(); return import(${JSON.stringify(url.href)}); })`;
  return new Worker(bootstrap, { eval: true, workerData });
}

/** The URL of a module beside `here` (an import.meta.url): its .ts under tsx, its .js once compiled. */
export function siblingModule(here: string, name: string): URL {
  const from = new URL(here);
  return new URL(`./${name}${from.pathname.endsWith('.ts') ? '.ts' : '.js'}`, from);
}
