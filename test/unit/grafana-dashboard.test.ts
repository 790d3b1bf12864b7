/**
 * The Grafana dashboard and the Prometheus configuration of docker-compose.yml, checked without
 * Docker: every metric a panel queries exists (segflow's in the prom-client registry, the Temporal
 * SDK's among the names its core exports), every segflow metric is drawn somewhere, and the
 * provisioning files, the compose mounts and the scrape targets agree with each other.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { parse } from 'yaml';
import { PROJECT_ROOT } from '../../core/config.js';
import { registry } from '../../workers/metrics.js';

const read = (file: string) => readFileSync(path.join(PROJECT_ROOT, file), 'utf8');

interface Panel {
  type: string;
  title: string;
  datasource?: { uid?: string };
  targets?: { expr: string; datasource?: { uid?: string } }[];
  gridPos: { x: number; y: number; w: number; h: number };
}
const dashboard = JSON.parse(read('deploy/grafana/dashboards/segflow.json')) as { uid: string; panels: Panel[] };
const panels = dashboard.panels.filter((p) => p.type !== 'row');

/** Temporal SDK (Rust core) metric names the dashboard may use; counters carry no _total suffix by default. */
const TEMPORAL_SDK_METRICS = new Set([
  'temporal_workflow_completed',
  'temporal_workflow_failed',
  'temporal_activity_execution_latency',
  'temporal_activity_execution_failed',
  'temporal_activity_schedule_to_start_latency',
  'temporal_worker_task_slots_available',
  'temporal_request_failure',
]);

function metricNames(expr: string): string[] {
  return [...expr.matchAll(/\b((?:segflow|temporal)_[a-z0-9_]+)\b/g)].map((m) => m[1]!);
}

/** The family a series name belongs to: histograms expose _bucket, _sum and _count. */
function family(name: string, known: ReadonlySet<string>): string | undefined {
  if (known.has(name)) return name;
  const base = name.replace(/_(bucket|sum|count)$/, '');
  return known.has(base) ? base : undefined;
}

test('every panel queries metrics that exist, through the provisioned data source', async () => {
  const segflow = new Set((await registry.getMetricsAsJSON()).map((m) => m.name));
  const datasource = parse(read('deploy/grafana/provisioning/datasources/prometheus.yml')) as { datasources: { uid: string }[] };
  const uid = datasource.datasources[0]!.uid;
  assert.ok(panels.length >= 20, `the dashboard has its panels (found ${panels.length})`);
  for (const panel of panels) {
    assert.ok(panel.targets && panel.targets.length > 0, `panel "${panel.title}" has a query`);
    assert.equal(panel.datasource?.uid, uid, `panel "${panel.title}" uses the provisioned data source`);
    for (const target of panel.targets) {
      const names = metricNames(target.expr);
      assert.ok(names.length > 0, `panel "${panel.title}": ${target.expr} names a metric`);
      for (const name of names) {
        const known = name.startsWith('segflow_') ? family(name, segflow) : family(name, TEMPORAL_SDK_METRICS);
        assert.ok(known, `panel "${panel.title}" queries ${name}, which neither segflow's registry nor the Temporal SDK exports`);
      }
    }
  }
});

test("every one of segflow's own metrics is on the dashboard", async () => {
  const drawn = new Set(panels.flatMap((p) => (p.targets ?? []).flatMap((t) => metricNames(t.expr))));
  const own = (await registry.getMetricsAsJSON()).map((m) => m.name).filter((n) => !n.startsWith('segflow_process_'));
  const missing = own.filter((n) => ![n, `${n}_bucket`, `${n}_count`, `${n}_sum`].some((s) => drawn.has(s)));
  assert.deepEqual(missing, [], 'metrics without a panel');
});

test('panels do not overlap on the grid', () => {
  const cells = new Map<string, string>();
  for (const p of dashboard.panels) {
    const h = p.type === 'row' ? 1 : p.gridPos.h;
    for (let y = p.gridPos.y; y < p.gridPos.y + h; y++)
      for (let x = p.gridPos.x; x < p.gridPos.x + p.gridPos.w; x++) {
        const key = `${x},${y}`;
        assert.ok(!cells.has(key), `"${p.title}" overlaps "${cells.get(key)}" at ${key}`);
        cells.set(key, p.title);
      }
    assert.ok(p.gridPos.x + p.gridPos.w <= 24, `"${p.title}" fits in 24 columns`);
  }
});

test('Prometheus scrapes both metrics ports, and compose mounts what Grafana provisions', () => {
  const prometheus = parse(read('deploy/prometheus/prometheus.yml')) as {
    scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[];
  };
  const targets = prometheus.scrape_configs.flatMap((c) => c.static_configs.flatMap((s) => s.targets));
  // The defaults of SEGFLOW_METRICS_PORT (Temporal SDK) and the port after it (segflow).
  assert.deepEqual(targets.sort(), ['127.0.0.1:9464', '127.0.0.1:9465']);

  const compose = parse(read('docker-compose.yml')) as { services: Record<string, { volumes?: string[]; network_mode?: string }> };
  const mounts = (service: string) =>
    new Map((compose.services[service]?.volumes ?? []).map((v) => v.split(':') as [string, string]).map(([from, to]) => [to, from]));
  assert.equal(mounts('prometheus').get('/etc/prometheus/prometheus.yml'), './deploy/prometheus/prometheus.yml');
  const grafana = mounts('grafana');
  assert.equal(grafana.get('/etc/grafana/provisioning'), './deploy/grafana/provisioning');
  const provider = parse(read('deploy/grafana/provisioning/dashboards/segflow.yml')) as { providers: { options: { path: string } }[] };
  assert.equal(grafana.get(provider.providers[0]!.options.path), './deploy/grafana/dashboards');
  // The metrics endpoints listen on the host's loopback.
  assert.equal(compose.services.prometheus?.network_mode, 'host');
  assert.equal(compose.services.grafana?.network_mode, 'host');
});
