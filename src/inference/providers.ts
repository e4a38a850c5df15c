/**
 * Execution-provider selection. ONNX Runtime does not fall back by itself: a provider that
 * cannot start (CUDA libraries missing, WebGPU without a Vulkan adapter) makes
 * InferenceSession.create throw, so we try the configured providers in order and end on the
 * CPU, recording why each one was skipped.
 */
import ort from 'onnxruntime-node';

// ORT's process-wide logger prints a provider's start-up failure in red on stderr before the
// create() call throws; the fallback reports the same reason as one warning of ours, so only
// fatal messages are left to ORT (the environment reads this at its first session).
ort.env.logLevel = 'fatal';

export const PROVIDER_NAMES = ['cpu', 'webgpu', 'cuda'] as const;
export type ProviderName = (typeof PROVIDER_NAMES)[number];

export interface ProviderAttemptFailure {
  provider: ProviderName;
  reason: string;
}

export interface SessionSettings {
  intraOpThreads: number;
  allowSpinning: boolean;
}

/** The preference list without duplicates, always ending on `cpu` (which every build has). */
export function providerOrder(preferred: readonly ProviderName[]): ProviderName[] {
  const order: ProviderName[] = [];
  for (const p of preferred) if (!order.includes(p)) order.push(p);
  // Anything listed after cpu could never be reached, since cpu does not fail to start.
  const cpuAt = order.indexOf('cpu');
  if (cpuAt >= 0) order.length = cpuAt + 1;
  else order.push('cpu');
  return order;
}

export function sessionOptions(provider: ProviderName, settings: SessionSettings): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: [provider],
    intraOpNumThreads: settings.intraOpThreads,
    // One batch at a time per session: parallelism comes from intra-op threads and workers.
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    // ORT logs warnings (e.g. about unused initialisers) on stderr; we report what matters ourselves.
    logSeverityLevel: 3,
    extra: {
      session: {
        // Spinning intra-op threads burn CPU between batches that the event loop needs.
        intra_op: { allow_spinning: settings.allowSpinning ? '1' : '0' },
      },
    },
  };
}

/** ORT's messages can carry a coloured multi-line log; keep one readable line. */
export function conciseReason(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  // eslint-disable-next-line no-control-regex -- ANSI colour codes start with ESC
  const plain = text.replace(/\u001b\[[0-9;]*m/g, '');
  const line = plain.split('\n').find((l) => l.trim() !== '') ?? 'unknown error';
  return line.trim().slice(0, 500);
}

export interface OpenedSession {
  session: ort.InferenceSession;
  provider: ProviderName;
  failures: ProviderAttemptFailure[];
}

/**
 * Opens the model with the first provider that starts. Throws a NoProviderError naming
 * every provider's failure when even the CPU fails (e.g. the model file is unreadable).
 */
export async function openSession(
  modelPath: string,
  preferred: readonly ProviderName[],
  settings: SessionSettings,
): Promise<OpenedSession> {
  const failures: ProviderAttemptFailure[] = [];
  for (const provider of providerOrder(preferred)) {
    try {
      const session = await ort.InferenceSession.create(modelPath, sessionOptions(provider, settings));
      return { session, provider, failures };
    } catch (error) {
      failures.push({ provider, reason: conciseReason(error) });
    }
  }
  throw new NoProviderError(failures);
}

export class NoProviderError extends Error {
  override readonly name = 'NoProviderError';
  readonly failures: ProviderAttemptFailure[];

  constructor(failures: ProviderAttemptFailure[]) {
    super(
      `could not open the model with any execution provider (${failures.map((f) => `${f.provider}: ${f.reason}`).join('; ')})`,
    );
    this.failures = failures;
  }
}
