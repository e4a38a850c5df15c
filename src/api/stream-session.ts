import type { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ScoreOutcome } from '../scoring/pipeline.js';
import type { ModelLease } from '../model/repository.js';
import { recordAudit } from '../plugins/app/audit.js';
import { endLine, outcomeLine, type CutReason } from '../http/ndjson-answer.js';

/**
 * One stream's lease, counts and end. It finishes once, at the last line written or when the
 * connection closes, which can come before its answer generator ever starts.
 */
export class StreamSession {
  scored = 0;
  invalid = 0;
  cut: CutReason | undefined;
  /** Aborted to drop this stream's queued stays. */
  readonly scoring = new AbortController();
  /** Aborted to stop reading the body. */
  readonly reading = new AbortController();
  #finished = false;

  constructor(
    private readonly request: FastifyRequest,
    private readonly reply: FastifyReply,
    private readonly body: Readable,
    private readonly lease: ModelLease,
    private readonly openStreams: Set<(reason: CutReason) => void>,
  ) {
    openStreams.add(this.cutStream);
    reply.raw.on('close', this.#onClose);
  }

  readonly cutStream = (reason: CutReason): void => {
    if (this.cut !== undefined) return;
    this.cut = reason;
    this.reading.abort();
  };

  finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.openStreams.delete(this.cutStream);
    this.reply.raw.off('close', this.#onClose);
    const { model } = this.lease;
    recordAudit(this.request, {
      patients: this.scored + this.invalid,
      model: `${model.name}@${model.version}`,
      ...(this.cut === undefined ? {} : { cut: this.cut }),
    });
    this.lease.release();
  }

  readonly #onClose = (): void => {
    if (!this.reply.raw.writableFinished) {
      // The client has gone: stop reading, and take this stream's stays out of the queue.
      this.scoring.abort(new Error('client disconnected'));
      this.body.destroy();
    }
    this.finish();
  };
}

/** The answer, a chunk per scored batch, then the end line of a cut stream. */
export async function* answerLines(
  session: StreamSession,
  outcomes: AsyncIterable<Array<ScoreOutcome<number>>>,
  maxErrorLines: number,
): AsyncGenerator<string> {
  let afterLine = 0;
  try {
    for await (const batch of outcomes) {
      let text = '';
      for (const outcome of batch) {
        if (outcome.ok) {
          session.scored++;
        } else if (session.invalid === maxErrorLines) {
          session.cutStream('error_limit');
          // Queued batches of this stream are dropped, not scored for nobody.
          session.scoring.abort(new Error('stream error limit'));
          break;
        } else {
          session.invalid++;
        }
        text += `${outcomeLine(outcome)}\n`;
        afterLine = outcome.where;
      }
      yield text;
      if (session.cut === 'error_limit') break;
    }
    if (session.cut !== undefined) yield endLine(session.cut, afterLine, maxErrorLines);
  } finally {
    session.finish();
  }
}
