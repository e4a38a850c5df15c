import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { terminalProgress } from '../../src/cli/progress.js';

/** A stream that says it is a terminal, recording what is drawn on it. */
function fakeTerminal(): { stream: NodeJS.WriteStream; text(): string } {
  const stream = new PassThrough() as unknown as NodeJS.WriteStream & PassThrough;
  let text = '';
  stream.on('data', (d: Buffer) => {
    text += d.toString('utf8');
  });
  Object.assign(stream, { isTTY: true, columns: 160, rows: 40 });
  return { stream, text: () => text };
}

test('the progress bar shows counts, rate and ETA on a terminal', () => {
  const term = fakeTerminal();
  const progress = terminalProgress(1000, 'bytes', term.stream);
  progress.update(500, 40, 2);
  progress.stop();
  // eslint-disable-next-line no-control-regex
  const shown = term.text().replace(/\u001b\[[0-9;?]*[A-Za-z]/g, '');
  assert.match(shown, /50%/);
  assert.match(shown, /40 scored, 2 failed/);
  assert.match(shown, /records\/s/);
  assert.match(shown, /ETA/);
});

test('without a known total the bar shows counts and rate only', () => {
  const term = fakeTerminal();
  const progress = terminalProgress(undefined, 'bytes', term.stream);
  progress.update(0, 7, 0);
  progress.stop();
  assert.match(term.text(), /7 scored, 0 failed/);
  assert.doesNotMatch(term.text(), /ETA/);
});
