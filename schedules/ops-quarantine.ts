/**
 * `npm run ops -- quarantine summary|show|replay`: what the quarantine holds, a printable sample
 * for one reason, and a replay of it against the contract in force (the replayQuarantine workflow).
 * Registered from ops.ts; the operations are in quarantine-lib.ts.
 */
import type { Command } from 'commander';
import { wholeNumber } from '../scripts/lib/cli.js';
import type { QuarantineSummary } from '../core/quarantine-summary.js';
import type { ReplayProgress } from '../workflows/quarantine-messages.js';
import { toJson } from './ops-format.js';
import {
  followReplay,
  parseRange,
  parseReason,
  quarantineShow,
  quarantineSummary,
  startReplay,
  type QuarantineContext,
  type QuarantineShow,
} from './quarantine-lib.js';

interface RangeOptions {
  from?: string;
  to?: string;
  json?: boolean;
}

export function formatSummary(s: QuarantineSummary): string {
  const lines = [`quarantine ${s.from} .. ${s.to}: ${s.messages} messages in ${s.objects} objects (${s.recovered} recovered by replays)`];
  if (s.messages === 0) return lines.join('\n');
  lines.push('', 'by reason:');
  for (const [code, n] of Object.entries(s.byReason).sort((a, b) => b[1] - a[1])) lines.push(`  ${code.padEnd(20)} ${n}`);
  lines.push('', 'by reason and path (top values):');
  for (const r of s.byReasonPath) {
    const values = r.topValues.map((v) => `${v.value} x${v.messages}`).join(', ');
    lines.push(`  ${`${r.code} ${r.path ?? '-'}`.padEnd(40)} ${String(r.messages).padStart(7)}${values ? `  ${values}` : ''}`);
  }
  lines.push('', 'by arrival hour:');
  for (const h of s.byHour) {
    const codes = Object.entries(h.byReason)
      .map(([c, n]) => `${c} ${n}`)
      .join(', ');
    lines.push(`  ${h.hour}  ${String(h.messages).padStart(7)}  ${codes}`);
  }
  return lines.join('\n');
}

export function formatShow(s: QuarantineShow): string {
  const lines = [`${s.matching} messages with reason ${s.reason} in ${s.from} .. ${s.to}; ${s.samples.length} shown`];
  for (const m of s.samples) {
    lines.push('', `message ${m.message_id}  published ${m.publish_time}  ${m.size_bytes} bytes (${m.encoding})`);
    lines.push(`  attributes ${m.attributes}`);
    for (const r of m.reasons) lines.push(`  ${r.code} ${r.path ?? ''}: ${r.message}`);
    lines.push(`  body ${m.body}${m.truncated ? ' …(truncated)' : ''}`);
  }
  return lines.join('\n');
}

export function formatReplayProgress(p: ReplayProgress): string {
  return (
    `${p.phase}: ${p.objectsDone}/${p.objects} objects, ${p.examined} messages examined, ${p.recovered} recovered, ` +
    `${p.stillInvalid} still invalid${p.reruns.length > 0 ? `, ${p.reruns.length}/${p.hours.length} hourly runs` : ''}`
  );
}

export function formatReplayEnd(p: ReplayProgress & { workflowId: string }): string {
  if (p.nothingToRecover) {
    return `nothing to recover: ${p.examined} messages examined, all still invalid under the current contract; nothing changed (${p.workflowId})`;
  }
  const lines = [
    `replay ${p.workflowId}: ${p.recovered} messages recovered into the lake, ${p.stillInvalid} still quarantined` +
      ` (${p.reasonsChanged} with new reasons), ${p.triggers} key events sent to real-time reclassification`,
  ];
  if (p.suppressed > 0) lines.push(`  ${p.suppressed} not recovered: their customers are suppressed`);
  for (const r of p.reruns) lines.push(`  rerun ${r.workflowId}: ${r.status}`);
  return lines.join('\n');
}

export function registerQuarantineCommands(program: Command, getCtx: () => Promise<QuarantineContext>): void {
  const quarantine = program
    .command('quarantine')
    .description('Inspect the quarantine of invalid messages and replay it against the current contract (docs/ingestion.md).');
  const out = (o: { json?: boolean }, text: string, data: unknown) => console.log(o.json ? toJson(data) : text);

  quarantine
    .command('summary')
    .description('Quarantined messages by reason code, by code and path with the most frequent offending values, and per arrival hour.')
    .option('--from <start>', 'first arrival hour, RFC 3339')
    .option('--to <end>', 'end of the range, exclusive, RFC 3339')
    .option('--json', 'print the result as JSON on stdout, and nothing else there')
    .action(async (o: RangeOptions) => {
      const range = parseRange(o);
      const s = await quarantineSummary(await getCtx(), range);
      out(o, formatSummary(s), s);
    });

  quarantine
    .command('show')
    .description('A sample of quarantined messages with one reason: bodies decoded where they are UTF-8 text, escaped bytes where not.')
    .requiredOption('--reason <code>', 'reason code, e.g. invalid_value')
    .option('--from <start>', 'first arrival hour, RFC 3339')
    .option('--to <end>', 'end of the range, exclusive, RFC 3339')
    .option('--limit <n>', 'messages shown', wholeNumber(1, 1000), 5)
    .option('--json', 'print the result as JSON on stdout, and nothing else there')
    .action(async (o: RangeOptions & { reason: string; limit: number }) => {
      const range = parseRange(o);
      const s = await quarantineShow(await getCtx(), range, parseReason(o.reason)!, o.limit);
      out(o, formatShow(s), s);
    });

  quarantine
    .command('replay')
    .description(
      'Re-validate quarantined messages against the current contract (SEGFLOW_EVENT_CONTRACT_EXTENSIONS), write the now-valid ones to the lake ' +
        'under their arrival hour, send recovered key events to real-time reclassification, and rerun the touched hourly intervals. ' +
        'Runs as the Temporal workflow quarantine-replay/<from>..<to>; running the same command again follows (resumes) or repeats it.',
    )
    .option('--from <start>', 'first arrival hour, RFC 3339')
    .option('--to <end>', 'end of the range, exclusive, RFC 3339')
    .option('--reason <code>', 'only messages carrying this reason code')
    .option('--no-wait', 'return once started, without following progress')
    .option('--json', 'print the result as JSON on stdout (progress on stderr)')
    .action(async (o: RangeOptions & { reason?: string; wait: boolean }) => {
      const range = parseRange(o);
      const ctx = await getCtx();
      const started = await startReplay(ctx, range, parseReason(o.reason));
      const progressOut = o.json ? console.error : console.log;
      progressOut(`${started.started ? 'started' : 'following the running'} ${started.workflowId}\n  ${started.url}`);
      if (!o.wait) {
        if (o.json) console.log(toJson(started));
        return;
      }
      let last = '';
      const result = await followReplay(ctx, started.workflowId, {
        onProgress: (p) => {
          const line = formatReplayProgress(p);
          if (line !== last) progressOut(line);
          last = line;
        },
      });
      out(o, formatReplayEnd({ ...result, workflowId: started.workflowId }), {
        ...result,
        workflowId: started.workflowId,
        url: started.url,
      });
    });
}
