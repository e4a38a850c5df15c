/**
 * The bytes of long NDJSON lines all streams together may hold. A line past LONG_LINE_BYTES takes a
 * ticket for the whole per-line limit until parsed or skipped; without room its stream waits (TCP
 * backpressure). A ticket covers a line to its end, so no holder waits again: no deadlock.
 */

/** Lines up to this size need no ticket: a stay of a few days is tens of kilobytes. */
export const LONG_LINE_BYTES = 1024 * 1024;
const NEWLINE = 0x0a;

export class LineBudget {
  #used = 0;
  readonly #waiting: Array<{ grant: () => void }> = [];

  constructor(
    /** STREAM_MAX_BUFFERED_BYTES */
    readonly totalBytes: number,
    /** STREAM_MAX_LINE_BYTES: what one long line may hold. */
    readonly ticketBytes: number,
  ) {
    if (ticketBytes > totalBytes) throw new RangeError('a ticket must fit in the budget');
  }

  get usedBytes(): number {
    return this.#used;
  }

  get waiting(): number {
    return this.#waiting.length;
  }

  /** Resolves true once a ticket is held, false if `signal` aborts first. */
  acquire(signal: AbortSignal): Promise<boolean> {
    if (signal.aborted) return Promise.resolve(false);
    if (this.#waiting.length === 0 && this.#used + this.ticketBytes <= this.totalBytes) {
      this.#used += this.ticketBytes;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      const waiter = {
        grant: (): void => {
          signal.removeEventListener('abort', onAbort);
          resolve(true);
        },
      };
      const onAbort = (): void => {
        const i = this.#waiting.indexOf(waiter);
        if (i >= 0) this.#waiting.splice(i, 1);
        resolve(false);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.#waiting.push(waiter);
    });
  }

  release(): void {
    this.#used -= this.ticketBytes;
    while (this.#waiting.length > 0 && this.#used + this.ticketBytes <= this.totalBytes) {
      this.#used += this.ticketBytes;
      this.#waiting.shift()?.grant();
    }
  }
}

/**
 * The chunks of `body`, each passed on only once the line it extends has a ticket when that line
 * is long. The ticket is returned when the line has ended (or passed `maxLineBytes`, when the splitter
 * skips it) and the consumer asks for the next chunk: by then the line has been parsed.
 */
export async function* budgetedChunks(
  body: AsyncIterable<Buffer>,
  budget: LineBudget,
  maxLineBytes: number,
  signal: AbortSignal,
): AsyncGenerator<Buffer> {
  let partial = 0;
  let holding = false;
  try {
    for await (const chunk of body) {
      const first = chunk.indexOf(NEWLINE);
      const last = chunk.lastIndexOf(NEWLINE);
      const reached = partial + (first < 0 ? chunk.length : first);
      const after = last < 0 ? reached : chunk.length - last - 1;
      if (!holding && reached > LONG_LINE_BYTES && partial <= maxLineBytes + 1) {
        if (!(await budget.acquire(signal))) return;
        holding = true;
      }
      yield chunk;
      if (holding && (last >= 0 || after > maxLineBytes + 1)) {
        holding = false;
        budget.release();
      }
      partial = after;
    }
  } finally {
    if (holding) budget.release();
  }
}
