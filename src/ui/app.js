// Phare web UI: services, nodes, members and the KV store, kept live with the agent's blocking queries
// (Consul docs, "Blocking Queries"). Plain ES module, no build step, no framework: five views and a router
// fit in one file. Everything from the API is rendered with textContent, never as HTML (the agent's CSP
// allows no inline script either). An ACL token, when the operator logs in, lives in sessionStorage and goes
// out as X-Consul-Token; a 403 asks for one.

const ORDER = { passing: 0, warning: 1, critical: 2, maintenance: 2 };
const worst = (statuses) => statuses.reduce((w, s) => ((ORDER[s] ?? 2) > ORDER[w] ? s : w), 'passing');
const TOKEN_KEY = 'phare.token';

const $ = (sel) => document.querySelector(sel);
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k.startsWith('data-') || k.startsWith('aria-') || k === 'href' || k === 'for' || k === 'role')
      node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const c of children.flat(3)) if (c !== undefined && c !== null && c !== false) node.append(c);
  return node;
}
const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;
const enc = encodeURIComponent;

// ------------------------------------------------------------------ talking to the agent

class ApiError extends Error {
  constructor(status, text) {
    super(`${status} ${text}`);
    this.status = status;
  }
}

function banner(show) {
  const b = $('#banner');
  b.hidden = !show;
  if (show)
    b.textContent = `The agent at ${location.host} is not answering. Retrying; what you see is the last data received.`;
  const live = $('#live');
  live.className = `live ${show ? 'off' : 'on'}`;
  live.title = show
    ? 'the agent does not answer; retrying'
    : 'live: watching the agent with blocking queries';
}

function needLogin(text) {
  const a = $('#auth');
  a.hidden = false;
  a.replaceChildren(
    el('span', {
      textContent: sessionStorage.getItem(TOKEN_KEY)
        ? `The agent refused this token (${text.trim() || '403'}). Log in with another one.`
        : `The agent needs an ACL token for this (${text.trim() || '403'}).`,
    }),
    ' ',
    el('button', { type: 'button', textContent: 'Log in', onclick: openLogin }),
  );
}

/**
 * One API call: the token header, the unreachable banner, 403 → log in (unless `quiet403`: the caller
 * handles a refusal itself). Resolves to { data, index }.
 */
async function api(path, { method = 'GET', body, signal, quiet403 = false } = {}) {
  const headers = {};
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers['X-Consul-Token'] = token;
  let res;
  try {
    res = await fetch(path, { method, body, headers, signal, cache: 'no-store' });
  } catch (err) {
    if (!signal?.aborted) banner(true);
    throw err;
  }
  banner(false);
  if (res.status === 403) {
    const text = await res.text();
    if (!quiet403) needLogin(text);
    throw new ApiError(403, text);
  }
  if (!res.ok) throw new ApiError(res.status, await res.text());
  const index = Number(res.headers.get('X-Consul-Index') ?? 0);
  // anonymous answers are filtered without the header (Consul): under default deny an empty list may mean that
  const filtered =
    res.headers.get('X-Consul-Results-Filtered-By-ACLs') === 'true' ||
    (!token && res.headers.get('X-Consul-Default-ACL-Policy') === 'deny');
  const type = res.headers.get('content-type') ?? '';
  const data = type.includes('json') ? await res.json() : await res.text();
  return { data, index, filtered };
}

/**
 * Blocking-query loop: answers at once the first time, then waits for the index to move. The index resets
 * when it goes backwards (agent restarted); errors back off up to 8 s.
 */
function watch(path, onData, signal, { onError } = {}) {
  (async () => {
    let index = 0;
    let backoff = 500;
    while (!signal.aborted) {
      const sep = path.includes('?') ? '&' : '?';
      try {
        const r = await api(index > 0 ? `${path}${sep}index=${index}&wait=30s` : path, { signal });
        if (r.index !== index || index === 0) onData(r.data, r);
        index = r.index < index ? 0 : r.index;
        backoff = 500;
      } catch (err) {
        if (signal.aborted) return;
        onError?.(err);
        index = 0;
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(backoff * 2, 8000);
      }
    }
  })();
}

/** A plain poll, for endpoints without blocking queries (agent/members). */
function poll(path, onData, signal, everyMs = 5000) {
  (async () => {
    while (!signal.aborted) {
      try {
        onData((await api(path, { signal })).data);
      } catch {
        if (signal.aborted) return;
      }
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
}

// ------------------------------------------------------------------ small pieces

function dot(status, label = status) {
  return el('span', { class: `dot ${status ?? 'none'}`, 'aria-label': label, title: label });
}
function badge(status) {
  return el('span', { class: `status ${status}`, 'data-status': status, textContent: status });
}
function tags(list) {
  return el(
    'span',
    { class: 'tags' },
    (list ?? []).map((t) => el('span', { class: 'tag', textContent: t })),
  );
}
function metaTable(meta) {
  const entries = Object.entries(meta ?? {});
  if (entries.length === 0) return null;
  return el(
    'dl',
    { class: 'meta' },
    entries.map(([k, v]) => [el('dt', { textContent: k }), el('dd', { textContent: String(v) })]),
  );
}
function empty(text, ...extra) {
  return el('p', { class: 'empty', 'data-empty': 'true' }, text, ...extra);
}
function failed(view, err) {
  if (err?.status === 403)
    view.replaceChildren(empty('This view needs an ACL token with read access: log in.'));
}

/** Instances by their worst check (node checks included, as Consul's health endpoints count them). */
function countInstances(entries) {
  const counts = { passing: 0, warning: 0, critical: 0 };
  for (const e of entries) {
    const w = worst(e.Checks.map((c) => c.Status));
    counts[w === 'passing' || w === 'warning' ? w : 'critical']++;
  }
  return counts;
}

/** Failing node-level checks of these instances: the cause of every service on that node failing. */
function nodeCauses(entries) {
  const causes = new Map();
  for (const e of entries)
    for (const c of e.Checks)
      if (!c.ServiceID && c.Status !== 'passing') causes.set(`${c.Node}/${c.CheckID}`, c);
  return [...causes.values()];
}
function causeLine(c) {
  return el(
    'p',
    { class: `cause ${c.Status}`, 'data-cause': c.CheckID },
    'node check ',
    el('code', { textContent: c.CheckID }),
    ` is ${c.Status} → every service on node `,
    el('a', { href: `#/node/${enc(c.Node)}`, textContent: c.Node }),
    ` is ${c.Status}`,
    c.Output ? el('span', { class: 'muted', textContent: ` (${c.Output.slice(0, 200)})` }) : null,
  );
}

// ------------------------------------------------------------------ views

const filters = { q: '', tag: '', status: '' };

function servicesView(view, signal) {
  let catalog = null;
  let health = {};
  let filtered = false;
  let refreshing = null;
  const list = el('div', { id: 'services', class: 'list' });
  const search = el('input', {
    id: 'search',
    type: 'search',
    placeholder: 'Filter by name',
    'aria-label': 'Filter services by name',
    value: filters.q,
  });
  const tagSelect = el('select', { id: 'tag-filter', 'aria-label': 'Filter by tag' });
  const statusSelect = el(
    'select',
    { id: 'status-filter', 'aria-label': 'Filter by status' },
    [
      ['', 'any status'],
      ['passing', 'passing'],
      ['warning', 'warning'],
      ['critical', 'critical'],
      ['unchecked', 'no checks'],
    ].map(([v, t]) => el('option', { value: v, textContent: t, selected: filters.status === v })),
  );
  const summary = el('p', { id: 'summary', class: 'muted' });
  view.replaceChildren(
    el('h2', { textContent: 'Services' }),
    el('div', { class: 'toolbar' }, search, tagSelect, statusSelect),
    summary,
    list,
  );
  search.addEventListener('input', () => {
    filters.q = search.value;
    render();
  });
  tagSelect.addEventListener('change', () => {
    filters.tag = tagSelect.value;
    render();
  });
  statusSelect.addEventListener('change', () => {
    filters.status = statusSelect.value;
    render();
  });

  function rows() {
    return Object.keys(catalog ?? {})
      .sort()
      .map((name) => {
        const entries = health[name] ?? [];
        // the node's serfHealth is on every entry: "checked" means a check of the service itself
        const checked = entries.some((e) => e.Checks.some((c) => c.ServiceID));
        const status = entries.length
          ? worst(entries.map((e) => worst(e.Checks.map((c) => c.Status))))
          : 'critical';
        return { name, tags: catalog[name] ?? [], entries, checked, status, counts: countInstances(entries) };
      });
  }

  function render() {
    if (catalog === null) return;
    const all = rows();
    const allTags = [...new Set(all.flatMap((r) => r.tags))].sort();
    tagSelect.replaceChildren(
      el('option', { value: '', textContent: 'any tag' }),
      ...allTags.map((t) => el('option', { value: t, textContent: t, selected: filters.tag === t })),
    );
    const q = filters.q.trim().toLowerCase();
    const shown = all.filter(
      (r) =>
        (!q || r.name.toLowerCase().includes(q)) &&
        (!filters.tag || r.tags.includes(filters.tag)) &&
        (!filters.status ||
          (filters.status === 'unchecked' ? !r.checked : r.checked && r.status === filters.status)),
    );
    summary.textContent = `${plural(all.length, 'service')}${shown.length !== all.length ? `, ${shown.length} shown` : ''}${filtered ? ' · some are hidden by ACLs: log in to see more' : ''}`;
    if (all.length === 0)
      return list.replaceChildren(
        empty(
          filtered
            ? 'No service this token may read (ACLs deny by default): log in with a token that may.'
            : 'No services registered yet.',
        ),
      );
    if (shown.length === 0) {
      const clear = el('button', {
        type: 'button',
        textContent: 'Clear filters',
        onclick: () => {
          Object.assign(filters, { q: '', tag: '', status: '' });
          search.value = '';
          statusSelect.value = '';
          render();
        },
      });
      return list.replaceChildren(empty('No service matches these filters. ', clear));
    }
    list.replaceChildren(
      ...shown.map((r) =>
        el(
          'a',
          { class: 'row', href: `#/service/${enc(r.name)}`, 'data-service': r.name },
          r.checked ? dot(r.status) : dot('none', 'no checks'),
          el('span', { class: 'name', textContent: r.name }),
          tags(r.tags),
          el(
            'span',
            { class: 'counts', 'data-counts': r.name },
            r.checked
              ? [
                  el('span', {
                    class: 'n passing',
                    title: 'passing',
                    textContent: `${r.counts.passing} passing`,
                  }),
                  el('span', {
                    class: 'n warning',
                    title: 'warning',
                    textContent: `${r.counts.warning} warning`,
                  }),
                  el('span', {
                    class: 'n critical',
                    title: 'critical',
                    textContent: `${r.counts.critical} critical`,
                  }),
                ]
              : el('span', {
                  class: 'n',
                  textContent: `${plural(r.entries.length, 'instance')} · no checks`,
                }),
          ),
        ),
      ),
    );
  }

  // Names and tags from the catalog, health per service; either changing refreshes the health.
  async function refresh() {
    if (refreshing) return refreshing;
    refreshing = (async () => {
      const names = Object.keys(catalog ?? {});
      const next = {};
      await Promise.all(
        names.map(async (n) => {
          try {
            next[n] = (await api(`/v1/health/service/${enc(n)}`, { signal })).data;
          } catch {
            next[n] = health[n] ?? [];
          }
        }),
      );
      health = next;
      render();
    })().finally(() => {
      refreshing = null;
    });
    return refreshing;
  }
  watch(
    '/v1/catalog/services',
    (data, r) => {
      catalog = data;
      filtered = r.filtered;
      refresh();
    },
    signal,
    { onError: (err) => failed(view, err) },
  );
  watch('/v1/health/state/any', () => catalog && refresh(), signal);
}

function serviceView(view, signal, name) {
  view.replaceChildren(el('h2', { textContent: name }), el('p', { class: 'muted', textContent: 'Loading…' }));
  watch(
    `/v1/health/service/${enc(name)}`,
    (entries) => {
      const head = [
        el('p', { class: 'crumbs' }, el('a', { href: '#/services', textContent: 'Services' }), ' / '),
        el('h2', { textContent: name }),
      ];
      if (entries.length === 0) return view.replaceChildren(...head, empty('No instances of this service.'));
      const counts = countInstances(entries);
      const allTags = [...new Set(entries.flatMap((e) => e.Service.Tags ?? []))];
      view.replaceChildren(
        ...head,
        el('p', {}, tags(allTags)),
        el(
          'p',
          { class: 'muted', id: 'service-summary' },
          `${plural(entries.length, 'instance')}: ${counts.passing} passing, ${counts.warning} warning, ${counts.critical} critical`,
        ),
        ...nodeCauses(entries).map(causeLine),
        el('div', { class: 'cards' }, entries.map(instanceCard)),
      );
    },
    signal,
    { onError: (err) => failed(view, err) },
  );
}

function instanceCard(e) {
  const status = worst(e.Checks.map((c) => c.Status));
  const address = `${e.Service.Address || e.Node.Address}:${e.Service.Port ?? 0}`;
  return el(
    'article',
    { class: `card ${status}`, 'data-instance': e.Service.ID },
    el('header', {}, dot(status), el('strong', { textContent: e.Service.ID }), badge(status)),
    el(
      'p',
      { class: 'muted' },
      `${address} on node `,
      el('a', { href: `#/node/${enc(e.Node.Node)}`, textContent: e.Node.Node }),
    ),
    e.Service.Tags?.length ? el('p', {}, tags(e.Service.Tags)) : null,
    metaTable(e.Service.Meta),
    e.Checks.some((c) => c.ServiceID)
      ? null
      : el('p', {
          class: 'muted',
          textContent: 'No checks of its own: counted as passing unless a node check fails.',
        }),
    e.Checks.length ? el('div', { class: 'checks' }, e.Checks.map(checkBlock)) : null,
  );
}

function checkBlock(c) {
  // Consul's API has no "last run" time: the index of the check's last change is what it gives
  const kind = [
    c.Type,
    c.Interval ? `every ${c.Interval}` : '',
    c.Timeout ? `timeout ${c.Timeout}` : '',
    `id ${c.CheckID}`,
    `last change at index ${c.ModifyIndex}`,
  ]
    .filter(Boolean)
    .join(' · ');
  return el(
    'div',
    { class: 'check', 'data-check': c.CheckID },
    el(
      'div',
      { class: 'check-head' },
      badge(c.Status),
      el('span', { class: 'check-name', textContent: c.Name || c.CheckID }),
      c.ServiceID ? null : el('span', { class: 'tag node-tag', textContent: 'node check' }),
    ),
    el('div', { class: 'muted small', 'data-kind': c.CheckID }, kind),
    c.Notes ? el('div', { class: 'muted small', textContent: c.Notes }) : null,
    c.Output ? el('pre', { class: 'output', textContent: c.Output }) : null,
  );
}

function nodesView(view, signal) {
  let nodes = null;
  let checks = [];
  const list = el('div', { id: 'nodes', class: 'list' });
  view.replaceChildren(el('h2', { textContent: 'Nodes' }), list);
  const render = () => {
    if (!nodes) return;
    if (nodes.length === 0) return list.replaceChildren(empty('No nodes.'));
    list.replaceChildren(
      ...nodes.map((n) => {
        const own = checks.filter((c) => c.Node === n.Node && !c.ServiceID);
        const status = own.length ? worst(own.map((c) => c.Status)) : 'none';
        const failing = own.filter((c) => c.Status !== 'passing');
        return el(
          'a',
          { class: 'row', href: `#/node/${enc(n.Node)}`, 'data-node': n.Node },
          dot(status, own.length ? status : 'no node checks'),
          el('span', { class: 'name', textContent: n.Node }),
          el('span', { class: 'muted', textContent: `${n.Address} · ${n.Datacenter ?? ''}` }),
          el(
            'span',
            { class: 'counts' },
            failing.length
              ? failing.map((c) =>
                  el('span', { class: `n ${c.Status}`, textContent: `${c.CheckID} ${c.Status}` }),
                )
              : el('span', {
                  class: 'n',
                  textContent: plural(
                    new Set(checks.filter((c) => c.Node === n.Node && c.ServiceID).map((c) => c.ServiceID))
                      .size,
                    'checked service',
                  ),
                }),
          ),
        );
      }),
    );
  };
  watch(
    '/v1/catalog/nodes',
    (d) => {
      nodes = d;
      render();
    },
    signal,
    { onError: (err) => failed(view, err) },
  );
  watch(
    '/v1/health/state/any',
    (d) => {
      checks = d;
      render();
    },
    signal,
  );
}

function nodeView(view, signal, name) {
  let node = null;
  let checks = [];
  const render = () => {
    if (!node) return;
    const services = Object.values(node.Services ?? {});
    const nodeChecks = checks.filter((c) => !c.ServiceID);
    view.replaceChildren(
      el('p', { class: 'crumbs' }, el('a', { href: '#/nodes', textContent: 'Nodes' }), ' / '),
      el('h2', { textContent: name }),
      el('p', {
        class: 'muted',
        textContent: `${node.Node?.Address ?? ''} · ${node.Node?.Datacenter ?? ''}`,
      }),
      metaTable(node.Node?.Meta),
      ...nodeCauses([{ Checks: nodeChecks }]).map(causeLine),
      el('h3', { textContent: 'Node checks' }),
      nodeChecks.length
        ? el('div', { class: 'checks' }, nodeChecks.map(checkBlock))
        : empty('No node checks.'),
      el('h3', { textContent: 'Services' }),
      services.length
        ? el(
            'div',
            { class: 'list' },
            services.map((s) => {
              const own = checks.filter((c) => c.ServiceID === s.ID || !c.ServiceID);
              return el(
                'a',
                { class: 'row', href: `#/service/${enc(s.Service)}`, 'data-service': s.Service },
                dot(worst(own.map((c) => c.Status))),
                el('span', { class: 'name', textContent: s.ID }),
                el('span', {
                  class: 'muted',
                  textContent: `${s.Service} · ${s.Address || node.Node?.Address}:${s.Port}`,
                }),
                tags(s.Tags),
              );
            }),
          )
        : empty('No services on this node.'),
    );
  };
  view.replaceChildren(el('h2', { textContent: name }), el('p', { class: 'muted', textContent: 'Loading…' }));
  watch(
    `/v1/catalog/node/${enc(name)}`,
    (d) => {
      node = d ?? { Services: {} };
      render();
    },
    signal,
    { onError: (err) => failed(view, err) },
  );
  watch(
    `/v1/health/node/${enc(name)}`,
    (d) => {
      checks = d;
      render();
    },
    signal,
  );
}

const MEMBER_STATUS = { 0: 'none', 1: 'alive', 2: 'leaving', 3: 'left', 4: 'failed' };
function membersView(view, signal) {
  const list = el('div', { id: 'members', class: 'list' });
  view.replaceChildren(el('h2', { textContent: 'Cluster members' }), list);
  poll(
    '/v1/agent/members',
    (members) => {
      if (members.length === 0) return list.replaceChildren(empty('No members.'));
      list.replaceChildren(
        ...members.map((m) => {
          const status = MEMBER_STATUS[m.Status] ?? String(m.Status);
          return el(
            'div',
            { class: 'row', 'data-member': m.Name },
            dot(status === 'alive' ? 'passing' : status === 'left' ? 'none' : 'critical', status),
            el('span', { class: 'name', textContent: m.Name }),
            el('span', { class: 'muted', textContent: `${m.Addr}:${m.Port}` }),
            el('span', {
              class: `status ${status === 'alive' ? 'passing' : 'critical'}`,
              'data-member-status': status,
              textContent: status,
            }),
            el('span', { class: 'muted', textContent: m.Tags?.dc ?? '' }),
          );
        }),
      );
    },
    signal,
  );
}

function decodeValue(b64) {
  if (b64 === null || b64 === undefined) return '';
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  return new TextDecoder().decode(bytes);
}

function crumbsFor(path) {
  const parts = path.split('/').filter(Boolean);
  const out = [el('a', { href: '#/kv/', textContent: 'Key/Value' })];
  let acc = '';
  parts.forEach((p, i) => {
    const last = i === parts.length - 1 && !path.endsWith('/');
    acc += last ? p : `${p}/`;
    out.push(
      ' / ',
      last
        ? el('span', { textContent: p })
        : el('a', { href: `#/kv/${acc.split('/').map(enc).join('/')}`, textContent: p }),
    );
  });
  return el('p', { class: 'crumbs' }, out);
}

function kvView(view, signal, path) {
  if (path && !path.endsWith('/')) return kvKeyView(view, signal, path);
  const list = el('div', { id: 'kv', class: 'list' });
  const keyInput = el('input', {
    id: 'kv-new-key',
    placeholder: `${path}new-key`,
    'aria-label': 'New key',
    required: true,
  });
  const valueInput = el('textarea', { id: 'kv-new-value', 'aria-label': 'Value', rows: 3 });
  const msg = el('p', { class: 'muted', role: 'status' });
  const form = el(
    'form',
    { class: 'kv-new' },
    el('h3', { textContent: 'Create a key' }),
    keyInput,
    valueInput,
    el('button', { type: 'submit', textContent: 'Create' }),
    msg,
  );
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const key = keyInput.value.startsWith(path) ? keyInput.value : path + keyInput.value;
    try {
      // cas=0: create only, never overwrite a key someone else just wrote
      const { data } = await api(`/v1/kv/${key.split('/').map(enc).join('/')}?cas=0`, {
        method: 'PUT',
        body: valueInput.value,
      });
      msg.textContent = data === true || data === 'true' ? `Created ${key}.` : `${key} already exists.`;
      keyInput.value = '';
      valueInput.value = '';
    } catch (err) {
      msg.textContent = `Not created: ${err.message}`;
    }
  });
  view.replaceChildren(crumbsFor(path), el('h2', { textContent: path || 'Key/Value' }), list, form);
  watch(
    `/v1/kv/${path.split('/').map(enc).join('/')}?keys&separator=/`,
    (keys) => {
      if (!Array.isArray(keys) || keys.length === 0)
        return list.replaceChildren(empty(`No keys under ${path || 'the root'}.`));
      list.replaceChildren(
        ...keys.map((k) =>
          el(
            'a',
            { class: 'row', href: `#/kv/${k.split('/').map(enc).join('/')}`, 'data-key': k },
            el('span', { class: 'kv-icon', textContent: k.endsWith('/') ? '▸' : '·' }),
            el('span', { class: 'name', textContent: k.slice(path.length) }),
          ),
        ),
      );
    },
    signal,
    {
      onError: (err) => {
        if (err.status === 404) list.replaceChildren(empty(`No keys under ${path || 'the root'}.`));
        else failed(view, err);
      },
    },
  );
}

function kvKeyView(view, signal, key) {
  const url = `/v1/kv/${key.split('/').map(enc).join('/')}`;
  const msg = el('p', { class: 'muted', role: 'status', id: 'kv-msg' });
  // `base`: the version the textarea holds (saves are check-and-set on it); `latest`: what the agent has
  let base = null;
  let latest = null;
  const value = el('textarea', { id: 'kv-value', rows: 8, 'aria-label': `Value of ${key}` });
  const info = el('p', { class: 'muted small', id: 'kv-info' });
  const save = el('button', { type: 'submit', textContent: 'Save' });
  const del = el('button', { type: 'button', class: 'danger', textContent: 'Delete' });
  const form = el('form', { class: 'kv-edit' }, value, el('div', { class: 'buttons' }, save, del), msg);
  view.replaceChildren(crumbsFor(key), el('h2', { textContent: key }), info, form);
  const load = (entry) => {
    base = entry;
    value.value = decodeValue(entry?.Value);
    value.dataset.loaded = value.value;
  };
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      // check-and-set on the version being edited: a concurrent change is reported, never overwritten
      const { data } = await api(`${url}?cas=${base?.ModifyIndex ?? 0}`, {
        method: 'PUT',
        body: value.value,
      });
      if (data === true || data === 'true') {
        value.dataset.loaded = value.value;
        msg.textContent = 'Saved.';
      } else {
        load(latest);
        msg.textContent = 'Not saved: the key changed since you loaded it; its current value is shown.';
      }
    } catch (err) {
      msg.textContent = `Not saved: ${err.message}`;
    }
  });
  del.addEventListener('click', async () => {
    try {
      await api(`${url}?cas=${latest?.ModifyIndex ?? 0}`, { method: 'DELETE' });
      const parent = key.includes('/') ? key.slice(0, key.lastIndexOf('/') + 1) : '';
      location.hash = `#/kv/${parent.split('/').map(enc).join('/')}`;
    } catch (err) {
      msg.textContent = `Not deleted: ${err.message}`;
    }
  });
  watch(
    url,
    (entries) => {
      latest = entries[0];
      const dirty = value.dataset.loaded !== undefined && value.value !== value.dataset.loaded;
      if (!dirty) load(latest);
      else if (latest.ModifyIndex !== base?.ModifyIndex)
        msg.textContent =
          'Someone else changed this key while you were editing; saving now would be refused.';
      info.textContent = `flags ${latest.Flags} · created at index ${latest.CreateIndex} · modified at index ${latest.ModifyIndex}${latest.Session ? ` · locked by session ${latest.Session}` : ''}`;
    },
    signal,
    {
      onError: (err) => {
        if (err.status === 404) {
          latest = null;
          info.textContent = 'This key does not exist (any more).';
        } else failed(view, err);
      },
    },
  );
}

// ------------------------------------------------------------------ router, login, start

let viewAbort = new AbortController();
function route() {
  viewAbort.abort();
  viewAbort = new AbortController();
  const view = $('#view');
  const hash = location.hash.replace(/^#\/?/, '');
  // the old UI's links (#service=web) still land on the service
  const legacy = /^service=(.+)$/.exec(hash);
  const [kind, ...rest] = legacy ? ['service', legacy[1]] : hash.split('/');
  const arg = rest.map(decodeURIComponent).join('/');
  for (const a of document.querySelectorAll('#tabs a'))
    a.setAttribute(
      'aria-current',
      String(
        a.dataset.tab === (kind === 'service' ? 'services' : kind === 'node' ? 'nodes' : kind || 'services'),
      ),
    );
  $('#auth').hidden = true;
  const signal = viewAbort.signal;
  if (kind === 'service' && arg) serviceView(view, signal, arg);
  else if (kind === 'nodes') nodesView(view, signal);
  else if (kind === 'node' && arg) nodeView(view, signal, arg);
  else if (kind === 'members') membersView(view, signal);
  else if (kind === 'kv') kvView(view, signal, arg);
  else servicesView(view, signal);
}

function showSession() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  $('#login').hidden = Boolean(token);
  $('#logout').hidden = !token;
  // never the secret itself: its last four characters tell two tokens apart
  $('#who').textContent = token ? `token …${token.slice(-4)}` : '';
}
function openLogin() {
  $('#token').value = '';
  $('#login-dialog').showModal();
}

async function start() {
  $('#login').addEventListener('click', openLogin);
  $('#login-cancel').addEventListener('click', () => $('#login-dialog').close());
  $('#login-form').addEventListener('submit', () => {
    const token = $('#token').value.trim();
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    showSession();
    route();
    showAgent();
  });
  $('#logout').addEventListener('click', () => {
    sessionStorage.removeItem(TOKEN_KEY);
    showSession();
    route();
    showAgent();
  });
  window.addEventListener('hashchange', route);
  showSession();
  route();
  showAgent();
}

let agentLoop = 0;
/**
 * The header's agent line (node, datacenter, API version), from /v1/agent/self. Under ACLs that needs
 * `agent:read`: a token without it still browses what it may read, so a refusal is said here, not as a
 * login prompt. Asked again after every login and logout.
 */
async function showAgent() {
  const mine = ++agentLoop;
  for (let delay = 500; mine === agentLoop; delay = Math.min(delay * 2, 8000)) {
    try {
      const { data: self } = await api('/v1/agent/self', { quiet403: true });
      $('#agent').textContent =
        `node ${self.Config.NodeName} · ${self.Config.Datacenter} · Consul API ${self.Config.Version}`;
      return;
    } catch (err) {
      if (err instanceof ApiError && err.status === 403) {
        $('#agent').textContent = 'agent details need a token with agent:read';
        return;
      }
      $('#agent').textContent = 'agent not reachable';
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

start();
