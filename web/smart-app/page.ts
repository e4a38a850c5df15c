import FHIR from 'fhirclient';
import {
  cardSections,
  chartPoints,
  featureIndex,
  measurementsByVariable,
  percent,
  readAssessment,
  type Assessment,
  type Feature,
  type Measured,
} from './view.js';

/**
 * The page the launch redirects to: reads Patient, Encounter and Observations from the EHR's
 * FHIR server (in this browser, with the EHR's token), asks this service's FHIR $predict for
 * the explained RiskAssessment, and shows it with the measurements behind it.
 */

type Json = Record<string, unknown>;
type Client = Awaited<ReturnType<typeof FHIR.oauth2.ready>>;

/** Pages of Observations read at most (500 each): a bound on what one stay may load. */
const MAX_PAGES = 20;
/** Inputs whose measurements are listed, and measurements per input. */
const TOP_INPUTS = 5;
const VALUES_PER_INPUT = 4;
const SVG = 'http://www.w3.org/2000/svg';

const byId = <T extends HTMLElement = HTMLElement>(id: string): T => document.getElementById(id) as T;

function el<K extends keyof HTMLElementTagNameMap>(tag: K, text?: string, cls?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

function svg(tag: string, attrs: Record<string, string | number>, text?: string): SVGElement {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

function setStatus(message: string, error = false): void {
  const s = byId('status');
  s.textContent = message;
  s.className = error ? 'error' : '';
}

class ServiceError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

async function service(client: Client, path: string, init: RequestInit = {}): Promise<Response> {
  const token = client.state.tokenResponse?.access_token;
  const headers = new Headers(init.headers);
  if (token) headers.set('authorization', `Bearer ${token}`);
  const res = await fetch(new URL(path, location.href), { ...init, headers });
  if (!res.ok) {
    let detail = '';
    try {
      const body = (await res.json()) as Json;
      detail = String(body.message ?? ((body.issue as Json[] | undefined)?.[0]?.diagnostics as string) ?? '');
    } catch {
      // not JSON: the status says enough
    }
    throw new ServiceError(res.status, detail);
  }
  return res;
}

async function readStay(client: Client): Promise<{ patient: Json; encounters: Json[]; observations: Json[] }> {
  const patientId = client.patient.id;
  if (!patientId) throw new Error('the EHR gave no patient in context');
  const patient = (await client.patient.read()) as Json;
  const encounters: Json[] = client.encounter.id
    ? [(await client.encounter.read()) as Json]
    : ((await client.request(`Encounter?patient=${encodeURIComponent(patientId)}&_count=50`, {
        flat: true,
        pageLimit: 1,
      })) as Json[]);
  const observations = (await client.request(`Observation?patient=${encodeURIComponent(patientId)}&_count=500`, {
    flat: true,
    pageLimit: MAX_PAGES,
  })) as Json[];
  return { patient, encounters, observations };
}

function bundleOf(serverUrl: string, resources: Json[]): Json {
  const base = serverUrl.replace(/\/$/, '');
  return {
    resourceType: 'Bundle',
    type: 'collection',
    entry: resources.map((r) => ({ fullUrl: `${base}/${String(r.resourceType)}/${String(r.id)}`, resource: r })),
  };
}

function showPatient(patient: Json): void {
  const name = (patient.name as Array<{ text?: string; given?: string[]; family?: string }> | undefined)?.[0];
  const text = name?.text ?? [...(name?.given ?? []), name?.family ?? ''].join(' ').trim();
  byId('patient').textContent =
    `Patient: ${text || '(no name)'}${patient.birthDate ? `, born ${String(patient.birthDate)}` : ''}`;
}

function showRisk(a: Assessment): void {
  const value = byId('risk-value');
  value.textContent = percent(a.probability);
  value.dataset.probability = String(a.probability);
  const band = byId('risk-band');
  // The band in words and a symbol, not by colour alone.
  const symbol = a.band === 'high' ? '▲▲' : a.band === 'moderate' ? '▲' : '●';
  band.textContent = `${symbol} ${a.bandLabel}`;
  band.className = `band band-${a.band}`;
  byId('profile').textContent = a.profile
    ? (a.profile.text ??
      `Input profile ${a.profile.scenario}; held-out AUROC ${a.profile.heldOutAuroc?.toFixed(2) ?? 'not evaluated'}.`)
    : 'The input profile of this stay was not reported.';
  if (a.profile?.heldOutAuroc != null) byId('profile').dataset.auroc = String(a.profile.heldOutAuroc);
  byId('model').textContent = `Model: ${a.model}.`;
  if (a.bootstrap) {
    const b = byId('bootstrap');
    b.textContent = 'Warning: the serving model is an untrained placeholder; this number has no clinical meaning.';
    b.hidden = false;
  }
  byId('risk').hidden = false;
}

function showTrend(a: Assessment, thresholds: number[]): void {
  if (a.trajectory.length === 0) return;
  const box = { width: 640, height: 260, left: 44, right: 12, top: 12, bottom: 34 };
  const points = chartPoints(a.trajectory, box);
  const first = points[0] as (typeof points)[number];
  const last = points.at(-1) as (typeof points)[number];
  const chart = svg('svg', {
    viewBox: `0 0 ${box.width} ${box.height}`,
    role: 'img',
    'aria-labelledby': 'chart-caption',
  });
  const yOf = (p: number): number => box.top + (1 - p) * (box.height - box.top - box.bottom);
  for (const p of [0, 0.25, 0.5, 0.75, 1]) {
    chart.append(svg('line', { class: 'grid', x1: box.left, x2: box.width - box.right, y1: yOf(p), y2: yOf(p) }));
    chart.append(svg('text', { x: box.left - 6, y: yOf(p) + 4, 'text-anchor': 'end' }, `${p * 100}%`));
  }
  for (const t of thresholds)
    chart.append(svg('line', { class: 'threshold', x1: box.left, x2: box.width - box.right, y1: yOf(t), y2: yOf(t) }));
  const bottom = box.height - box.bottom;
  chart.append(svg('line', { class: 'axis', x1: box.left, x2: box.width - box.right, y1: bottom, y2: bottom }));
  // Hour labels at the first and last hour and every sixth between (a 48-hour stay has 9).
  for (const p of points) {
    if (p !== first && p !== last && p.hour % 6 !== 0) continue;
    chart.append(svg('line', { class: 'axis', x1: p.x, x2: p.x, y1: bottom, y2: bottom + 4 }));
    chart.append(svg('text', { x: p.x, y: bottom + 16, 'text-anchor': 'middle' }, `h${p.hour}`));
  }
  chart.append(
    svg('text', { x: (box.left + box.width) / 2, y: box.height - 2, 'text-anchor': 'middle' }, 'hour of the stay'),
  );
  chart.append(svg('polyline', { class: 'line', points: points.map((p) => `${p.x},${p.y}`).join(' ') }));
  for (const p of points) {
    const dot = svg('circle', { class: 'point', cx: p.x, cy: p.y, r: 3.5, 'data-hour': p.hour });
    dot.append(svg('title', {}, `hour ${p.hour}: ${percent(p.probability)}`));
    chart.append(dot);
  }
  byId('chart').replaceChildren(chart);
  byId('chart-caption').textContent =
    `Risk after each of the ${points.length} hour(s) used, from ${percent(first.probability)} at hour ${first.hour} to ${percent(last.probability)} at hour ${last.hour}. Dashed lines: the moderate and high bands.`;
  const body = byId('trend-table').querySelector('tbody') as HTMLTableSectionElement;
  body.replaceChildren(
    ...a.trajectory.map((p) => {
      const row = el('tr');
      row.append(el('td', String(p.hour)), el('td', percent(p.probability)));
      return row;
    }),
  );
  byId('trend').hidden = false;
}

function measuredCell(values: Measured[] | undefined): HTMLTableCellElement {
  const cell = el('td');
  if (!values || values.length === 0) {
    cell.textContent = '—';
    return cell;
  }
  const list = el('ul');
  for (const m of values.slice(0, VALUES_PER_INPUT)) {
    const item = el('li', `${m.value} ${m.unit} at `);
    const time = el('time', new Date(m.time).toLocaleString());
    time.dateTime = m.time;
    item.append(time);
    item.dataset.value = String(m.value);
    item.dataset.unit = m.unit;
    list.append(item);
  }
  if (values.length > VALUES_PER_INPUT) list.append(el('li', `and ${values.length - VALUES_PER_INPUT} earlier`));
  cell.append(list);
  return cell;
}

function showContributions(a: Assessment, labels: Map<string, string>, measured: Map<string, Measured[]>): void {
  if (a.contributions.length === 0) return;
  const body = byId('contributions-table').querySelector('tbody') as HTMLTableSectionElement;
  let listed = 0;
  body.replaceChildren(
    ...a.contributions.map((c) => {
      const row = el('tr');
      row.dataset.variable = c.variable;
      row.dataset.effect = String(c.effect);
      const label = labels.get(c.variable);
      const direction = c.effect >= 0 ? 'raises' : 'lowers';
      const points = Math.abs(c.effect * 100).toFixed(1);
      row.append(
        el('th', label ? `${label} (${c.variable})` : c.variable),
        el('td', `${c.effect >= 0 ? '+' : '−'}${points} points (${direction} the risk)`, direction),
        // The measurements behind the largest measured inputs (age, sex, ICU type have none).
        measured.has(c.variable) && listed++ < TOP_INPUTS ? measuredCell(measured.get(c.variable)) : el('td', ''),
      );
      row.firstElementChild?.setAttribute('scope', 'row');
      return row;
    }),
  );
  byId('contributions').hidden = false;
}

function showNotUsed(a: Assessment): void {
  const missing = a.notes.find((n) => n.startsWith('Not observed in the hours used'));
  const said = (severity: string): string => (severity === 'information' ? 'Note' : 'Not used or changed');
  const items = [...a.notUsed.map((i) => `${said(i.severity)}: ${i.text}`), ...(missing ? [missing] : [])];
  if (items.length === 0) items.push('Everything the EHR returned that the model reads was used.');
  byId('not-used-list').replaceChildren(...items.map((t) => el('li', t)));
  byId('not-used').hidden = false;
}

async function showModelCard(client: Client, features: { card?: string }): Promise<void> {
  if (!features.card) {
    byId('model-card-text').textContent = 'The service has no model card for this model version.';
    byId('model-card').hidden = false;
    return;
  }
  const text = await (await service(client, `..${features.card}`)).text();
  const sections = cardSections(text, [/^intended use/i, /^limitations?/i]);
  const target = byId('model-card-text');
  // Shown as text, never as HTML: Markdown's emphasis and code marks are dropped, nothing else.
  target.replaceChildren(...sections.flatMap((s) => [el('h3', s.heading), el('p', s.text.replace(/\*\*|`/g, ''))]));
  byId('model-card').hidden = sections.length === 0;
}

async function main(): Promise<void> {
  let client: Client;
  try {
    client = await FHIR.oauth2.ready();
  } catch (e) {
    setStatus(`The launch did not complete: ${(e as Error).message}. Open the app again from the EHR.`, true);
    return;
  }
  try {
    const stay = await readStay(client);
    showPatient(stay.patient);
    setStatus('Asking the ICU mortality service for the estimate…');
    const bundle = bundleOf(client.state.serverUrl, [stay.patient, ...stay.encounters, ...stay.observations]);
    const ra = (await (
      await service(client, '../fhir/RiskAssessment/$predict', {
        method: 'POST',
        headers: { 'content-type': 'application/fhir+json', accept: 'application/fhir+json' },
        body: JSON.stringify(bundle),
      })
    ).json()) as Json;
    const a = readAssessment(ra);
    const models = (await (await service(client, '../v1/models')).json()) as {
      models: Array<{ features: Feature[]; card?: string }>;
    };
    const model = models.models[0] ?? { features: [] };
    const labels = new Map(model.features.map((f) => [f.name, f.label]));
    const measured = measurementsByVariable(stay.observations, a.basis, featureIndex(model.features));
    const rationale = String(((ra.prediction as Json[] | undefined)?.[0] as Json | undefined)?.rationale ?? '');
    // The bands' lower edges, as the rationale states them ("moderate >= 0.15, high >= 0.4.").
    const thresholds = [...rationale.matchAll(/>= (\d+(?:\.\d+)?)/g)].map((m) => Number(m[1]));
    showRisk(a);
    showTrend(a, thresholds);
    showContributions(a, labels, measured);
    showNotUsed(a);
    setStatus(`Estimate for the data as of ${new Date(String(ra.occurrenceDateTime)).toLocaleString()}.`);
    await showModelCard(client, model).catch((e: Error) => {
      byId('model-card-text').textContent = `The model card could not be read: ${e.message}`;
      byId('model-card').hidden = false;
    });
  } catch (e) {
    if (e instanceof ServiceError) {
      const why =
        e.status === 401 || e.status === 403
          ? "the service did not accept the EHR's access token for this launch"
          : e.message || 'see the service log by request id';
      setStatus(`The ICU mortality service refused (${e.status}): ${why}. No estimate is shown.`, true);
    } else setStatus(`Could not read the patient's data: ${(e as Error).message}`, true);
  }
}

void main();
