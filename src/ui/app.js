// Phare web UI: services, instances and checks, kept live with the agent's blocking queries.
// Plain ES module, no build step. Everything from the API is rendered with textContent (never as HTML).

const ORDER = { passing: 0, warning: 1, critical: 2 };
const worst = (statuses) => statuses.reduce((w, s) => (ORDER[s] > ORDER[w] ? s : w), 'passing');

const $ = (sel) => document.querySelector(sel);
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') node.className = v;
    else if (k.startsWith('data-') || k.startsWith('aria-')) node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const c of children) if (c !== undefined && c !== null) node.append(c);
  return node;
}

let liveErrors = 0;
function setLive(ok) {
  const live = $('#live');
  live.className = `live ${ok ? 'on' : 'off'}`;
  live.title = ok ? 'live: watching the agent with blocking queries' : 'the agent does not answer; retrying';
}

/**
 * Blocking-query loop (Consul docs, Blocking Queries): answer at once the first time, then wait for the index to move.
 * Resets the index if it goes backwards (agent restarted) and backs off on errors.
 */
async function watch(path, onData, signal) {
  let index = 0;
  let backoff = 500;
  while (!signal.aborted) {
    const sep = path.includes('?') ? '&' : '?';
    const url = index > 0 ? `${path}${sep}index=${index}&wait=30s` : path;
    try {
      const res = await fetch(url, { signal });
      if (!res.ok) throw new Error(`${res.status} ${await res.text()}`);
      const next = Number(res.headers.get('X-Consul-Index') ?? 0);
      const body = await res.json();
      if (next !== index || index === 0) onData(body);
      index = next < index ? 0 : next;
      backoff = 500;
      if (liveErrors > 0) liveErrors--;
      setLive(true);
    } catch {
      if (signal.aborted) return;
      liveErrors++;
      setLive(false);
      index = 0;
      await new Promise((r) => setTimeout(r, backoff));
      backoff = Math.min(backoff * 2, 8000);
    }
  }
}

const state = {
  services: {},
  checks: [],
  selected: decodeURIComponent(location.hash.replace(/^#service=/, '')),
};

function serviceStatus(name) {
  const own = state.checks.filter((c) => c.ServiceName === name);
  const instances = new Set(own.map((c) => `${c.Node}/${c.ServiceID}`));
  return {
    status: own.length ? worst(own.map((c) => c.Status)) : 'passing',
    instances: instances.size,
    checked: own.length > 0,
  };
}

function renderServices() {
  const q = $('#search').value.trim().toLowerCase();
  const list = $('#services');
  list.replaceChildren();
  const names = Object.keys(state.services).sort();
  for (const name of names) {
    if (q && !name.toLowerCase().includes(q)) continue;
    const { status, instances, checked } = serviceStatus(name);
    const button = el(
      'button',
      {
        type: 'button',
        'data-service': name,
        'aria-current': String(name === state.selected),
        title: checked ? status : 'no checks',
      },
      el('span', { class: `dot ${checked ? status : ''}`, 'aria-label': checked ? status : 'no checks' }),
      el('span', { textContent: name }),
      el('span', { class: 'count', textContent: checked ? `${instances}` : '' }),
    );
    button.addEventListener('click', () => select(name));
    list.append(el('li', {}, button));
  }
  if (names.length === 0)
    list.append(el('li', { class: 'muted', textContent: 'No services registered yet.' }));
}

let detailWatch;
function select(name) {
  state.selected = name;
  history.replaceState(null, '', `#service=${encodeURIComponent(name)}`);
  renderServices();
  detailWatch?.abort();
  detailWatch = new AbortController();
  const detail = $('#detail');
  detail.replaceChildren(
    el('h2', { textContent: name }),
    el('p', { class: 'muted', textContent: 'Loading…' }),
  );
  watch(
    `/v1/health/service/${encodeURIComponent(name)}`,
    (entries) => renderDetail(name, entries),
    detailWatch.signal,
  );
}

function renderDetail(name, entries) {
  const detail = $('#detail');
  const tags = state.services[name] ?? [];
  const head = el('h2', { textContent: name });
  const tagLine = el('p', {}, ...tags.map((t) => el('span', { class: 'tag', textContent: t })));
  if (entries.length === 0) {
    detail.replaceChildren(head, el('p', { class: 'muted', textContent: 'No instances.' }));
    return;
  }
  const rows = entries.map((e) => {
    const status = worst(e.Checks.map((c) => c.Status));
    const address = `${e.Service.Address || e.Node.Address}:${e.Service.Port ?? 0}`;
    const checks = el(
      'td',
      {},
      ...e.Checks.map((c) =>
        el(
          'div',
          { 'data-check': c.CheckID },
          el('span', { class: `status ${c.Status}`, textContent: c.Status }),
          ' ',
          el('span', { textContent: c.Name }),
          c.Output ? el('div', { class: 'output muted', textContent: c.Output.slice(0, 300) }) : null,
        ),
      ),
    );
    return el(
      'tr',
      { 'data-instance': e.Service.ID },
      el('td', {}, el('span', { class: `dot ${status}` }), ' ', el('span', { textContent: e.Service.ID })),
      el('td', { textContent: address }),
      el('td', { textContent: e.Node.Node }),
      el('td', {}, ...(e.Service.Tags ?? []).map((t) => el('span', { class: 'tag', textContent: t }))),
      el('td', {}, el('span', { class: `status ${status}`, 'data-status': status, textContent: status })),
      checks,
    );
  });
  const table = el(
    'table',
    {},
    el(
      'thead',
      {},
      el(
        'tr',
        {},
        ...['Instance', 'Address', 'Node', 'Tags', 'Status', 'Checks'].map((h) =>
          el('th', { textContent: h }),
        ),
      ),
    ),
    el('tbody', {}, ...rows),
  );
  const counts = { passing: 0, warning: 0, critical: 0 };
  for (const e of entries) counts[worst(e.Checks.map((c) => c.Status))]++;
  const summary = el(
    'p',
    { class: 'muted' },
    `${entries.length} instance${entries.length === 1 ? '' : 's'}: ${counts.passing} passing, ${counts.warning} warning, ${counts.critical} critical`,
  );
  detail.replaceChildren(head, tagLine, summary, table);
}

async function start() {
  try {
    const self = await (await fetch('/v1/agent/self')).json();
    $('#agent').textContent =
      `node ${self.Config.NodeName} · ${self.Config.Datacenter} · Consul API ${self.Config.Version}`;
  } catch {
    $('#agent').textContent = 'agent not reachable';
  }
  $('#search').addEventListener('input', renderServices);
  const top = new AbortController();
  watch(
    '/v1/catalog/services',
    (services) => {
      state.services = services;
      renderServices();
    },
    top.signal,
  );
  watch(
    '/v1/health/state/any',
    (checks) => {
      state.checks = checks;
      renderServices();
    },
    top.signal,
  );
  if (state.selected) select(state.selected);
}

start();
