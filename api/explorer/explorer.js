// The segment explorer: signs in with an API token kept in sessionStorage, then reads the segments
// API and draws with Vega-Lite. Data only ever enters the page as text (textContent), never as HTML.
/* global window, document, vegaEmbed */
'use strict';

const TOKEN_KEY = 'segflow.apiToken';
const views = {};
/** For tests and the console: the vega views by chart name, and the last answers. */
window.segflowExplorer = { views, state: {} };

const $ = (id) => document.getElementById(id);

function setState(state, message, isError) {
  document.body.dataset.state = state;
  $('status').textContent = message || '';
  $('status').classList.toggle('error', Boolean(isError));
}

class Unauthorized extends Error {}

async function api(path) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (!token) throw new Unauthorized('no token');
  const res = await fetch(path, { headers: { authorization: `Bearer ${token}` } });
  if (res.status === 401) throw new Unauthorized('the token was not accepted');
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(`${path}: ${res.status} ${body.message || res.statusText}`);
  return body;
}

function showSignIn(message, isError) {
  for (const name of Object.keys(views)) {
    views[name].finalize();
    delete views[name];
  }
  $('segments').querySelector('tbody').replaceChildren();
  for (const el of document.querySelectorAll('.chart')) el.replaceChildren();
  for (const id of ['runs']) $(id).querySelector('tbody').replaceChildren();
  for (const id of ['lookup-result', 'stability-note', 'transition-note', 'runs-note']) $(id).textContent = '';
  $('version').replaceChildren();
  $('transition-from').replaceChildren();
  $('data').hidden = true;
  $('sign-out').hidden = true;
  $('sign-in').hidden = false;
  $('sign-in-message').textContent = message;
  $('sign-in-message').classList.toggle('error', Boolean(isError));
  window.segflowExplorer.state = {};
  document.body.dataset.state = 'signed-out';
}

const SIGN_IN_TEXT = $('sign-in-message').textContent;

function fail(err) {
  if (err instanceof Unauthorized) {
    sessionStorage.removeItem(TOKEN_KEY);
    showSignIn(err.message === 'no token' ? SIGN_IN_TEXT : `Sign in again: ${err.message}.`, err.message !== 'no token');
  } else {
    setState('error', String(err.message || err), true);
  }
}

const pct = (x) => `${(x * 100).toFixed(1)}%`;

function cell(text, cls) {
  const td = document.createElement('td');
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}

function renderTable(segments) {
  const rows = segments.segments.map((s) => {
    const tr = document.createElement('tr');
    tr.dataset.segmentId = String(s.id);
    tr.append(cell(String(s.id), 'num'), cell(s.label), cell(String(s.size), 'num'), cell(pct(s.share), 'num'), cell(s.traits.join(', ')));
    return tr;
  });
  $('segments')
    .querySelector('tbody')
    .replaceChildren(...rows);
  $('size-source').textContent =
    segments.size_source === 'customer_segments'
      ? `${segments.customers} customers assigned in marts.customer_segments.`
      : `This version has no assignment in marts.customer_segments; sizes are the training sample's (${segments.customers} rows).`;
}

function profileSpec(segments) {
  const values = [];
  for (const f of segments.features) {
    for (const s of segments.segments) {
      values.push({ feature: f.name, segment: `${s.id} ${s.label}`, value: s.centroid[f.name], population: f.population });
    }
  }
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    data: { name: 'profile', values },
    facet: { row: { field: 'feature', type: 'nominal', header: { labelAngle: 0, labelAlign: 'left', title: null } } },
    spec: {
      width: 420,
      height: { step: 12 },
      layer: [
        {
          mark: 'bar',
          encoding: {
            y: { field: 'segment', type: 'nominal', title: null },
            x: { field: 'value', type: 'quantitative', title: null },
            color: { field: 'segment', type: 'nominal', legend: null },
            tooltip: [
              { field: 'feature' },
              { field: 'segment' },
              { field: 'value', format: '.4~g' },
              { field: 'population', format: '.4~g' },
            ],
          },
        },
        { mark: { type: 'rule', color: '#d62728', strokeWidth: 2 }, encoding: { x: { aggregate: 'min', field: 'population' } } },
      ],
    },
    resolve: { scale: { x: 'independent' } },
  };
}

function kSpec(model) {
  const sel = model.k_selection;
  const values = sel.candidates.map((c) => ({
    k: c.k,
    inertia: c.inertia,
    silhouette: c.silhouette,
    stability: c.stability ?? null,
    min_share: c.min_share,
    status: c.k === sel.chosen_k ? 'chosen' : c.rejected_reason ? 'refused' : 'candidate',
    reason: c.rejected_reason || '',
  }));
  const color = {
    field: 'status',
    type: 'nominal',
    scale: { domain: ['chosen', 'candidate', 'refused'], range: ['#2ca02c', '#1f77b4', '#d62728'] },
  };
  const panel = (field, title) => ({
    width: 320,
    height: 200,
    layer: [
      {
        mark: { type: 'line', color: '#999' },
        encoding: { x: { field: 'k', type: 'ordinal' }, y: { field, type: 'quantitative', title, scale: { zero: false } } },
      },
      {
        mark: { type: 'point', filled: true, size: 90 },
        encoding: {
          x: { field: 'k', type: 'ordinal' },
          y: { field, type: 'quantitative' },
          color,
          shape: {
            field: 'status',
            type: 'nominal',
            scale: { domain: ['chosen', 'candidate', 'refused'], range: ['diamond', 'circle', 'cross'] },
          },
          tooltip: [
            { field: 'k' },
            { field: 'inertia', format: '.4~g' },
            { field: 'silhouette', format: '.3f' },
            { field: 'stability', format: '.3f' },
            { field: 'min_share', format: '.1%' },
            { field: 'status' },
            { field: 'reason' },
          ],
        },
      },
      {
        transform: [{ filter: "datum.status === 'chosen'" }],
        mark: { type: 'rule', strokeDash: [4, 4], color: '#2ca02c' },
        encoding: { x: { field: 'k', type: 'ordinal' } },
      },
    ],
  });
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    data: { name: 'candidates', values },
    hconcat: [
      panel('inertia', 'inertia (elbow)'),
      panel('silhouette', 'mean silhouette'),
      // Models trained before stability was recorded have no third panel.
      ...(values.some((v) => v.stability !== null) ? [panel('stability', 'bootstrap stability (ARI)')] : []),
    ],
  };
}

const VL = 'https://vega.github.io/schema/vega-lite/v6.json';

function cohesionSpec(model) {
  const values = model.cohesion.segments.map((s) => ({
    segment: `${s.id} ${s.label}`,
    silhouette: s.silhouette,
    'mean distance to centroid': s.mean_distance,
    'distance to nearest other centroid': s.nearest_centroid_distance,
    nearest: s.nearest_segment_id,
  }));
  const y = { field: 'segment', type: 'nominal', title: null };
  return {
    $schema: VL,
    data: { name: 'cohesion', values },
    hconcat: [
      {
        width: 260,
        mark: 'bar',
        encoding: {
          y,
          x: { field: 'silhouette', type: 'quantitative', title: 'mean silhouette', scale: { domain: [-1, 1] } },
          color: { value: '#2ca02c' },
          tooltip: [{ field: 'segment' }, { field: 'silhouette', format: '.3f' }],
        },
      },
      {
        width: 320,
        transform: [{ fold: ['mean distance to centroid', 'distance to nearest other centroid'], as: ['figure', 'distance'] }],
        mark: 'bar',
        encoding: {
          y,
          yOffset: { field: 'figure', type: 'nominal' },
          x: { field: 'distance', type: 'quantitative', title: 'distance (prepared space)' },
          color: { field: 'figure', type: 'nominal', scale: { range: ['#1f77b4', '#ff7f0e'] }, legend: { orient: 'bottom', title: null } },
          tooltip: [{ field: 'segment' }, { field: 'figure' }, { field: 'distance', format: '.3f' }, { field: 'nearest' }],
        },
      },
    ],
    resolve: { scale: { color: 'independent' }, legend: { color: 'independent' } },
  };
}

const STABILITY_METRICS = [
  { field: 'changed_share', title: 'changed share', threshold: 'maxChangedShare', bound: 'max' },
  { field: 'ari', title: 'adjusted Rand index', threshold: 'minAdjustedRandIndex', bound: 'min' },
  { field: 'max_centroid_drift', title: 'max centroid drift', threshold: 'maxCentroidDrift', bound: 'max' },
];

function stabilitySpec(stability) {
  const values = [];
  for (const n of stability.nights) {
    for (const m of STABILITY_METRICS) {
      if (n[m.field] === null) continue;
      values.push({ version: n.model_version, metric: m.title, value: n[m.field], decision: n.decision, previous: n.previous_version });
    }
  }
  const t = stability.thresholds;
  const panel = (m) => ({
    width: 240,
    height: 160,
    title: m.title,
    layer: [
      {
        transform: [{ filter: { field: 'metric', equal: m.title } }],
        mark: { type: 'line', point: { filled: true, size: 70 } },
        encoding: {
          x: { field: 'version', type: 'ordinal', title: null, axis: { labelAngle: -30 } },
          y: { field: 'value', type: 'quantitative', title: null },
          tooltip: [{ field: 'version' }, { field: 'previous' }, { field: 'value', format: '.4f' }, { field: 'decision' }],
        },
      },
      ...(t === null
        ? []
        : [
            {
              // Its own one-row data: one rule, not one per night.
              data: { values: [{}] },
              mark: { type: 'rule', color: '#d62728', strokeDash: [6, 3], strokeWidth: 2 },
              encoding: {
                y: { datum: t[m.threshold] },
                tooltip: { value: `alert ${m.bound === 'max' ? 'above' : 'below'} ${t[m.threshold]}` },
              },
            },
          ]),
    ],
  });
  return { $schema: VL, data: { name: 'stability', values }, hconcat: STABILITY_METRICS.map(panel) };
}

function sizesSpec(stability) {
  const values = stability.sizes.map((s) => ({
    version: s.model_version,
    segment: `${s.segment_id} ${s.segment_label}`,
    share: s.share,
    customers: s.customers,
  }));
  return {
    $schema: VL,
    data: { name: 'sizes', values },
    width: 560,
    height: 200,
    title: 'segment shares per version (marts.customer_segments)',
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'version', type: 'ordinal', title: null, axis: { labelAngle: -30 } },
      y: { field: 'share', type: 'quantitative', axis: { format: '%' } },
      color: { field: 'segment', type: 'nominal' },
      tooltip: [{ field: 'version' }, { field: 'segment' }, { field: 'customers' }, { field: 'share', format: '.1%' }],
    },
  };
}

function transitionsSpec(t) {
  const values = t.cells.map((c) => ({
    from: `${c.from_id} ${c.from_label ?? '(retired)'}`,
    to: `${c.to_id} ${c.to_label ?? '(new)'}`,
    customers: c.customers,
    moved: c.from_id !== c.to_id,
  }));
  const encoding = {
    x: { field: 'to', type: 'nominal', title: `segment in ${t.to}` },
    y: { field: 'from', type: 'nominal', title: `segment in ${t.from}` },
  };
  return {
    $schema: VL,
    data: { name: 'transitions', values },
    width: { step: 70 },
    height: { step: 32 },
    encoding,
    layer: [
      {
        mark: 'rect',
        encoding: {
          color: { field: 'customers', type: 'quantitative', scale: { scheme: 'blues' } },
          tooltip: [{ field: 'from' }, { field: 'to' }, { field: 'customers' }],
        },
      },
      {
        mark: { type: 'text', fontSize: 11 },
        encoding: { text: { field: 'customers' }, color: { condition: { test: 'datum.moved', value: '#b00020' }, value: '#000' } },
      },
    ],
  };
}

function distancesSpec(explain) {
  const values = explain.distances.map((d) => ({
    segment: `${d.segment_id} ${d.label}`,
    distance: d.distance,
    own: d.segment_id === explain.segment.id,
  }));
  return {
    $schema: VL,
    data: { name: 'distances', values },
    width: 360,
    title: 'distance to each centroid (prepared space)',
    mark: 'bar',
    encoding: {
      y: { field: 'segment', type: 'nominal', sort: { field: 'distance' }, title: null },
      x: { field: 'distance', type: 'quantitative' },
      color: { condition: { test: 'datum.own', value: '#2ca02c' }, value: '#999' },
      tooltip: [{ field: 'segment' }, { field: 'distance', format: '.4f' }],
    },
  };
}

function explainSpec(explain) {
  const values = explain.features.map((f) => ({
    feature: f.name,
    pull: f.pull,
    value: f.value,
    imputed: f.imputed,
    segment_centroid: f.segment_centroid,
    next_centroid: f.next_centroid,
    population: f.population,
  }));
  return {
    $schema: VL,
    data: { name: 'features', values },
    width: 360,
    title: explain.margin === null ? 'features' : `pull toward ${explain.segment.label} rather than ${explain.margin.next_label}`,
    mark: 'bar',
    encoding: {
      y: { field: 'feature', type: 'nominal', sort: '-x', title: null },
      x: { field: 'pull', type: 'quantitative', title: 'pull (squared distance to next minus to own)' },
      color: { condition: { test: 'datum.pull >= 0', value: '#2ca02c' }, value: '#d62728' },
      tooltip: [
        { field: 'feature' },
        { field: 'value', format: '.4~g' },
        { field: 'imputed' },
        { field: 'segment_centroid', format: '.4~g' },
        { field: 'next_centroid', format: '.4~g' },
        { field: 'population', format: '.4~g' },
        { field: 'pull', format: '.4f' },
      ],
    },
  };
}

async function draw(name, el, spec) {
  if (views[name]) views[name].finalize();
  const result = await vegaEmbed(el, spec, { renderer: 'svg', actions: false });
  views[name] = result.view;
}

async function showVersion(version) {
  setState('loading', `loading ${version}...`);
  const query = version ? `?version=${encodeURIComponent(version)}` : '';
  const segments = await api(`/v1/segments${query}`);
  const model = await api(`/v1/models/${encodeURIComponent(segments.model_version)}`);
  window.segflowExplorer.state = { ...window.segflowExplorer.state, segments, model };
  $('version').value = segments.model_version;
  $('model-facts').textContent =
    `k = ${model.k}, mean silhouette ${model.metrics.silhouette === null ? '-' : model.metrics.silhouette.toFixed(3)}, ` +
    `created ${model.created_at}${model.is_current ? ' (current)' : ''}`;
  renderTable(segments);
  const sel = model.k_selection;
  const refused = sel.candidates.filter((c) => c.rejected_reason).map((c) => `k=${c.k} (${c.rejected_reason})`);
  $('k-note').textContent =
    `Chosen k = ${sel.chosen_k} by ${sel.chosen_by}` +
    (sel.elbow_k === null ? '' : `; inertia elbow at k = ${sel.elbow_k}`) +
    (refused.length > 0 ? `; refused: ${refused.join(', ')}` : '; no k refused') +
    '.';
  await draw('profile', $('chart-profile'), profileSpec(segments));
  await draw('k', $('chart-k'), kSpec(model));
  if (model.cohesion) await draw('cohesion', $('chart-cohesion'), cohesionSpec(model));
  else {
    views.cohesion?.finalize();
    delete views.cohesion;
    $('chart-cohesion').textContent = 'This model was trained before cohesion was recorded.';
  }
  await showTransitions();
  setState('ready', '');
}

/** Transitions into the selected version from the one picked (by default the version before it). */
async function showTransitions() {
  const to = $('version').value;
  const versions = [...$('version').options].map((o) => o.value).filter((v) => v !== to);
  const select = $('transition-from');
  const keep = versions.includes(select.value)
    ? select.value
    : (versions[[...$('version').options].findIndex((o) => o.value === to)] ?? versions[0]);
  select.replaceChildren(
    ...versions.map((v) => {
      const option = document.createElement('option');
      option.value = v;
      option.textContent = v;
      return option;
    }),
  );
  if (keep === undefined) {
    $('transition-note').textContent = 'Only one version: nothing to compare with.';
    $('chart-transitions').replaceChildren();
    return;
  }
  select.value = keep;
  const t = await api(`/v1/models/${encodeURIComponent(keep)}/transitions/${encodeURIComponent(to)}`);
  window.segflowExplorer.state.transitions = t;
  $('transition-note').textContent =
    t.customers === 0
      ? `No customer is assigned in both ${t.from} and ${t.to} in marts.customer_segments.`
      : `${t.changed} of ${t.customers} customers (${pct(t.changed_share)}) changed segment from ${t.from} to ${t.to}; moves in red.`;
  await draw('transitions', $('chart-transitions'), transitionsSpec(t));
}

async function showStability() {
  const stability = await api('/v1/stability');
  window.segflowExplorer.state.stability = stability;
  const t = stability.thresholds;
  const last = stability.nights[stability.nights.length - 1];
  $('stability-note').textContent =
    (stability.nights.length === 0
      ? 'No night recorded in marts.segment_stability yet.'
      : `${stability.nights.length} nights; last ${last.model_version}: ${last.decision}. `) +
    (t === null
      ? ''
      : `Alert thresholds (red dashes): changed share above ${pct(t.maxChangedShare)}, ARI below ${t.minAdjustedRandIndex}, centroid drift above ${t.maxCentroidDrift}.`);
  await draw('stability', $('chart-stability'), stabilitySpec(stability));
  await draw('sizes', $('chart-sizes'), sizesSpec(stability));
}

function link(href, text) {
  const a = document.createElement('a');
  a.href = href;
  a.textContent = text;
  a.target = '_blank';
  a.rel = 'noopener noreferrer';
  return a;
}

async function showRuns() {
  const runs = await api('/v1/runs');
  window.segflowExplorer.state.runs = runs;
  const rows = [];
  for (const dag of runs.dags) {
    if (dag.runs.length === 0) {
      const tr = document.createElement('tr');
      tr.append(cell(dag.dag_id), cell('no run yet'), cell(''), cell(''), cell(''));
      rows.push(tr);
    }
    for (const r of dag.runs) {
      const tr = document.createElement('tr');
      tr.dataset.status = r.status;
      const run = document.createElement('td');
      // Only http(s) links: the URL comes from the API's configuration.
      if (/^https?:\/\//.test(r.url)) run.append(link(r.url, r.workflow_id));
      else run.textContent = r.workflow_id;
      tr.append(cell(dag.dag_id), run, cell(r.status, `state ${r.status.toLowerCase()}`), cell(r.start_time), cell(r.close_time ?? '-'));
      rows.push(tr);
    }
  }
  $('runs')
    .querySelector('tbody')
    .replaceChildren(...rows);
  $('runs-note').textContent = runs.available
    ? 'The last runs of each DAG; each links to its history in the Temporal UI.'
    : `Runs unavailable: ${runs.message}.`;
}

async function lookup(id) {
  const result = $('lookup-result');
  result.classList.remove('error');
  result.textContent = `looking up ${id}...`;
  try {
    const explain = await api(`/v1/customers/${encodeURIComponent(id)}/explain`);
    window.segflowExplorer.state.explain = explain;
    const p = explain.profile;
    result.textContent =
      `${explain.customer_id} is in segment ${explain.segment.id} ${explain.segment.label} (model ${explain.model_version})` +
      (explain.margin === null
        ? ''
        : `; next is ${explain.margin.next_segment_id} ${explain.margin.next_label}, squared margin ${explain.margin.squared.toFixed(4)}`) +
      `. Profile: segment ${p.segment_id} ${p.segment_label} of ${p.model_version}, updated ${p.updated_at}${p.stale ? ' (stale copy)' : ''}` +
      (explain.agrees_with_profile ? '.' : '; the profile was assigned with another model or older features.');
    result.dataset.segmentId = String(explain.segment.id);
    await draw('distances', $('chart-distances'), distancesSpec(explain));
    await draw('explain', $('chart-explain'), explainSpec(explain));
  } catch (err) {
    if (err instanceof Unauthorized) return fail(err);
    result.textContent = String(err.message || err);
    result.classList.add('error');
  }
}

async function start() {
  if (!sessionStorage.getItem(TOKEN_KEY)) return showSignIn(SIGN_IN_TEXT, false);
  try {
    setState('loading', 'loading models...');
    const models = await api('/v1/models');
    $('sign-in').hidden = true;
    $('data').hidden = false;
    $('sign-out').hidden = false;
    const versions = models.models.map((m) => m.version);
    if (models.current !== null && !versions.includes(models.current)) versions.unshift(models.current);
    const select = $('version');
    select.replaceChildren(
      ...versions.map((v) => {
        const option = document.createElement('option');
        option.value = v;
        option.textContent = v === models.current ? `${v} (current)` : v;
        return option;
      }),
    );
    if (models.current === null && versions.length === 0)
      return setState('ready', 'No model yet: the nightly segmentation registers the first one.');
    await Promise.all([showStability(), showRuns()]);
    await showVersion(models.current ?? versions[0]);
  } catch (err) {
    fail(err);
  }
}

$('sign-in-form').addEventListener('submit', (event) => {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $('token').value.trim());
  $('token').value = '';
  void start();
});
$('sign-out').addEventListener('click', () => {
  sessionStorage.removeItem(TOKEN_KEY);
  showSignIn(SIGN_IN_TEXT, false);
});
$('version').addEventListener('change', (event) => {
  showVersion(event.target.value).catch(fail);
});

$('transition-from').addEventListener('change', () => {
  showTransitions().catch(fail);
});
$('lookup-form').addEventListener('submit', (event) => {
  event.preventDefault();
  void lookup($('lookup-id').value.trim());
});

void start();
