// ranerc web page: sends the text to POST /predict and highlights the entities it gets back.
// Offsets in answers count Unicode code points, so the text is sliced as an array of code points.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const textarea = $('text');
  const result = $('result');
  const legend = $('legend');
  const stats = $('stats');
  const errorBox = $('error');
  const table = $('table');
  const modelBox = $('model');
  const count = $('count');
  const inBrowser = $('inbrowser');
  const EXAMPLE = '马云在杭州阿里巴巴总部发表演讲';
  const FALLBACK = '#e6e6ff';

  let info = { types: [], colors: {}, limits: {} };
  let seq = 0;
  let timer = 0;

  const colorOf = (type) => info.colors[type] || FALLBACK;

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function renderLegend(counts) {
    legend.replaceChildren();
    const types = info.types.slice();
    for (const t of Object.keys(counts)) if (!types.includes(t)) types.push(t);
    for (const t of types) {
      const chip = el('span', 'chip');
      chip.dataset.type = t;
      chip.style.setProperty('--c', colorOf(t));
      chip.append(el('span', 'dot'), el('span', 'name', t));
      if (counts[t]) chip.append(el('span', 'n', String(counts[t])));
      legend.append(chip);
    }
  }

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = false;
  }

  /** Lines of the text with their code-point offsets; blank lines are kept for display but not sent. */
  function splitLines(text) {
    const out = [];
    let at = 0;
    for (const line of text.split('\n')) {
      const cps = Array.from(line);
      out.push({ line, cps, at });
      at += cps.length + 1;
    }
    return out;
  }

  /** Highlight `entities` (offsets in code points into the whole text) in `text`. */
  function render(text, entities, rttMs, serverMs) {
    const cps = Array.from(text);
    const frag = document.createDocumentFragment();
    const counts = {};
    let pos = 0;
    const sorted = entities.slice().sort((a, b) => a.start - b.start || a.end - b.end);
    for (const e of sorted) {
      if (e.start < pos) continue; // never nest or overlap marks
      if (e.start > pos) frag.append(cps.slice(pos, e.start).join(''));
      const mark = el('mark', 'ent', cps.slice(e.start, e.end).join(''));
      mark.dataset.type = e.type;
      mark.dataset.start = String(e.start);
      mark.dataset.end = String(e.end);
      mark.title = `${e.type}  [${e.start}, ${e.end})`;
      mark.style.setProperty('--c', colorOf(e.type));
      frag.append(mark);
      counts[e.type] = (counts[e.type] || 0) + 1;
      pos = e.end;
    }
    if (pos < cps.length) frag.append(cps.slice(pos).join(''));
    result.replaceChildren(frag);
    result.dataset.text = text;
    result.dataset.state = 'done';
    renderLegend(counts);

    const tbody = table.tBodies[0];
    tbody.replaceChildren();
    sorted.forEach((e, i) => {
      const tr = el('tr');
      const type = el('td');
      const tag = el('span', 'tag', e.type);
      tag.style.setProperty('--c', colorOf(e.type));
      type.append(tag);
      tr.append(el('td', 'muted', String(i + 1)), el('td', 'mono', e.text), type, el('td', 'num', String(e.start)), el('td', 'num', String(e.end)));
      tbody.append(tr);
    });
    table.hidden = sorted.length === 0;

    const parts = [`${sorted.length} ${sorted.length === 1 ? 'entity' : 'entities'}`, `${rttMs.toFixed(1)} ms ${inBrowser.checked ? 'in this browser' : 'round trip'}`];
    if (serverMs !== undefined) parts.push(`${serverMs.toFixed(1)} ms server`);
    stats.replaceChildren(...parts.map((p, i) => el('span', i === 1 ? 'latency' : '', p)));
  }

  /** POST one batch of texts; resolves to { results, serverMs } or throws an Error with the API message. */
  async function predictTexts(texts) {
    if (inBrowser.checked) return { results: await browserApi().predict(texts), serverMs: undefined };
    const res = await fetch('predict', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(texts.length === 1 ? { text: texts[0] } : { texts }),
    });
    const body = await res.json();
    if (!res.ok) throw new Error(body && body.error ? `${body.error.code}: ${body.error.message}` : `HTTP ${res.status}`);
    const timing = /predict;dur=([\d.]+)/.exec(res.headers.get('server-timing') || '');
    return { results: texts.length === 1 ? [body] : body.results, serverMs: timing ? Number(timing[1]) : undefined };
  }

  // Each line is tagged as its own text (an entity never spans a line break); offsets are then moved
  // to the whole text. A one-line text is exactly what POST /predict {"text"} answers.
  async function analyze() {
    clearTimeout(timer);
    const text = textarea.value;
    const n = Array.from(text).length;
    count.textContent = n ? `${n} chars` : '';
    if (text.trim() === '') {
      seq++;
      result.replaceChildren(el('span', 'muted', 'Entities appear here, highlighted by type.'));
      result.dataset.state = 'idle';
      delete result.dataset.text;
      stats.replaceChildren();
      table.hidden = true;
      errorBox.hidden = true;
      renderLegend({});
      return;
    }
    const my = ++seq;
    result.dataset.state = 'busy';
    const lines = splitLines(text).filter((l) => l.line.trim() !== '');
    const per = Math.max(1, (info.limits && info.limits.maxTexts) || 64);
    const t0 = performance.now();
    try {
      const entities = [];
      let serverMs = 0;
      let timed = false;
      for (let i = 0; i < lines.length; i += per) {
        const part = lines.slice(i, i + per);
        const answer = await predictTexts(part.map((l) => l.line));
        if (my !== seq) return; // a newer request is on its way
        answer.results.forEach((r, k) => {
          for (const e of r.entities) entities.push({ ...e, start: e.start + part[k].at, end: e.end + part[k].at });
        });
        if (answer.serverMs !== undefined) {
          serverMs += answer.serverMs;
          timed = true;
        }
      }
      const rtt = performance.now() - t0;
      errorBox.hidden = true;
      render(text, entities, rtt, timed ? serverMs : undefined);
    } catch (e) {
      if (my !== seq) return;
      result.dataset.state = 'error';
      showError(e && e.message ? e.message : String(e));
    }
  }

  // "run in this browser": src/web/page.ts (a module) sets window.ranercBrowser; the model loads on first use.
  function browserApi() {
    if (!window.ranercBrowser) throw new Error('the in-browser runtime did not load (web/js/web/page.js)');
    return window.ranercBrowser;
  }

  async function switchMode() {
    document.body.dataset.mode = inBrowser.checked ? 'browser' : 'server';
    if (inBrowser.checked) {
      document.body.dataset.browserReady = 'false';
      try {
        const spec = await browserApi().load();
        document.body.dataset.browserReady = 'true';
        modelBox.dataset.browser = spec.int8Ops.length > 0 ? 'int8' : 'float';
      } catch (e) {
        showError(`cannot run the model in this browser: ${e && e.message ? e.message : e}`);
        return;
      }
    }
    if (textarea.value.trim() !== '') analyze();
  }
  inBrowser.addEventListener('change', switchMode);

  textarea.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(analyze, 250);
  });
  textarea.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) {
      ev.preventDefault();
      analyze();
    }
  });
  $('analyze').addEventListener('click', analyze);
  $('example').addEventListener('click', () => {
    textarea.value = EXAMPLE;
    analyze();
  });
  $('clear').addEventListener('click', () => {
    textarea.value = '';
    analyze();
    textarea.focus();
  });

  fetch('api/info')
    .then((r) => r.json())
    .then((i) => {
      info = i;
      if (i.static) {
        // an export-web folder: no server, the page always predicts in the browser
        inBrowser.checked = true;
        inBrowser.disabled = true;
        $('api-line').textContent = 'static page: the model runs in this browser';
        $('links').hidden = true;
      }
      modelBox.replaceChildren(
        el('span', 'muted', 'model '),
        el('strong', '', i.model),
        el('span', 'muted', i.producedBy ? ` (${i.producedBy})` : ''),
        el('span', 'muted', ` · ${i.decoder.toUpperCase()} · ${i.scheme} · ${i.types.length} types`),
      );
      document.body.dataset.ready = 'true';
      renderLegend({});
      if (inBrowser.checked) switchMode();
      else if (textarea.value.trim() !== '') analyze();
    })
    .catch((e) => {
      modelBox.textContent = 'model info unavailable';
      showError(`cannot reach the server: ${e && e.message ? e.message : e}`);
    });
})();
