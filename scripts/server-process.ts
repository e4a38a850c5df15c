/**
 * Runs the real server (src/server.ts) as a child process on 127.0.0.1 for the soak script
 * and the robustness tests: free port, two throw-away API keys (two callers), tiny fixture model by default,
 * readiness awaited, output kept for diagnosis. Loopback only.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { request as httpRequest, type Agent, type ClientRequest, type IncomingMessage } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const HOST = '127.0.0.1';

export interface ServerProcess {
  base: string;
  port: number;
  pid: number;
  apiKey: string;
  /** A second caller's key, with the same scopes: what fair sharing tells apart from `apiKey`. */
  otherApiKey: string;
  child: ChildProcess;
  /** Last lines of the server's stdout/stderr. */
  output: string[];
  /** Resolves when the process exits. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGKILLs the process if it still runs, removes the temporary model root. */
  dispose(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, HOST, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolvePort(port));
    });
  });
}

/** A models root holding icu-mortality/0.0.0-tiny -> test/fixtures/tiny-model. */
export async function tinyModelRoot(): Promise<{ root: string; cleanup: () => Promise<void> }> {
  const root = await mkdtemp(join(tmpdir(), 'icu-models-'));
  await mkdir(join(root, 'icu-mortality'));
  await symlink(join(ROOT, 'test', 'fixtures', 'tiny-model'), join(root, 'icu-mortality', '0.0.0-tiny'), 'dir');
  return { root, cleanup: () => rm(root, { recursive: true, force: true }) };
}

export async function startServer(
  options: { env?: Record<string, string>; modelDir?: string; readyTimeoutMs?: number; scopes?: string } = {},
): Promise<ServerProcess> {
  const port = await freePort();
  const tiny = options.modelDir ? undefined : await tinyModelRoot();
  const apiKey = randomBytes(24).toString('base64url');
  const otherApiKey = randomBytes(24).toString('base64url');
  const sha = (key: string): string => createHash('sha256').update(key).digest('hex');
  const scopes = options.scopes ?? 'predict';
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'server.ts')], {
    cwd: ROOT,
    env: {
      ...process.env,
      HOST,
      PORT: String(port),
      MODEL_DIR: options.modelDir ?? tiny?.root ?? '',
      LOG_LEVEL: 'warn',
      INTRA_OP_THREADS: '1',
      ENGINE_WORKERS: '1',
      // One load generator on one IP: per-client rate limiting would answer 429.
      RATE_LIMIT_MAX: '0',
      API_KEY_HASHES: `robustness:${sha(apiKey)}:${scopes},robustness-other:${sha(otherApiKey)}:${scopes}`,
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  const keep = (chunk: Buffer): void => {
    for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) output.push(line.slice(0, 600));
    if (output.length > 60) output.splice(0, output.length - 60);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let done = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    child.once('exit', (code, signal) => {
      done = true;
      r({ code, signal });
    }),
  );
  const base = `http://${HOST}:${port}`;
  const dispose = async (): Promise<void> => {
    if (!done) {
      child.kill('SIGKILL');
      await exited;
    }
    await tiny?.cleanup();
  };
  // Readiness: a bounded poll of /health/ready (the server takes a few seconds to load tsx and the model).
  const deadline = Date.now() + (options.readyTimeoutMs ?? 60_000);
  while (!done && Date.now() < deadline) {
    try {
      const r = await fetch(`${base}/health/ready`);
      await r.arrayBuffer();
      if (r.ok) return { base, port, pid: child.pid ?? 0, apiKey, otherApiKey, child, output, exited, dispose };
    } catch {
      /* not listening yet */
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  await dispose();
  throw new Error(`server did not become ready:\n${output.join('\n')}`);
}

export interface HeldRequest {
  /** Sends the body; resolves with the status and body of the answer. */
  finish(): Promise<{ status: number; body: string }>;
  /** The answer, for callers that write the body themselves through `request`. */
  answer: Promise<{ status: number; body: string }>;
  request: ClientRequest;
}

/**
 * Starts a POST whose headers the server has provably received and routed before this
 * resolves: the request carries `Expect: 100-continue`, and Node's HTTP server answers
 * `100 Continue` only once it has parsed the headers and handed the request to Fastify. The
 * body is sent only when finish() is called, so the request stays in flight until then.
 */
export async function holdRequest(
  base: string,
  path: string,
  body: string,
  headers: Record<string, string>,
  agent?: Agent,
): Promise<HeldRequest> {
  const url = new URL(path, base);
  const held = {} as HeldRequest;
  let continued: () => void = () => undefined;
  const gotContinue = new Promise<void>((r) => (continued = r));
  const answer = new Promise<{ status: number; body: string }>((resolveAnswer, reject) => {
    const req = httpRequest(url, {
      method: 'POST',
      agent,
      headers: {
        ...headers,
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
        expect: '100-continue',
      },
    });
    held.request = req;
    req.on('continue', () => continued());
    req.on('response', (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolveAnswer({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.flushHeaders();
  });
  // An early final answer (e.g. 401, 503) also ends the wait.
  await Promise.race([
    gotContinue,
    answer.then(
      () => undefined,
      () => undefined,
    ),
  ]);
  held.answer = answer;
  held.finish = async () => {
    held.request.end(body);
    return answer;
  };
  return held;
}
