import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createLogger, readableFields, resolveLogFormat } from '../../core/logger.js';

function terminalAndFile() {
  const dir = mkdtempSync(path.join(tmpdir(), 'segflow-logger-'));
  const file = path.join(dir, 'logs', 'segflow.log');
  const terminal: string[] = [];
  const logger = createLogger(
    { level: 'info', pretty: { file, fileLevel: 'debug' } },
    { write: (line: string) => void terminal.push(line) },
  );
  return {
    logger,
    terminal,
    /** The file once it holds `lines` lines: it is written asynchronously. */
    file: async (lines: number) => {
      for (let i = 0; i < 100; i++) {
        const text = readFileSync(file, 'utf8');
        if (text.split('\n').length > lines) return text;
        await sleep(20);
      }
      return readFileSync(file, 'utf8');
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

describe('logs for a person at a terminal', () => {
  it('prints one readable line per event at info and above, and keeps every line as JSON in the file', async () => {
    const t = terminalAndFile();
    try {
      t.logger.child({ component: 'worker' }).info({ taskQueue: 'segflow', dag: 'hourly_pipeline', nested: { a: 1 } }, 'worker started');
      t.logger.warn({ err: new Error('first line\n    at somewhere (file.ts:1:1)'), customerId: 'c-1' }, 'Activity failed');
      t.logger.debug({ batch: 7 }, 'batch ingested');
      assert.equal(t.terminal.length, 2, 'debug stays out of the terminal');
      for (const line of t.terminal) assert.equal(line.trimEnd().split('\n').length, 1, `one line per event: ${line}`);
      assert.match(t.terminal[0] ?? '', /INFO.*\[worker\] worker started .*dag=hourly_pipeline/);
      assert.ok(!(t.terminal[0] ?? '').includes('{'), 'no JSON in the terminal');
      assert.match(t.terminal[1] ?? '', /WARN.*Activity failed err="first line" customerId=c-1/);

      const json = (await t.file(3))
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l) as { msg: string; level: string; nested?: object; err?: { stack?: string } });
      assert.deepEqual(
        json.map((l) => [l.level, l.msg]),
        [
          ['info', 'worker started'],
          ['warn', 'Activity failed'],
          ['debug', 'batch ingested'],
        ],
      );
      assert.deepEqual(json[0]?.nested, { a: 1 });
      assert.match(json[1]?.err?.stack ?? '', /at somewhere/, 'the file keeps the stack');
    } finally {
      t.cleanup();
    }
  });

  it("leaves one task's own info lines to the file, and keeps the terminal to one line per event", async () => {
    const t = terminalAndFile();
    try {
      t.logger.child({ activity: 'runSqlModel', model: 'stg_events' }).info({ rows: 9838 }, 'model built');
      t.logger.child({ dag: 'nightly_segmentation', task: 'train' }).info('model trained');
      t.logger.child({ component: 'temporal', sdkComponent: 'worker' }).info('asset workflow-bundle.js 3 MiB\norphan modules 473 KiB');
      t.logger.child({ activity: 'runDataTests' }).warn('data test warning');
      t.logger.child({ component: 'temporal', sdkComponent: 'workflow', dagId: 'hourly_pipeline' }).info('DAG run succeeded');
      t.logger.info('first line\nsecond line\nthird line');
      assert.equal(t.terminal.length, 3, t.terminal.join(''));
      assert.match(t.terminal[0] ?? '', /WARN.*data test warning/, 'warnings of a task still show');
      assert.match(t.terminal[1] ?? '', /\[temporal\] DAG run succeeded dagId=hourly_pipeline/);
      assert.match(t.terminal[2] ?? '', /first line \(2 more lines in the log file\)\n$/);
      assert.equal((await t.file(6)).trimEnd().split('\n').length, 6, 'the file holds every line');
    } finally {
      t.cleanup();
    }
  });

  it('redacts secrets in both outputs', async () => {
    const t = terminalAndFile();
    try {
      t.logger.info(
        { authorization: 'S3CRET-1', headers: { authorization: 'S3CRET-2' }, req: { url: '/v1/x?token=S3CRET-3' }, apiKey: 'S3CRET-4' },
        'request',
      );
      const file = await t.file(1);
      assert.ok(!t.terminal.join('').includes('S3CRET'), t.terminal.join(''));
      assert.ok(!file.includes('S3CRET'), file);
      assert.match(file, /\[redacted\]/);
    } finally {
      t.cleanup();
    }
  });

  it('is readable in a terminal outside CI, JSON otherwise, unless set', () => {
    assert.equal(resolveLogFormat('auto', { isTTY: true, ci: false }), 'pretty');
    assert.equal(resolveLogFormat('auto', { isTTY: true, ci: true }), 'json');
    assert.equal(resolveLogFormat('auto', { isTTY: false, ci: false }), 'json');
    assert.equal(resolveLogFormat('pretty', { isTTY: false, ci: true }), 'pretty');
    assert.equal(resolveLogFormat('json', { isTTY: true, ci: false }), 'json');
  });

  it('shows scalar fields as key=value, quoting what has spaces and cutting what is long', () => {
    assert.equal(
      readableFields({ time: 't', pid: 1, a: 1, b: 'two words', c: { deep: true }, d: 'x'.repeat(200), e: true, ms: 274.74713099999644 }),
      `a=1 b="two words" d=${'x'.repeat(117)}... e=true ms=274.7`,
    );
  });
});
