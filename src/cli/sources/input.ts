import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';

/** A file (or stdin for "-") as a byte stream whose progress can be read. */
export interface CountedInput {
  total: number | undefined;
  position(): number;
  open(): AsyncGenerator<Buffer>;
}

export async function countedInput(path: string, stdin: Readable = process.stdin): Promise<CountedInput> {
  const total = path === '-' ? undefined : (await stat(path)).size;
  let bytes = 0;
  return {
    total,
    position: () => bytes,
    async *open() {
      const stream = path === '-' ? stdin : createReadStream(path, { highWaterMark: 1024 * 1024 });
      try {
        for await (const chunk of stream) {
          const buf = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
          bytes += buf.length;
          yield buf;
        }
      } finally {
        if (stream !== stdin) stream.destroy();
      }
    },
  };
}
