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
  $('chart-profile').replaceChildren();
  $('chart-k').replaceChildren();
  $('version').replaceChildren();
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
  window.segflowExplorer.state = { segments, model };
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
  setState('ready', '');
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

void start();
