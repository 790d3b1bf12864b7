/**
 * The segment explorer in a real browser (Debian's Chromium driven by playwright-core) against the
 * real API process (api/main.ts) on the real local stack, after two nightly_segmentation runs on
 * demo-persona customers. Screenshots go to .stack/artifacts/explorer/.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type BrowserContext, type Locator, type Page } from 'playwright-core';
import { DOCS_PATH, EXPLORER_PATH } from '../../api/server.js';
import { PROJECT_ROOT } from '../../core/config.js';
import { loadModelVersion } from '../../stores/model-registry.js';
import { CHROMIUM_PATH, STACK_DIR, freePort, httpOk } from '../../scripts/stack-lib.js';
import { countSegments, startSegmentedStack, type SegmentedStack } from '../support/segments-stack.js';

const TOKEN = 'explorer-token-0123456789';
const ARTIFACTS = path.join(STACK_DIR, 'artifacts', 'explorer');
const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

let stack: SegmentedStack;
let api: ChildProcess;
let base: string;
let browser: BrowserContext;
let profileDir: string;
const screenshots: { file: string; shows: string }[] = [];

/** What the tests read inside the page (its globals; the test code is not compiled with the DOM library). */
interface ExplorerWindow {
  segflowExplorer: {
    views: Record<string, { data(name: string): Record<string, unknown>[] }>;
    state: { segments?: { model_version: string }; explain?: { segment: { id: number } } };
  };
  document: { getElementById(id: string): { textContent: string | null } | null };
  sessionStorage: { getItem(key: string): string | null };
}

before(async () => {
  assert.ok(existsSync(CHROMIUM_PATH), `${CHROMIUM_PATH} is missing: \`npm run stack:install\` installs Debian's chromium (as root)`);
  // A minimum segment share above what the larger k leave their smallest segment, so the k chart has refused k to mark.
  stack = await startSegmentedStack('explorer', { customers: 300, nights: 2, env: { SEGFLOW_SEGMENT_MIN_SEGMENT_SHARE: '0.12' } });
  const port = process.env.SEGFLOW_API_PORT ? stack.harness.config.api.port : await freePort();
  base = `http://127.0.0.1:${port}`;
  api = spawn(process.execPath, ['--import', 'tsx', path.join('api', 'main.ts'), '--port', String(port), '--rate-limit', '0'], {
    cwd: PROJECT_ROOT,
    env: {
      ...process.env,
      ...stack.env,
      SEGFLOW_API_TOKENS: TOKEN,
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const deadline = Date.now() + 60_000;
  while (!(await httpOk(`${base}/healthz`))) {
    assert.ok(api.exitCode === null, `the API process exited (${api.exitCode})`);
    assert.ok(Date.now() < deadline, `the API did not answer on ${base}/healthz within 60 s`);
    await new Promise((r) => setTimeout(r, 250));
  }
  mkdirSync(ARTIFACTS, { recursive: true });
  // A fresh profile: no cache, no stored tokens from an earlier run.
  profileDir = mkdtempSync(path.join(tmpdir(), 'segflow-explorer-chromium-'));
  browser = await chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: CHROMIUM_FLAGS,
    viewport: { width: 1280, height: 900 },
  });
});

after(async () => {
  await browser?.close();
  if (profileDir) rmSync(profileDir, { recursive: true, force: true });
  if (api?.pid !== undefined && api.exitCode === null) {
    const exited = new Promise((r) => api.once('exit', r));
    process.kill(api.pid, 'SIGTERM');
    await exited;
  }
  await stack?.close();
  for (const s of screenshots) console.log(`screenshot ${s.file}: ${s.shows}`);
});

async function screenshot(target: Page | Locator, name: string, shows: string) {
  const file = path.join(ARTIFACTS, `${name}.png`);
  await ('goto' in target ? target.screenshot({ path: file, fullPage: true }) : target.screenshot({ path: file }));
  screenshots.push({ file, shows });
}

async function openExplorer(): Promise<Page> {
  const page = await browser.newPage();
  page.on('pageerror', (err) => assert.fail(`page error: ${err.message}`));
  await page.goto(`${base}${EXPLORER_PATH}`);
  return page;
}

async function signIn(page: Page, token: string) {
  await page.fill('#token', token);
  await page.click('#sign-in-form button[type=submit]');
}

/** The page holds no segment data: no table rows, no chart, nothing kept in its state. */
async function assertNoData(page: Page) {
  assert.equal(await page.locator('#segments tbody tr').count(), 0);
  assert.equal(await page.locator('.chart svg').count(), 0);
  assert.equal(await page.locator('#runs tbody tr').count(), 0);
  assert.equal(await page.isVisible('#data'), false);
  assert.deepEqual(await page.evaluate(() => (globalThis as unknown as ExplorerWindow).segflowExplorer.state), {});
}

async function tableRows(page: Page): Promise<string[][]> {
  return page.$$eval('#segments tbody tr', (trs) =>
    trs.map((tr) => [...tr.querySelectorAll('td')].slice(0, 4).map((td) => td.textContent ?? '')),
  );
}

/** Rows the table must show for `version`: the segment counts of marts.customer_segments. */
async function expectedRows(version: string): Promise<string[][]> {
  const counts = await countSegments(stack, version);
  const model = (await loadModelVersion(stack.clients.storage, stack.bucket, version))!;
  const total = [...counts.values()].reduce((a, b) => a + b, 0);
  return model.segments.map((s) => [
    String(s.id),
    s.label,
    String(counts.get(s.id) ?? 0),
    `${(((counts.get(s.id) ?? 0) / total) * 100).toFixed(1)}%`,
  ]);
}

/** Each chart's vega view has data and its SVG has marks; returns the k chart's candidate rows. */
async function assertChartsRendered(page: Page) {
  const figures = await page.evaluate(() => {
    const { views } = (globalThis as unknown as ExplorerWindow).segflowExplorer;
    return { profile: views.profile?.data('profile') ?? [], candidates: views.k?.data('candidates') ?? [] };
  });
  assert.ok(figures.profile.length > 0, 'the centroid profile chart has data');
  assert.ok(figures.candidates.length > 0, 'the k chart has data');
  assert.ok(
    (await page.locator('#chart-profile svg .mark-rect.role-mark path').count()) >= figures.profile.length,
    'one bar per segment and feature',
  );
  assert.ok((await page.locator('#chart-profile svg .mark-rule.role-mark line').count()) > 0, 'population rules drawn');
  // Inertia, silhouette and bootstrap stability: one point per candidate k in each panel.
  assert.equal(await page.locator('#chart-k svg .mark-symbol.role-mark path').count(), 3 * figures.candidates.length);
  await assertHistoryCharts(page);
  return figures.candidates as { k: number; status: string; stability: number | null }[];
}

/** The cohesion, stability, sizes and transitions charts: data in each vega view, marks in each SVG. */
async function assertHistoryCharts(page: Page) {
  // No named functions inside evaluate: tsx would wrap them in a __name helper the page does not have.
  const counts = await page.evaluate(() => {
    const { views } = (globalThis as unknown as ExplorerWindow).segflowExplorer;
    return {
      cohesion: views.cohesion?.data('cohesion').length ?? 0,
      stability: views.stability?.data('stability').length ?? 0,
      sizes: views.sizes?.data('sizes').length ?? 0,
      transitions: views.transitions?.data('transitions').length ?? 0,
    };
  });
  for (const [chart, rows] of Object.entries(counts)) assert.ok(rows > 0, `the ${chart} chart has data`);
  assert.ok((await page.locator('#chart-cohesion svg .mark-rect.role-mark path').count()) >= 2 * counts.cohesion, 'cohesion bars');
  assert.ok((await page.locator('#chart-stability svg .mark-symbol.role-mark path').count()) >= counts.stability, 'stability points');
  // One dashed threshold rule per stability panel: changed share, ARI, centroid drift.
  assert.equal(await page.locator('#chart-stability svg .mark-rule.role-mark line').count(), 3, 'alert thresholds drawn');
  assert.ok((await page.locator('#chart-sizes svg .mark-line.role-mark path').count()) > 0, 'size lines');
  assert.equal(
    await page.locator('#chart-transitions svg .mark-rect.role-mark path').count(),
    counts.transitions,
    'one cell per transition',
  );
}

describe('segment explorer', () => {
  it('with no token: a sign-in message and no data', async () => {
    const page = await openExplorer();
    await page.waitForSelector('body[data-state=signed-out]');
    assert.ok(await page.isVisible('#sign-in'));
    assert.match((await page.textContent('#sign-in-message')) ?? '', /API token/);
    await assertNoData(page);
    await screenshot(page, '1-signed-out', 'the sign-in form shown before a token is given; no data');
    await page.close();
  });

  it('with a wrong token: the sign-in message says so, and no data', async () => {
    const page = await openExplorer();
    await signIn(page, 'wrong-token-0123456789');
    await page.waitForFunction(() =>
      /not accepted/.test((globalThis as unknown as ExplorerWindow).document.getElementById('sign-in-message')?.textContent ?? ''),
    );
    assert.equal(await page.getAttribute('body', 'data-state'), 'signed-out');
    await assertNoData(page);
    assert.equal(
      await page.evaluate(() => (globalThis as unknown as ExplorerWindow).sessionStorage.getItem('segflow.apiToken')),
      null,
      'a refused token is not kept',
    );
    await screenshot(page, '2-wrong-token', 'the sign-in form after a wrong token: "not accepted", no data');
    await page.close();
  });

  it('signed in: the segment table equals marts.customer_segments, and every chart is drawn with data', async () => {
    const page = await openExplorer();
    await signIn(page, TOKEN);
    await page.waitForSelector('body[data-state=ready]', { timeout: 30_000 });
    const [v1, v2] = stack.versions as [string, string];
    assert.equal(await page.inputValue('#version'), v2, 'opens on the current model');
    assert.deepEqual(await page.$$eval('#version option', (os) => os.map((o) => o.getAttribute('value'))), [v2, v1]);
    assert.deepEqual(await tableRows(page), await expectedRows(v2));
    const candidates = await assertChartsRendered(page);
    const model = (await loadModelVersion(stack.clients.storage, stack.bucket, v2))!;
    assert.deepEqual(
      candidates.map((c) => [c.k, c.status]),
      model.k_selection.candidates.map((c) => [
        c.k,
        c.k === model.k_selection.chosen_k ? 'chosen' : c.rejected_reason ? 'refused' : 'candidate',
      ]),
      'the chosen k and refused k are marked as the artifact records them',
    );
    assert.deepEqual(
      candidates.map((c) => c.stability),
      model.k_selection.candidates.map((c) => c.stability ?? null),
      'the stability panel shows what the artifact records',
    );
    assert.ok(
      candidates.every((c) => typeof c.stability === 'number'),
      'a new model records stability for every k',
    );
    assert.ok(
      candidates.some((c) => c.status === 'refused'),
      JSON.stringify(model.k_selection.candidates),
    );
    assert.equal(
      await page.locator('#chart-k svg .mark-symbol.role-mark path[aria-label*="status: refused"]').count(),
      3 * candidates.filter((c) => c.status === 'refused').length,
    );
    assert.match((await page.textContent('#k-note')) ?? '', new RegExp(`Chosen k = ${model.k_selection.chosen_k}`));
    await screenshot(
      page,
      '3-current-model',
      `the whole page on the current model ${v2}: segments, centroid profile, k selection, cohesion, stability, transitions, freshness`,
    );

    // The token stays for the tab: a reload needs no new sign-in.
    await page.reload();
    await page.waitForSelector('body[data-state=ready]', { timeout: 30_000 });

    // An earlier version from the picker.
    await page.selectOption('#version', v1);
    await page.waitForFunction((v) => (globalThis as unknown as ExplorerWindow).segflowExplorer.state.segments?.model_version === v, v1);
    await page.waitForSelector('body[data-state=ready]');
    assert.deepEqual(await tableRows(page), await expectedRows(v1));
    await assertChartsRendered(page);
    await screenshot(page, '4-earlier-version', `the earlier version ${v1} picked from the version list`);

    // Signing out drops the data.
    await page.click('#sign-out');
    await page.waitForSelector('body[data-state=signed-out]');
    await assertNoData(page);
    await page.close();
  });

  it('signed in: cohesion, stability, transitions, freshness and a customer lookup that agrees with the profile API', async () => {
    const page = await openExplorer();
    await signIn(page, TOKEN);
    await page.waitForSelector('body[data-state=ready]', { timeout: 30_000 });
    const [v1, v2] = stack.versions as [string, string];
    await assertHistoryCharts(page);
    assert.match((await page.textContent('#stability-note')) ?? '', /2 nights/);
    assert.equal(await page.inputValue('#transition-from'), v1, 'transitions default to the version before');
    assert.match((await page.textContent('#transition-note')) ?? '', new RegExp(`from ${v1} to ${v2}`));
    await screenshot(
      page.locator('section:has(#chart-cohesion)'),
      '6-cohesion',
      'cohesion and separation per segment of the current model',
    );
    await screenshot(
      page.locator('section:has(#chart-stability)'),
      '7-stability',
      'changed share, ARI and centroid drift per night with the alert thresholds dashed, and segment shares per version',
    );
    await screenshot(
      page.locator('section:has(#chart-transitions)'),
      '8-transitions',
      `segment-to-segment transitions from ${v1} to ${v2}`,
    );

    // Freshness: this test's nightly runs, each a link into the Temporal UI.
    const runs = await page.$$eval('#runs tbody tr', (trs) =>
      trs.map((tr) => ({
        cells: [...tr.querySelectorAll('td')].map((td) => td.textContent ?? ''),
        href: tr.querySelector('a')?.href ?? null,
      })),
    );
    const nightly = runs.filter((r) => r.cells[0] === 'nightly_segmentation' && r.href !== null);
    assert.ok(nightly.length >= 2, JSON.stringify(runs));
    for (const r of nightly) assert.ok(r.href!.startsWith(`${stack.harness.config.temporal.uiUrl}/namespaces/`), r.href!);
    assert.ok(nightly.some((r) => r.cells[2] === 'COMPLETED'));
    await screenshot(
      page.locator('section:has(#runs)'),
      '9-freshness',
      'the last hourly and nightly runs with their state and Temporal UI links',
    );

    // Customer lookup against the profile API; each lookup asks once.
    const explainRequests: string[] = [];
    page.on('request', (req) => {
      if (req.url().includes('/explain')) explainRequests.push(req.url());
    });
    for (const customer of stack.population.rows.slice(0, 3).map((r) => r.customer_id)) {
      explainRequests.length = 0;
      await page.fill('#lookup-id', customer);
      await page.click('#lookup-form button[type=submit]');
      await page.waitForFunction(
        (id) =>
          (globalThis as unknown as ExplorerWindow).document
            .getElementById('lookup-result')
            ?.textContent?.startsWith(`${id} is in segment`) ?? false,
        customer,
      );
      const shown = Number(await page.getAttribute('#lookup-result', 'data-segment-id'));
      const profile = (await (
        await fetch(`${base}/v1/customers/${customer}/profile`, { headers: { authorization: `Bearer ${TOKEN}` } })
      ).json()) as { segment_id: number };
      assert.equal(shown, profile.segment_id, `${customer}: the lookup and the profile API`);
      assert.equal(explainRequests.length, 1, `one explain request per lookup: ${explainRequests.join(', ')}`);
      const rows = await page.evaluate(() => {
        const { views } = (globalThis as unknown as ExplorerWindow).segflowExplorer;
        return { distances: views.distances?.data('distances').length ?? 0, features: views.explain?.data('features').length ?? 0 };
      });
      assert.ok(rows.distances > 0 && rows.features > 0, JSON.stringify(rows));
      assert.ok((await page.locator('#chart-explain svg .mark-rect.role-mark path').count()) >= rows.features);
    }
    await screenshot(
      page.locator('section:has(#lookup-form)'),
      '10-customer-lookup',
      'a customer lookup: its segment, the distance to each centroid and the features that pull it toward its segment',
    );
    const unknown = 'cust-not-a-customer';
    await page.fill('#lookup-id', unknown);
    await page.click('#lookup-form button[type=submit]');
    await page.waitForSelector('#lookup-result.error');
    assert.match((await page.textContent('#lookup-result')) ?? '', /404/);
    await page.close();
  });

  it('the interactive API docs page renders every route offline', async () => {
    const page = await browser.newPage();
    await page.goto(`${base}${DOCS_PATH}`);
    await page.waitForSelector('.swagger-ui .opblock-summary-path', { timeout: 30_000 });
    const paths = await page.$$eval('.swagger-ui .opblock-summary-path', (els) => els.map((e) => e.getAttribute('data-path')));
    for (const route of [
      '/v1/models',
      '/v1/models/{version}',
      '/v1/segments',
      '/v1/segments/{id}/customers',
      '/v1/customers/{id}/profile',
      '/v1/customers/{id}/explain',
      '/v1/profiles:batchGet',
    ])
      assert.ok(paths.includes(route), `${route} in ${paths}`);
    await screenshot(page, '5-api-docs', 'the interactive OpenAPI page at /docs listing every route');
    await page.close();
  });
});
