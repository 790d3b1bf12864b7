import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createLogger } from '../../core/logger.js';
import { createRepeatedLog } from '../../core/repeated-log.js';

interface Line {
  level: string;
  msg: string;
  cause?: string;
  repeated?: number;
  customerId?: string;
}

function setup() {
  const lines: Line[] = [];
  const logger = createLogger({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line) as Line) });
  let clock = 1_000_000;
  const repeated = createRepeatedLog(logger, { windowMs: 60_000, now: () => clock, timer: false });
  const at = (level: string) => lines.filter((l) => l.level === level);
  return { lines, repeated, at, advance: (ms: number) => (clock += ms) };
}

describe('repeated warnings', () => {
  it('logs the first occurrence of a cause, sends the rest to debug and summarizes them with a count', () => {
    const { repeated, at, advance } = setup();
    for (let i = 0; i < 300; i++) repeated.log('warn', 'no model', { customerId: `c-${i}` }, 'no current segmentation model');
    assert.equal(at('warn').length, 1, 'one warning, not one per customer');
    assert.equal(at('warn')[0]?.customerId, 'c-0');
    assert.equal(at('debug').length, 299, 'every later occurrence stays in the record at debug');

    repeated.flush();
    assert.equal(at('warn').length, 1, 'no summary before the window has passed');
    advance(60_000);
    repeated.flush();
    const summary = at('warn')[1];
    assert.equal(summary?.repeated, 299);
    assert.equal(summary?.cause, 'no model');
    assert.match(summary?.msg ?? '', /^no current segmentation model \(299 more in the last 60 s\)$/);
  });

  it('keeps causes apart and reports each once', () => {
    const { repeated, at } = setup();
    repeated.log('warn', 'a', {}, 'cause a');
    repeated.log('error', 'b', {}, 'cause b');
    repeated.log('warn', 'a', {}, 'cause a');
    repeated.log('error', 'b', {}, 'cause b');
    assert.deepEqual(
      [...at('warn'), ...at('error')].map((l) => l.msg),
      ['cause a', 'cause b'],
    );
  });

  it('summarizes on the next occurrence once the window has passed, without a timer', () => {
    const { repeated, at, advance } = setup();
    repeated.log('warn', 'a', {}, 'cause a');
    advance(10_000);
    repeated.log('warn', 'a', {}, 'cause a');
    advance(50_000);
    repeated.log('warn', 'a', {}, 'cause a');
    assert.deepEqual(
      at('warn').map((l) => [l.msg, l.repeated]),
      [
        ['cause a', undefined],
        ['cause a (2 more in the last 60 s)', 2],
      ],
    );
  });

  it('forgets a cause that stayed quiet for a window, so its return is logged in full', () => {
    const { repeated, at, advance } = setup();
    repeated.log('warn', 'a', {}, 'cause a');
    advance(60_000);
    repeated.flush();
    assert.equal(at('warn').length, 1, 'nothing to summarize: no repeats');
    repeated.log('warn', 'a', { customerId: 'c-9' }, 'cause a');
    assert.equal(at('warn').length, 2);
    assert.equal(at('warn')[1]?.customerId, 'c-9');
  });

  it('writes the summary on its own timer when the cause goes quiet', async () => {
    const lines: Line[] = [];
    const logger = createLogger({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Line) });
    const repeated = createRepeatedLog(logger, { windowMs: 60 });
    repeated.log('warn', 'a', {}, 'cause a');
    repeated.log('warn', 'a', {}, 'cause a');
    await sleep(300);
    repeated.close();
    assert.deepEqual(
      lines.map((l) => l.repeated),
      [undefined, 1],
    );
  });

  it('writes every pending summary on close', () => {
    const { repeated, at } = setup();
    repeated.log('warn', 'a', {}, 'cause a');
    repeated.log('warn', 'a', {}, 'cause a');
    repeated.close();
    assert.equal(at('warn')[1]?.repeated, 1);
  });
});
