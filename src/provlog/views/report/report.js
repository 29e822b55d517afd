/* provlog report: draws the run whose data this page embeds.
 *
 * No network, no libraries. Every value that comes from the run (names,
 * previews, messages, tracebacks, log lines) is put into the page with
 * textContent or setAttribute, never parsed as markup: values are hostile.
 *
 * Sections: helpers, data, selection, summary, failures, timeline, call
 * tree, lineage, actions table, details pane, start.
 */
(function () {
  'use strict';

  // ================================================================ helpers

  const SVGNS = 'http://www.w3.org/2000/svg';
  const STATES = ['completed', 'failed', 'cancelled', 'not_ended'];
  const STATE_LABEL = {
    completed: 'completed', failed: 'failed',
    cancelled: 'cancelled', not_ended: 'not ended',
  };

  /** Set attributes, text and listeners; values are never parsed. */
  function setProps(node, props) {
    if (!props) return node;
    for (const [key, value] of Object.entries(props)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === 'text') node.textContent = String(value);
      else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? '' : String(value));
    }
    return node;
  }

  function add(node, children) {
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  /** An HTML element: el('div', {class: 'x', text: 'y'}, ...children). */
  function el(tag, props, ...children) {
    return add(setProps(document.createElement(tag), props), children);
  }

  /** An SVG element. */
  function sv(tag, props, ...children) {
    return add(setProps(document.createElementNS(SVGNS, tag), props), children);
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
    return node;
  }

  function plural(n, word, many) {
    return fmtInt(n) + ' ' + (n === 1 ? word : (many || word + 's'));
  }

  function fmtDur(s) {
    if (s === null || s === undefined || !isFinite(s)) return '–';
    const a = Math.abs(s);
    if (a === 0) return '0 s';
    if (a < 1e-3) return (s * 1e6).toFixed(a < 1e-5 ? 1 : 0) + ' µs';
    if (a < 1) return (s * 1e3).toFixed(a < 0.01 ? 2 : a < 0.1 ? 1 : 0) + ' ms';
    if (a < 60) return s.toFixed(a < 10 ? 2 : 1) + ' s';
    if (a < 3600) return Math.floor(s / 60) + ' min ' + Math.round(s % 60) + ' s';
    return Math.floor(s / 3600) + ' h ' + Math.round((s % 3600) / 60) + ' min';
  }

  function fmtInt(n) {
    return typeof n === 'number' ? n.toLocaleString('en-US') : String(n);
  }

  function fmtRel(t) {
    return (t < 0 ? '−' : '+') + fmtDur(Math.abs(t));
  }

  /** Seconds since t0 as a UTC wall clock (the hosts' clocks). */
  function fmtClock(t, withDate) {
    const d = new Date((D.t0 + t) * 1000);
    if (isNaN(d.getTime())) return '?';
    const iso = d.toISOString();
    return (withDate ? iso.slice(0, 10) + ' ' : '') + iso.slice(11, 23) + ' UTC';
  }

  function fmtBytes(n) {
    if (typeof n !== 'number') return '–';
    if (n < 1024) return n + ' B';
    const units = ['KiB', 'MiB', 'GiB', 'TiB'];
    let v = n / 1024, u = 0;
    while (v >= 1024 && u < units.length - 1) { v /= 1024; u++; }
    return v.toFixed(v < 10 ? 1 : 0) + ' ' + units[u];
  }

  function shorten(text, n) {
    text = String(text);
    return text.length <= n ? text : text.slice(0, Math.max(1, n - 1)) + '…';
  }

  function badge(state) {
    return el('span', {class: 'badge st-' + state, text: STATE_LABEL[state] || state});
  }

  function heading(title, ...extra) {
    return add(el('div', {class: 'head'}, el('h2', {text: title})), extra);
  }

  // ================================================================ data

  const D = JSON.parse(document.getElementById('provlog-data').textContent);
  if (D.format !== 1) {
    document.body.prepend(el('p', {class: 'notice', text:
      'This report was made by another provlog version (data format ' +
      D.format + '); this page cannot draw it.'}));
    return;
  }
  const CALLS = D.calls;
  const SPAN = Math.max(D.span || 0, 1e-6);
  const KIDS = CALLS.map(() => []);
  const ROOTS = [];
  CALLS.forEach((c, i) => {
    if (c.parent === undefined) ROOTS.push(i); else KIDS[c.parent].push(i);
  });

  function agentName(idx) {
    const a = idx === undefined ? null : D.agents[idx];
    return a ? a.name : 'unknown';
  }
  function agentClass(idx) {
    const a = idx === undefined ? null : D.agents[idx];
    return a && a.class ? a.class : '';
  }
  function procLabel(idx) {
    const p = idx === undefined || idx === null ? null : D.procs[idx];
    return p ? p.label : '?';
  }
  /** The side a call is drawn by: its execution, else its request. */
  function mainSide(c) { return c.ex || c.rq || null; }
  function callDur(c) {
    const s = mainSide(c);
    return s ? s[1] - s[0] : null;
  }
  function callStart(c) {
    const s = mainSide(c);
    return s ? s[0] : 0;
  }
  /** A link-like button that selects call i. */
  function callLink(i, text) {
    return el('button', {
      class: 'link', type: 'button', 'data-i': i, 'data-tag': CALLS[i].tag,
      text: text || CALLS[i].name, onclick: () => select(i, {reveal: true}),
    });
  }

  // ================================================================ selection

  let selected = -1;
  const listeners = [];

  /** Make call i the one every view shows. */
  function select(i, opts) {
    selected = i;
    for (const f of listeners) f(i, opts || {});
  }

  // ================================================================ summary

  function drawSummary() {
    const s = D.summary;
    const root = document.getElementById('summary');
    const total = Math.max(1, s.actions);
    const bar = el('div', {class: 'statebar', role: 'img',
      'aria-label': 'actions by state'});
    const legend = el('div', {class: 'legend'});
    for (const st of STATES) {
      const n = s.states[st] || 0;
      if (n > 0) {
        const part = el('span', {class: 'st-' + st, title: n + ' ' + STATE_LABEL[st]});
        part.style.width = (100 * n / total) + '%';
        bar.append(part);
      }
      legend.append(el('span', {class: 'key' + (n ? '' : ' zero')},
        el('i', {class: 'swatch st-' + st}), fmtInt(n) + ' ' + STATE_LABEL[st]));
    }
    const tile = (label, value, ...more) => el('div', {class: 'tile'},
      el('div', {class: 'label', text: label}),
      el('div', {class: 'value', text: value}), more);
    const hosts = s.hosts.length === 1 ? 'on host ' + s.hosts[0]
      : 'on ' + s.hosts.length + ' hosts: ' + s.hosts.join(', ');
    const complete = s.complete
      ? el('div', {class: 'ok', text: '✔ every journal closed, nothing lost'})
      : el('div', {class: 'bad', text: '⚠ ' + plural(s.gaps.length, 'gap') + ' in the record, listed below'});
    add(clear(root), [
      el('h2', {class: 'sr-only', text: 'Summary'}),
      el('div', {class: 'tiles'},
        tile('Actions', fmtInt(s.actions), bar, legend),
        tile('Agents', fmtInt(s.agents),
          el('div', {class: 'sub', text: s.clients ? '+ ' + plural(s.clients, 'client') : ''})),
        tile('Processes', fmtInt(s.processes), el('div', {class: 'sub', text: hosts})),
        tile('Duration', fmtDur(s.duration),
          el('div', {class: 'sub', text: D.t0_iso ? 'from ' + fmtClock(0, true) : ''})),
        tile('Record', s.complete ? 'Complete' : 'Incomplete', complete)),
    ]);
    root.querySelector('.tile:last-child').classList.add(s.complete ? 'good' : 'warn');
    if (s.gaps.length) {
      root.append(el('ul', {class: 'gaps'}, s.gaps.map(
        (g) => el('li', {}, el('code', {text: g.code}), ' ', g.message))));
    }
  }

  // ================================================================ failures

  /** The last frame of a traceback: where the error was raised. */
  function lastFrame(tb) {
    const lines = String(tb || '').split('\n');
    for (let n = lines.length - 1; n >= 0; n--) {
      const m = /^\s*File "(.*)", line (\d+), in (.*)$/.exec(lines[n]);
      if (m) {
        const next = lines[n + 1] || '';
        return {file: m[1], line: m[2], fn: m[3],
          code: /^\s{4,}\S/.test(next) && !/^\s*File "/.test(next) ? next.trim() : ''};
      }
    }
    return null;
  }

  function logList(c) {
    const box = el('div', {class: 'logs'});
    for (const [kind, t, a, b, text] of c.logs || []) {
      const where = kind === 'log' ? b : kind === 'warning' ? b : kind;
      box.append(el('div', {class: 'logline k-' + kind},
        el('span', {class: 'when', text: t === null ? '' : fmtRel(t)}),
        el('div', {class: 'lbody'},
          el('div', {class: 'lmeta'},
            el('span', {class: 'lvl lvl-' + String(a || kind).toLowerCase(),
              text: kind === 'log' ? a : kind === 'warning' ? a || 'Warning' : kind}),
            kind === 'log' || kind === 'warning' ? el('span', {class: 'src', text: where}) : null),
          el('pre', {class: 'msg', text: text}))));
    }
    if (c.logs_cut) {
      box.append(el('div', {class: 'muted', text: plural(c.logs_cut, 'more line') +
        ' not in this report (per-action or report size cap)'}));
    }
    return box;
  }

  function drawFailures() {
    const root = clear(document.getElementById('failures'));
    const failed = [], cancelled = [], open = [];
    CALLS.forEach((c, i) => {
      if (c.state === 'failed') failed.push(i);
      else if (c.state === 'cancelled') cancelled.push(i);
      else if (c.state === 'not_ended') open.push(i);
    });
    const s = D.summary.states;
    const title = 'Failures';
    root.append(heading(title, el('span', {class: 'count',
      text: s.failed ? plural(s.failed, 'failed action') : 'none'})));
    if (!s.failed && !s.cancelled && !s.not_ended) {
      root.append(el('p', {class: 'ok', text: '✔ No action failed, was cancelled or was left running.'}));
      return;
    }
    // group by action, error type and message: one card per distinct error
    const groups = new Map();
    for (const i of failed) {
      const c = CALLS[i];
      const e = c.err || {};
      const key = JSON.stringify([c.name, e.type || '', e.message || '']);
      if (!groups.has(key)) groups.set(key, []);
      groups.get(key).push(i);
    }
    const ordered = [...groups.values()].sort((x, y) =>
      y.length - x.length || callStart(CALLS[x[0]]) - callStart(CALLS[y[0]]));
    for (const members of ordered) root.append(failureCard(members));
    const failedOut = notDrawn(s.failed, failed.length);
    if (failedOut) root.append(failedOut);
    for (const [label, list, state] of [['Cancelled', cancelled, 'cancelled'],
      ['Not ended', open, 'not_ended']]) {
      if (!list.length && !s[state]) continue;
      const total = s[state];
      const box = chips(list, (i) => CALLS[i].name + ' on ' + agentName(CALLS[i].callee));
      box.prepend(el('span', {class: 'others-title', text: label + ' (' + fmtInt(total) + ')'}));
      const out = notDrawn(total, list.length);
      if (out) box.append(out);
      root.append(el('div', {class: 'others'}, box));
    }
  }

  /** "+N more not drawn in this report", when a sample left some out. */
  function notDrawn(total, drawn) {
    const more = (total || 0) - drawn;
    return more > 0 ? el('p', {class: 'muted not-drawn',
      text: '+' + fmtInt(more) + ' more not drawn in this report'}) : null;
  }

  function chips(list, text, limit) {
    const box = el('div', {class: 'chips'});
    const show = (from) => {
      const upto = Math.min(list.length, from + (limit || 60));
      for (let n = from; n < upto; n++) {
        const i = list[n];
        const chip = callLink(i, text(i) + ' · ' + fmtRel(callStart(CALLS[i])));
        chip.classList.add('chip', 'st-' + CALLS[i].state);
        box.append(chip);
      }
      if (upto < list.length) {
        const more = el('button', {class: 'link more', type: 'button',
          text: 'show ' + Math.min(list.length - upto, limit || 60) + ' more of ' +
            (list.length - upto)});
        more.addEventListener('click', () => { more.remove(); show(upto); });
        box.append(more);
      }
    };
    show(0);
    return box;
  }

  function failureCard(members) {
    const first = CALLS[members[0]];
    const e = first.err || {};
    const fromChild = members.some((i) => KIDS[i].some((k) => CALLS[k].state === 'failed'));
    const frame = lastFrame(e.traceback);
    const where = el('div', {class: 'esub'},
      el('b', {text: first.name}), ' on ', agentName(first.callee));
    if (frame) {
      add(where, [' · raised in ', el('code', {text: frame.fn}), ' at ',
        el('code', {title: frame.file, text: frame.file.split('/').pop() + ':' + frame.line}),
        frame.code ? el('code', {class: 'code', text: frame.code}) : null]);
    }
    if (fromChild) where.append(el('span', {class: 'muted', text: ' · passed on from a call it made'}));
    if (!e.type) where.append(el('span', {class: 'muted', text: ' · no error journalled by the agent side'}));
    const card = el('div', {class: 'failure'},
      el('div', {class: 'etitle'},
        el('span', {class: 'etype', text: e.type || 'failed'}),
        e.message ? el('span', {class: 'emsg', text: ': ' + shorten(e.message, 300)}) : null,
        el('span', {class: 'ecount', text: plural(members.length, 'call')})),
      where);
    const foot = el('div', {class: 'efoot'});
    if (e.traceback) {
      foot.append(el('details', {}, el('summary', {text: 'traceback'}),
        el('pre', {class: 'tb', text: e.traceback})));
    }
    if (first.logs && first.logs.length) {
      foot.append(el('details', {}, el('summary', {text: 'log lines (' + first.logs.length + ')'}),
        logList(first)));
    }
    foot.prepend(chips(members, (i) =>
      agentName(CALLS[i].caller) + ' → ' + agentName(CALLS[i].callee), 8));
    card.append(foot);
    return card;
  }

  // ================================================================ timeline

  const Timeline = (function () {
    const LABEL_W = 230, EXEC_H = 16, REQ_H = 6, GAP = 3, PAD = 6;
    const HOST_H = 22, PROC_H = 19, AXIS_H = 22, OVER_H = 36, MIN_W = 3;
    const MAX_ARROWS = 600, MAX_LABELS = 400;
    const FULL_A = -0.01 * SPAN, FULL_B = 1.01 * SPAN;
    let view = {a: FULL_A, b: FULL_B};
    let drag = null, overDrag = false, windowWired = false;
    let base = null, settle = 0;  // the view the bars were placed for
    let plotW = 800;
    let pending = false;
    const bars = [];        // {i, rect, side, s, e}
    const byCall = new Map(); // call index -> {ex: rect, rq: rect}
    const geo = [];         // per row: {y, h}
    let root, body, bodySvg, axisSvg, overSvg, gGrid, gBars, gLabels, gArrows, gAxis, gWindow, rangeText;

    function rowGeometry() {
      let y = 0, host = null, proc = null;
      const headers = [];
      D.rows.forEach((r, n) => {
        const p = D.procs[r.proc] || {};
        if (p.host !== host || n === 0) {
          host = p.host; proc = null;
          headers.push({kind: 'host', y, text: 'host ' + (host || '?')});
          y += HOST_H;
        }
        if (r.proc !== proc) {
          proc = r.proc;
          headers.push({kind: 'proc', y, text: 'process ' + (p.label || '?'),
            note: p.closed === false ? 'journal not closed' : ''});
          y += PROC_H;
        }
        const h = Math.max(26, PAD * 2 + r.ne * (EXEC_H + GAP) + r.nr * (REQ_H + GAP) - GAP);
        geo[n] = {y, h, row: r};
        y += h;
      });
      return {headers, height: y + 4};
    }

    function laneY(side, kind) {
      const g = geo[side[4]];
      if (kind === 'ex') return g.y + PAD + side[5] * (EXEC_H + GAP);
      return g.y + PAD + g.row.ne * (EXEC_H + GAP) + side[5] * (REQ_H + GAP);
    }

    function x(t) { return LABEL_W + (t - view.a) / (view.b - view.a) * plotW; }
    function t(px) { return view.a + (px - LABEL_W) / plotW * (view.b - view.a); }

    function build() {
      root = clear(document.getElementById('timeline'));
      const execs = CALLS.filter((c) => c.ex).length;
      root.append(heading('Timeline',
        el('span', {class: 'count', text: plural(execs, 'execution') + ' on ' + plural(D.rows.length, 'row')}),
        timelineLegend()));
      const tools = el('div', {class: 'tools'});
      const btn = (text, title, f) => el('button', {type: 'button', class: 'tool', title, text, onclick: f});
      rangeText = el('span', {class: 'range'});
      add(tools, [
        btn('−', 'zoom out', () => zoom(1.6)),
        btn('+', 'zoom in', () => zoom(1 / 1.6)),
        btn('Fit', 'show the whole run (or double-click)', () => setView(FULL_A, FULL_B)),
        btn('Selected', 'zoom to the selected call', () => { if (selected >= 0) focus(selected); }),
        rangeText,
      ]);
      root.append(tools);
      root.setAttribute('data-span', SPAN);
      const wrap = el('div', {class: 'tl-wrap'});
      root.append(wrap);
      const width = Math.max(600, wrap.clientWidth - 2);
      plotW = width - LABEL_W - 14;
      overSvg = sv('svg', {class: 'tl-over', width, height: OVER_H});
      axisSvg = sv('svg', {class: 'tl-axis', width, height: AXIS_H});
      const {headers, height} = rowGeometry();
      bodySvg = sv('svg', {class: 'tl-body', width, height});
      body = el('div', {class: 'tl-scroll'}, bodySvg);
      wrap.append(overSvg, axisSvg, body, el('div', {class: 'hint caption',
        text: 'wheel: zoom · drag: pan · shift+wheel: scroll the rows · double-click: whole run · ' +
          'click a bar for its details; a thin bar is the caller\'s side of a call (its request)'}));
      drawOverview(width);
      gAxis = sv('g');
      axisSvg.append(gAxis);
      const defs = sv('defs', {},
        sv('clipPath', {id: 'tl-clip'}, sv('rect', {x: LABEL_W, y: 0, width: plotW + 12, height})),
        sv('pattern', {id: 'tl-hatch', width: 6, height: 6, patternUnits: 'userSpaceOnUse',
          patternTransform: 'rotate(45)'},
        sv('rect', {width: 6, height: 6, class: 'hatch-bg'}),
        sv('rect', {width: 3, height: 6, class: 'hatch-fg'})),
        sv('marker', {id: 'tl-arrow', viewBox: '0 0 8 8', refX: 7, refY: 4,
          markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse'},
        sv('path', {d: 'M0,0 L8,4 L0,8 z', class: 'arrowhead'})));
      bodySvg.append(defs);
      const bands = sv('g', {class: 'bands'});
      geo.forEach((g, n) => bands.append(sv('rect', {x: 0, y: g.y, width, height: g.h,
        class: n % 2 ? 'band odd' : 'band'})));
      for (const h of headers) {
        bands.append(sv('rect', {x: 0, y: h.y, width, height: h.kind === 'host' ? HOST_H : PROC_H,
          class: 'hdr-' + h.kind}));
      }
      bodySvg.append(bands);
      gGrid = sv('g', {class: 'grid'});
      const plot = sv('g', {'clip-path': 'url(#tl-clip)'});
      gBars = sv('g', {class: 'bars'});
      gLabels = sv('g', {class: 'labels'});
      gArrows = sv('g', {class: 'arrows'});
      plot.append(gBars, gLabels, gArrows);
      bodySvg.append(gGrid, plot);
      // bars: requests first, so executions are drawn over them
      for (const kind of ['rq', 'ex']) {
        CALLS.forEach((c, i) => {
          const side = c[kind];
          if (!side || side[4] === undefined) return;
          const y = laneY(side, kind);
          const cls = 'bar ' + (kind === 'ex' ? 'exec' : 'req') + ' st-' + c.state +
            (side[3] ? '' : ' open');
          const rect = sv('rect', {class: cls, y, height: kind === 'ex' ? EXEC_H : REQ_H,
            rx: kind === 'ex' ? 2 : 1, 'data-tag': c.tag, 'data-i': i});
          gBars.append(rect);
          bars.push({i, rect, s: side[0], e: side[1], kind, y});
          if (!byCall.has(i)) byCall.set(i, {});
          byCall.get(i)[kind] = {rect, side, y};
        });
      }
      // the label gutter, over the bars
      const gutter = sv('g', {class: 'gutter'});
      gutter.append(sv('rect', {x: 0, y: 0, width: LABEL_W - 4, height, class: 'gutter-bg'}));
      for (const h of headers) {
        const text = sv('text', {x: h.kind === 'host' ? 8 : 16, y: h.y + (h.kind === 'host' ? 15 : 13.5),
          class: 'hdr-text ' + h.kind, text: shorten(h.text, 34)});
        gutter.append(text);
        if (h.note) gutter.append(sv('text', {x: LABEL_W + 8, y: h.y + 14, class: 'hdr-note', text: h.note}));
      }
      geo.forEach((g) => {
        const a = D.agents[g.row.agent];
        const name = a ? a.name : 'unknown caller';
        const role = a ? (a.role === 'client' ? 'client' : (a.class || '').split('.').pop()) : '';
        gutter.append(sv('text', {x: 28, y: g.y + 16, class: 'row-name', text: shorten(name, 26)},
          sv('title', {text: name + (a && a.class ? ' (' + a.class + ')' : '')})));
        if (role && g.h >= 30) {
          gutter.append(sv('text', {x: 28, y: g.y + 29, class: 'row-role', text: shorten(role, 30)}));
        } else if (role) {
          gutter.append(sv('text', {x: LABEL_W - 10, y: g.y + 16, class: 'row-role end', text: shorten(role, 12)}));
        }
      });
      gutter.append(sv('line', {x1: LABEL_W - 4, x2: LABEL_W - 4, y1: 0, y2: height, class: 'gutter-line'}));
      bodySvg.append(gutter);
      wire();
      setView(...initialView());
    }

    /** Where executions ran: a run that waited long for its agents to
     * start opens on its work; Fit (or a double-click) shows it all. */
    function initialView() {
      let a = Infinity, b = -Infinity;
      for (const c of CALLS) if (c.ex) { a = Math.min(a, c.ex[0]); b = Math.max(b, c.ex[1]); }
      if (!(b > a) || b - a > 0.6 * SPAN) return [FULL_A, FULL_B];
      const pad = (b - a) * 0.04;
      return [a - pad, b + pad];
    }

    function timelineLegend() {
      const key = (cls, text) => el('span', {class: 'key'}, el('i', {class: 'swatch ' + cls}), text);
      return el('div', {class: 'legend tl-legend'},
        STATES.map((s) => key('st-' + s, STATE_LABEL[s])),
        key('req-swatch', 'request (caller side)'),
        key('arrow-swatch', 'call'));
    }

    function drawOverview(width) {
      const h = D.hist;
      overSvg.append(sv('text', {x: 8, y: 15, class: 'over-title', text: 'activity'}),
        sv('text', {x: 8, y: 28, class: 'over-sub', text: 'executions running, all ' + fmtInt(D.summary.actions)}));
      if (!h || !h.bins) return;
      let top = 1;
      const sums = [];
      for (let b = 0; b < h.bins; b++) {
        let sum = 0;
        for (const s of STATES) sum += (h.series[s] || [])[b] || 0;
        sums.push(sum);
        top = Math.max(top, sum);
      }
      const ox = (tt) => LABEL_W + (tt - FULL_A) / (FULL_B - FULL_A) * plotW;
      const g = sv('g', {class: 'hist'});
      for (let b = 0; b < h.bins; b++) {
        let y = OVER_H - 4;
        for (const s of STATES) {
          const n = (h.series[s] || [])[b] || 0;
          if (!n) continue;
          const hh = Math.max(1, n / top * (OVER_H - 10));
          y -= hh;
          g.append(sv('rect', {x: ox(b / h.bins * D.span), y, width: Math.max(1, D.span / h.bins / (FULL_B - FULL_A) * plotW), height: hh, class: 'st-' + s}));
        }
      }
      overSvg.append(g);
      gWindow = sv('rect', {class: 'window', y: 1, height: OVER_H - 2});
      overSvg.append(gWindow);
      // click or drag on the overview moves the view there
      overSvg.addEventListener('pointerdown', (ev) => { overDrag = true; overMove(ev); });
    }

    function overMove(ev) {
      const r = overSvg.getBoundingClientRect();
      const tt = FULL_A + (ev.clientX - r.left - LABEL_W) / plotW * (FULL_B - FULL_A);
      const w = view.b - view.a;
      setView(tt - w / 2, tt + w / 2);
    }

    function setView(a, b) {
      const minW = Math.max(SPAN * 1e-6, 1e-7);
      if (b - a < minW) { const c = (a + b) / 2; a = c - minW / 2; b = c + minW / 2; }
      if (b - a >= FULL_B - FULL_A) { a = FULL_A; b = FULL_B; }
      if (a < FULL_A) { b += FULL_A - a; a = FULL_A; }
      if (b > FULL_B) { a -= b - FULL_B; b = FULL_B; }
      view = {a, b};
      root.setAttribute('data-view-start', a.toFixed(9));
      root.setAttribute('data-view-end', b.toFixed(9));
      const from = Math.max(0, a), to = Math.min(D.span, b);
      rangeText.textContent = fmtRel(from) + ' – ' + fmtRel(to) +
        (to - from < D.span ? ' (' + fmtDur(to - from) + ' of ' + fmtDur(D.span) + ')' : ' (whole run)');
      if (!pending) { pending = true; requestAnimationFrame(draw); }
    }

    function zoom(f, at) {
      const c = at === undefined ? (view.a + view.b) / 2 : at;
      setView(c - (c - view.a) * f, c + (view.b - c) * f);
    }

    /** Bars at their places for the current view (attributes, no transform). */
    function place() {
      base = {a: view.a, b: view.b};
      for (const b of bars) {
        const x0 = x(b.s);
        b.rect.setAttribute('x', x0.toFixed(1));
        b.rect.setAttribute('width', Math.max(x(b.e) - x0, MIN_W).toFixed(1));
      }
      gBars.removeAttribute('transform');
    }

    function draw() {
      pending = false;
      if (base === null) {
        place();
      } else {
        // while the view moves, one transform moves every bar; once it
        // rests, the bars are placed exactly again
        const k = (base.b - base.a) / (view.b - view.a);
        const tx = LABEL_W + (base.a - view.a) / (view.b - view.a) * plotW - LABEL_W * k;
        gBars.setAttribute('transform', `matrix(${k},0,0,1,${tx},0)`);
        clearTimeout(settle);
        settle = setTimeout(place, 160);
      }
      drawAxis();
      drawLabels();
      drawArrows();
      if (gWindow) {
        const ox = (tt) => LABEL_W + (tt - FULL_A) / (FULL_B - FULL_A) * plotW;
        gWindow.setAttribute('x', ox(view.a));
        gWindow.setAttribute('width', Math.max(2, ox(view.b) - ox(view.a)));
      }
    }

    function niceStep(raw) {
      const p = Math.pow(10, Math.floor(Math.log10(raw)));
      for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p;
      return 10 * p;
    }

    function drawAxis() {
      clear(gAxis); clear(gGrid);
      const step = niceStep((view.b - view.a) / Math.max(2, plotW / 110));
      const height = bodySvg.getAttribute('height');
      gAxis.append(sv('text', {x: 8, y: 16, class: 'axis-title', text: 'time since the run began'}));
      for (let v = Math.ceil(Math.max(view.a, 0) / step) * step; v <= Math.min(view.b, SPAN * 1.01); v += step) {
        const px = x(v);
        if (px < LABEL_W || px > LABEL_W + plotW) continue;
        gAxis.append(sv('line', {x1: px, x2: px, y1: AXIS_H - 6, y2: AXIS_H, class: 'tick'}),
          sv('text', {x: px, y: AXIS_H - 9, class: 'tick-label', text: fmtTick(v, step)}));
        gGrid.append(sv('line', {x1: px, x2: px, y1: 0, y2: height, class: 'gridline'}));
      }
    }

    function fmtTick(v, step) {
      const digits = (unit) => Math.max(0, Math.ceil(-Math.log10(step / unit) - 1e-9));
      if (step >= 1 || Math.abs(v) >= 1) return v.toFixed(digits(1)) + ' s';
      if (step >= 1e-3 || Math.abs(v) >= 1e-3) return (v * 1e3).toFixed(digits(1e-3)) + ' ms';
      return (v * 1e6).toFixed(digits(1e-6)) + ' µs';
    }

    function drawLabels() {
      clear(gLabels);
      let n = 0;
      const taken = new Map();  // lane top -> right end of its last label
      for (const b of bars) {
        if (b.kind !== 'ex' || n >= MAX_LABELS) continue;
        const x0 = Math.max(x(b.s), LABEL_W);
        const w = Math.min(x(b.e), LABEL_W + plotW) - x0;
        if (w < 44 || x0 < (taken.get(b.y) || -Infinity)) continue;  // no label over a label
        const c = CALLS[b.i];
        const text = shorten(c.name + ' ' + fmtDur(callDur(c)), Math.floor((w - 6) / 6.3));
        gLabels.append(sv('text', {x: x0 + 4, y: b.y + 12, class: 'bar-label', text}));
        taken.set(b.y, x0 + 8 + text.length * 6.3);
        n++;
      }
    }

    function arrowFor(i, cls) {
      const parts = byCall.get(i);
      if (!parts || !parts.ex || !parts.rq) return;
      const rq = parts.rq, ex = parts.ex;
      const x1 = x(rq.side[0]), x2 = x(ex.side[0]);
      const down = ex.y > rq.y;
      const y1 = down ? rq.y + REQ_H : rq.y;
      const y2 = down ? ex.y : ex.y + EXEC_H;
      const my = (y1 + y2) / 2;
      gArrows.append(sv('path', {class: 'arrow ' + cls,
        d: `M${x1},${y1} C${x1},${my} ${x2},${my} ${x2},${y2}`, 'marker-end': 'url(#tl-arrow)'}));
      if (cls === 'sel') {  // and the answer back to the caller
        const x3 = x(ex.side[1]), x4 = x(rq.side[1]);
        const y3 = down ? ex.y : ex.y + EXEC_H, y4 = down ? rq.y + REQ_H : rq.y;
        gArrows.append(sv('path', {class: 'arrow back',
          d: `M${x3},${y3} C${x3},${my} ${x4},${my} ${x4},${y4}`, 'marker-end': 'url(#tl-arrow)'}));
      }
    }

    function drawArrows() {
      clear(gArrows);
      const visible = [];
      for (const [i, parts] of byCall) {
        if (parts.ex && parts.rq) {
          const a = Math.min(parts.rq.side[0], parts.ex.side[0]);
          const b = Math.max(parts.rq.side[0], parts.ex.side[0]);
          if (b >= view.a && a <= view.b) visible.push(i);
        }
      }
      if (visible.length <= MAX_ARROWS) for (const i of visible) if (i !== selected) arrowFor(i, '');
      if (selected >= 0) {
        for (const k of KIDS[selected]) arrowFor(k, 'near');
        arrowFor(selected, 'sel');
      }
    }

    function focus(i) {
      const c = CALLS[i];
      const sides = [c.rq, c.ex].filter(Boolean);
      if (!sides.length) return;
      const a = Math.min(...sides.map((s) => s[0])), b = Math.max(...sides.map((s) => s[1]));
      const pad = Math.max((b - a) * 0.3, SPAN * 1e-4);
      setView(a - pad, b + pad);
      const part = byCall.get(i);
      if (part) {
        const y = (part.ex || part.rq).y;
        if (y < body.scrollTop || y > body.scrollTop + body.clientHeight - 30) body.scrollTop = Math.max(0, y - 60);
      }
    }

    function highlight(i) {
      for (const r of bodySvg.querySelectorAll('.bar.sel')) r.classList.remove('sel');
      const parts = byCall.get(i);
      if (parts) for (const p of [parts.ex, parts.rq]) if (p) p.rect.classList.add('sel');
      drawArrows();
    }

    /** Drags go on outside the timeline: listened to on the window, once. */
    function wireWindow() {
      window.addEventListener('pointermove', (ev) => {
        if (overDrag) overMove(ev);
        if (!drag) return;
        const dx = ev.clientX - drag.x;
        if (Math.abs(dx) > 3) drag.moved = true;
        if (drag.moved) {
          const dt = -dx / plotW * (drag.b - drag.a);
          setView(drag.a + dt, drag.b + dt);
          bodySvg.classList.add('panning');
        }
      });
      window.addEventListener('pointerup', () => {
        if (drag && drag.moved) bodySvg.setAttribute('data-dragged', '1');
        drag = null;
        overDrag = false;
        bodySvg.classList.remove('panning');
      });
      let resizeTimer = 0;
      window.addEventListener('resize', () => {
        clearTimeout(resizeTimer);
        resizeTimer = setTimeout(() => {
          const keep = view;
          bars.length = 0; byCall.clear(); geo.length = 0; base = null;
          build(); setView(keep.a, keep.b); if (selected >= 0) highlight(selected);
        }, 200);
      });
    }

    function wire() {
      const tip = document.getElementById('tip');
      if (!windowWired) { wireWindow(); windowWired = true; }
      const onWheel = (ev) => {
        if (ev.shiftKey) return;  // let the rows scroll
        ev.preventDefault();
        const r = bodySvg.getBoundingClientRect();
        if (Math.abs(ev.deltaX) > Math.abs(ev.deltaY)) {
          const dt = ev.deltaX / plotW * (view.b - view.a);
          setView(view.a + dt, view.b + dt);
        } else {
          zoom(Math.exp(ev.deltaY * 0.0015), t(ev.clientX - r.left));
        }
      };
      bodySvg.addEventListener('wheel', onWheel, {passive: false});
      axisSvg.addEventListener('wheel', onWheel, {passive: false});
      bodySvg.addEventListener('pointerdown', (ev) => {
        if (ev.button !== 0) return;
        drag = {x: ev.clientX, a: view.a, b: view.b, moved: false};
      });
      bodySvg.addEventListener('click', (ev) => {
        if (bodySvg.getAttribute('data-dragged')) { bodySvg.removeAttribute('data-dragged'); return; }
        const target = ev.target.closest('[data-i]');
        if (target) select(Number(target.getAttribute('data-i')), {reveal: true, from: 'timeline'});
      });
      bodySvg.addEventListener('dblclick', () => setView(FULL_A, FULL_B));
      bodySvg.addEventListener('mousemove', (ev) => {
        const target = ev.target.closest('[data-i]');
        if (!target || drag) { tip.hidden = true; return; }
        const c = CALLS[Number(target.getAttribute('data-i'))];
        clear(tip);
        tip.append(el('b', {text: c.name}), ' ', badge(c.state),
          el('div', {text: agentName(c.caller) + ' → ' + agentName(c.callee)}),
          c.ex ? el('div', {text: 'execution ' + fmtDur(c.ex[1] - c.ex[0]) + ' at ' + fmtRel(c.ex[0])}) : null,
          c.rq ? el('div', {text: 'request ' + fmtDur(c.rq[1] - c.rq[0]) + ' at ' + fmtRel(c.rq[0])}) : null,
          c.err && c.err.type ? el('div', {class: 'etype', text: c.err.type}) : null);
        tip.hidden = false;
        const w = tip.offsetWidth;
        tip.style.left = Math.min(ev.pageX + 14, window.scrollX + window.innerWidth - w - 8) + 'px';
        tip.style.top = (ev.pageY + 14) + 'px';
      });
      bodySvg.addEventListener('mouseleave', () => { tip.hidden = true; });
    }

    return {build, highlight, focus};
  })();

  // ================================================================ call tree

  const Tree = (function () {
    // One flat list of rows, indented by depth: a deep run nests no DOM.
    const PAGE = 300;
    const nodes = new Map();  // call index -> {i, row, toggle, depth, open, shown, more}
    let list, topMore = null;

    function build() {
      const root = clear(document.getElementById('tree'));
      root.append(heading('Call tree', el('span', {class: 'count',
        text: plural(ROOTS.length, 'top-level call') + (D.sample ? ' in this report' : '')})));
      root.append(el('div', {class: 'tools'},
        el('button', {type: 'button', class: 'tool', text: 'Expand all', onclick: () => expandAll(true)}),
        el('button', {type: 'button', class: 'tool', text: 'Collapse all', onclick: () => expandAll(false)}),
        el('span', {class: 'hint', text: 'click a call for its details; ▸ shows the calls it made'})));
      list = el('div', {class: 'tree', role: 'tree'});
      root.append(list);
      const end = el('div', {class: 'end'});
      list.append(end);
      page(null, ROOTS, 0, 0, end);
    }

    /** Rows for calls[from...] before `before`, PAGE at a time. */
    function page(parent, calls, from, depth, before) {
      const upto = Math.min(calls.length, from + PAGE);
      const rows = [];
      for (let n = from; n < upto; n++) rows.push(row(calls[n], depth));
      before.before(...rows);
      if (parent !== null) nodes.get(parent).shown = upto;
      if (upto < calls.length) {
        const more = el('button', {type: 'button', class: 'link more',
          text: 'show ' + Math.min(PAGE, calls.length - upto) + ' more of ' + (calls.length - upto)});
        const line = el('div', {class: 'more-row'}, more);
        line.style.paddingLeft = (depth * 18 + 28) + 'px';
        line.showMore = () => { page(parent, calls, upto, depth, line); line.remove(); };
        more.addEventListener('click', () => line.showMore());
        before.before(line);
        setMore(parent, line);
      } else {
        setMore(parent, null);
      }
    }

    function setMore(parent, line) {
      if (parent === null) topMore = line; else nodes.get(parent).more = line;
    }

    /** Draw the row of call i: open its parent, show pages until it is there. */
    function ensure(i) {
      const p = CALLS[i].parent;
      if (p !== undefined) {
        if (!nodes.has(p)) ensure(p);
        if (!nodes.has(p)) return;
        setOpen(p, true);
      }
      for (let guard = 0; !nodes.has(i) && guard < CALLS.length; guard++) {
        const more = p === undefined ? topMore : nodes.get(p).more;
        if (!more) return;
        more.showMore();
      }
    }

    function row(i, depth) {
      const c = CALLS[i];
      const kids = KIDS[i];
      const toggle = el('button', {type: 'button', class: 'toggle', 'aria-expanded': 'false',
        'aria-label': 'show the calls it made', text: kids.length ? '▸' : ''});
      if (!kids.length) toggle.disabled = true;
      const missing = (c.nc || 0) - kids.length;
      const line = el('div', {class: 'line'},
        toggle,
        el('span', {class: 'name', text: c.name}),
        el('span', {class: 'agent', text: agentName(c.caller) + ' → ' + agentName(c.callee)}),
        badge(c.state),
        el('span', {class: 'dur', text: fmtDur(callDur(c))}),
        kids.length ? el('span', {class: 'kids', text: plural(kids.length, 'call')}) : null,
        missing > 0 ? el('span', {class: 'muted', text: '+' + missing + ' not in this report'}) : null);
      line.style.paddingLeft = (Math.min(depth, 40) * 18 + 4) + 'px';
      const item = el('div', {class: 'node', role: 'treeitem', 'data-tag': c.tag, 'data-i': i,
        'aria-level': depth + 1, 'data-parent-tag': c.parent !== undefined ? CALLS[c.parent].tag : null}, line);
      toggle.addEventListener('click', (ev) => {
        ev.stopPropagation();
        setOpen(i, toggle.getAttribute('aria-expanded') !== 'true');
      });
      line.addEventListener('click', () => select(i, {from: 'tree'}));
      nodes.set(i, {i, row: item, toggle, depth, open: false, shown: 0, more: null});
      return item;
    }

    /** Show or hide the rows of the calls under call i (and theirs). */
    function showUnder(i, visible) {
      const stack = [i];
      while (stack.length) {
        const n = nodes.get(stack.pop());
        for (let k = 0; k < n.shown; k++) {
          const kid = KIDS[n.i][k];
          const m = nodes.get(kid);
          m.row.hidden = !visible;
          if (m.open || !visible) stack.push(kid);
        }
        if (n.more) n.more.hidden = !visible;
      }
    }

    function setOpen(i, open) {
      const n = nodes.get(i);
      if (!n || !KIDS[i].length || n.open === open) return;
      n.open = open;
      n.toggle.setAttribute('aria-expanded', String(open));
      n.toggle.textContent = open ? '▾' : '▸';
      if (open && !n.shown) {  // children are drawn when first opened
        page(i, KIDS[i], 0, n.depth + 1, n.row.nextSibling);
      } else {
        showUnder(i, open);
      }
    }

    function expandAll(open) {
      let budget = 3000;
      const stack = ROOTS.filter((i) => nodes.has(i)).reverse();
      while (stack.length && budget-- > 0) {
        const i = stack.pop();
        setOpen(i, open);
        if (open) for (const k of KIDS[i].slice().reverse()) if (nodes.has(k)) stack.push(k);
      }
    }

    /** Open the tree down to call i, mark it and scroll the tree to it. */
    function reveal(i) {
      ensure(i);
      for (const old of list.querySelectorAll('.line.sel')) old.classList.remove('sel');
      const n = nodes.get(i);
      if (!n) return;
      n.row.firstChild.classList.add('sel');
      const top = n.row.offsetTop;
      if (top < list.scrollTop || top > list.scrollTop + list.clientHeight - 24) {
        list.scrollTop = Math.max(0, top - list.clientHeight / 2);
      }
    }

    return {build, reveal};
  })();

  // ================================================================ lineage

  const Lineage = (function () {
    const MAX_NODES = 120, WX = 160, WV = 128, XH = 40, VH = 34, GX = 40, GY = 12;
    let root;

    /** The lineage graph of some calls: values and executions, by a walk. */
    function graph(targets) {
      const nodes = new Map(), edges = [], queue = [];
      let cut = 0;
      const addNode = (key, make) => {
        if (nodes.has(key)) return true;
        if (nodes.size >= MAX_NODES) { cut++; return false; }
        nodes.set(key, Object.assign({key, order: nodes.size}, make()));
        queue.push(key);
        return true;
      };
      const exec = (i) => addNode('x' + i, () => ({kind: 'x', i}));
      const val = (i, slot) => addNode('v' + i + ':' + slot, () => ({kind: 'v', i, slot}));
      const edge = (a, b, kind, note) => edges.push({a, b, kind, note});
      for (const i of targets) {
        if (nodes.size >= MAX_NODES) break;
        if (CALLS[i].out) val(i, 'r'); else exec(i);
      }
      const first = nodes.keys().next().value;
      while (queue.length) {
        const key = queue.shift();
        const n = nodes.get(key);
        const c = CALLS[n.i];
        if (n.kind === 'v' && n.slot === 'r') {
          if (exec(n.i)) edge('x' + n.i, key, 'gen', 'generated');
        } else if (n.kind === 'v') {
          for (const [input, src, note] of c.der || []) {
            if (input !== n.slot) continue;
            if (src < 0) {
              if (addNode('s' + n.i + ':' + input, () => ({kind: 's', text: 'a result not in this report'})))
                edge('s' + n.i + ':' + input, key, 'der', note);
            } else if (val(src, 'r')) edge('v' + src + ':r', key, 'der', note || 'same content (sha256)');
          }
        } else if (n.kind === 'x') {
          (c.in || []).forEach(([name], k) => { if (val(n.i, k)) edge('v' + n.i + ':' + k, key, 'used', 'used as ' + name); });
          for (const k of KIDS[n.i]) if (exec(k)) edge('x' + k, key, 'call', 'called by ' + c.name);
          const missing = (c.nc || 0) - KIDS[n.i].length;
          if (missing > 0 && addNode('m' + n.i, () => ({kind: 's', text: plural(missing, 'call') + ' not in this report'})))
            edge('m' + n.i, key, 'call', 'sampled out');
        }
      }
      return {nodes, edges, cut, first};
    }

    /** Layers by longest path from the sources, ordered by barycentres. */
    function layout(g) {
      const ids = [...g.nodes.keys()];
      const preds = new Map(ids.map((k) => [k, []])), succs = new Map(ids.map((k) => [k, []]));
      for (const e of g.edges) { preds.get(e.b).push(e.a); succs.get(e.a).push(e.b); }
      // components, laid out one under the other
      const comp = new Map();
      let nc = 0;
      for (const k of ids) {
        if (comp.has(k)) continue;
        const stack = [k]; comp.set(k, nc);
        while (stack.length) {
          const u = stack.pop();
          for (const w of preds.get(u).concat(succs.get(u))) if (!comp.has(w)) { comp.set(w, nc); stack.push(w); }
        }
        nc++;
      }
      const layer = new Map(), indeg = new Map(ids.map((k) => [k, preds.get(k).length]));
      const ready = ids.filter((k) => indeg.get(k) === 0);
      const topo = [];
      for (const k of ready) layer.set(k, 0);
      while (ready.length) {
        const u = ready.shift();
        topo.push(u);
        for (const w of succs.get(u)) {
          layer.set(w, Math.max(layer.get(w) || 0, layer.get(u) + 1));
          indeg.set(w, indeg.get(w) - 1);
          if (indeg.get(w) === 0) ready.push(w);
        }
      }
      for (const k of ids) if (!layer.has(k)) layer.set(k, 0);  // a cycle: should not happen
      // then as late as their successors allow: inputs sit just before what
      // uses them, and edges stay short
      for (const k of topo.reverse()) {
        const next = succs.get(k).map((w) => layer.get(w));
        if (next.length) layer.set(k, Math.max(layer.get(k), Math.min(...next) - 1));
      }
      let maxLayer = 0;
      for (const v of layer.values()) maxLayer = Math.max(maxLayer, v);
      const widths = [];
      for (const k of ids) widths[layer.get(k)] = Math.max(widths[layer.get(k)] || 0, nodeW(g.nodes.get(k)));
      const xs = [];
      let acc = 12;
      for (let l = 0; l <= maxLayer; l++) { xs[l] = acc; acc += (widths[l] || 0) + GX; }
      const pos = new Map();
      let top = 10;
      for (let ci = 0; ci < nc; ci++) {
        const members = ids.filter((k) => comp.get(k) === ci);
        const cols = [];
        for (const k of members) (cols[layer.get(k)] = cols[layer.get(k)] || []).push(k);
        for (const col of cols) if (col) col.sort((a, b) => g.nodes.get(a).order - g.nodes.get(b).order);
        const rank = new Map();
        cols.forEach((col) => col && col.forEach((k, n) => rank.set(k, n)));
        for (let sweep = 0; sweep < 6; sweep++) {
          const order = sweep % 2 ? cols.slice().reverse() : cols;
          const near = sweep % 2 ? succs : preds;
          for (const col of order) {
            if (!col) continue;
            const bc = (k) => {
              const ns = near.get(k).filter((w) => rank.has(w));
              return ns.length ? ns.reduce((s, w) => s + rank.get(w), 0) / ns.length : rank.get(k);
            };
            const keys = new Map(col.map((k) => [k, bc(k)]));
            col.sort((a, b) => keys.get(a) - keys.get(b));
            col.forEach((k, n) => rank.set(k, n));
          }
        }
        const colH = (col) => col ? col.reduce((h, k) => h + nodeH(g.nodes.get(k)) + GY, 0) - GY : 0;
        const height = Math.max(...cols.filter(Boolean).map(colH));
        cols.forEach((col, li) => {
          if (!col) return;
          let y = top + (height - colH(col)) / 2;
          for (const k of col) {
            const n = g.nodes.get(k);
            pos.set(k, {x: xs[li] + (widths[li] - nodeW(n)) / 2, y});
            y += nodeH(n) + GY;
          }
        });
        top += height + 28;
      }
      return {pos, width: acc - GX + 12, height: top - 18};
    }

    function nodeH(n) { return n.kind === 'x' ? XH : VH; }
    function nodeW(n) { return n.kind === 'x' ? WX : WV; }

    function valueOf(n) {
      const c = CALLS[n.i];
      if (n.slot === 'r') return {role: 'result', name: c.name + ' result', v: c.out};
      const [role, v] = (c.in || [])[n.slot] || ['?', null];
      return {role, name: c.name + ' ' + role, v};
    }

    function draw(targets, title) {
      const box = root.querySelector('.lin-body');
      clear(box);
      root.querySelector('.lin-title').textContent = title;
      if (!targets.length) { box.append(el('p', {class: 'muted', text: 'No results to trace in this run.'})); return; }
      const g = graph(targets);
      const L = layout(g);
      const svg = sv('svg', {class: 'lin', width: L.width, height: L.height,
        viewBox: `0 0 ${L.width} ${L.height}`, role: 'img', 'aria-label': 'lineage graph'});
      svg.append(sv('defs', {}, sv('marker', {id: 'lin-arrow', viewBox: '0 0 8 8', refX: 7, refY: 4,
        markerWidth: 7, markerHeight: 7, orient: 'auto'}, sv('path', {d: 'M0,0 L8,4 L0,8 z', class: 'arrowhead'}))));
      for (const e of g.edges) {
        const a = L.pos.get(e.a), b = L.pos.get(e.b);
        if (!a || !b) continue;
        const na = g.nodes.get(e.a), nb = g.nodes.get(e.b);
        const x1 = a.x + nodeW(na), y1 = a.y + nodeH(na) / 2, x2 = b.x - 2, y2 = b.y + nodeH(nb) / 2;
        const mx = (x1 + x2) / 2;
        svg.append(sv('path', {class: 'ledge e-' + e.kind, d: `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`,
          'marker-end': 'url(#lin-arrow)'}, sv('title', {text: e.note || e.kind})));
      }
      for (const [key, n] of g.nodes) {
        const p = L.pos.get(key);
        const h = nodeH(n), w = nodeW(n);
        const gnode = sv('g', {class: 'lnode k-' + n.kind, transform: `translate(${p.x},${p.y})`});
        const chars = Math.floor((w - 14) / 6.6);
        if (n.kind === 'x') {
          const c = CALLS[n.i];
          gnode.setAttribute('data-i', n.i);
          gnode.setAttribute('data-tag', c.tag);
          gnode.classList.add('st-' + c.state);
          if (n.i === selected) gnode.classList.add('sel');
          gnode.append(sv('rect', {width: w, height: h, rx: 4, class: 'box'}),
            sv('text', {x: 8, y: 16, class: 'l1', text: shorten(c.name, chars)}),
            sv('text', {x: 8, y: 31, class: 'l2', text: shorten(agentName(c.callee) + ' · ' +
              fmtDur(callDur(c)), chars + 3)}),
            sv('title', {text: c.name + ' on ' + agentName(c.callee) + ' (' + STATE_LABEL[c.state] + ')\n' + c.tag}));
        } else if (n.kind === 'v') {
          const {role, name, v} = valueOf(n);
          const pv = v ? (v.p !== undefined ? v.p : '<' + (v.t || 'value') + '>') : '?';
          gnode.setAttribute('data-i', n.i);
          gnode.append(sv('rect', {width: w, height: h, rx: h / 2, class: 'box'}),
            sv('text', {x: 12, y: 14, class: 'l2', text: shorten(role, chars)}),
            sv('text', {x: 12, y: 28, class: 'l1 mono', text: shorten(pv, chars - 1)}),
            sv('title', {text: name + ' = ' + pv + (v && v.h ? '\nsha256 ' + v.h : '') + (v && v.t ? '\ntype ' + v.t : '')}));
        } else {
          gnode.append(sv('rect', {width: w, height: h, rx: 6, class: 'box'}),
            sv('text', {x: 10, y: 21, class: 'l2', text: shorten(n.text, chars)}));
        }
        svg.append(gnode);
      }
      svg.addEventListener('click', (ev) => {
        const t = ev.target.closest('[data-i]');
        if (t) select(Number(t.getAttribute('data-i')), {from: 'lineage', reveal: true});
      });
      const scroller = el('div', {class: 'lin-scroll'}, svg);
      box.append(scroller);
      // shrink a little to fit; a larger picture scrolls to the final results
      const fit = Math.min(1, (scroller.clientWidth - 4) / L.width);
      const scale = fit >= 0.72 ? fit : 1;
      if (scale < 1) {
        svg.setAttribute('width', Math.floor(L.width * scale));
        svg.setAttribute('height', Math.floor(L.height * scale));
      }
      const first = L.pos.get(g.first);
      if (first) {
        scroller.scrollLeft = Math.max(0, (first.x + WX) * scale - scroller.clientWidth + 24);
        scroller.scrollTop = Math.max(0, (first.y + XH / 2) * scale - scroller.clientHeight / 2);
      }
      if (g.cut) {
        box.append(el('p', {class: 'muted', text: 'Drawn up to ' + MAX_NODES + ' nodes; ' +
          plural(g.cut, 'more node') + ' left out. Pick an action to see its own lineage.'}));
      }
    }

    function build() {
      root = clear(document.getElementById('lineage'));
      root.append(heading('Lineage',
        el('span', {class: 'lin-title count'}),
        el('button', {type: 'button', class: 'tool back', text: 'Final results', onclick: () => show(null)})));
      root.append(el('div', {class: 'legend'},
        el('span', {class: 'key'}, el('i', {class: 'swatch lin-v'}), 'value (argument or result)'),
        el('span', {class: 'key'}, el('i', {class: 'swatch lin-x'}), 'execution'),
        el('span', {class: 'key'}, el('i', {class: 'swatch e-der'}), 'same content: derived from'),
        el('span', {class: 'key'}, el('i', {class: 'swatch e-call'}), 'nested call'),
        el('span', {class: 'hint', text: 'arrows follow the data: value → used by → execution → generated → value'})));
      root.append(el('div', {class: 'lin-body'}));
      show(null);
    }

    function show(i) {
      if (i === null) {
        const names = [...new Set(D.final.map((k) => CALLS[k].name))];
        draw(D.final, !D.final.length ? '' : D.final.length === 1
          ? 'of the final result, of ' + names[0]
          : 'of the last ' + D.final.length + ' top-level results (' + names.join(', ') + ')');
      } else {
        draw([i], 'of ' + CALLS[i].name + ' (' + CALLS[i].tag.slice(0, 8) + ')');
      }
    }

    function mark(i) {
      if (!root) return;
      for (const n of root.querySelectorAll('.lnode.sel')) n.classList.remove('sel');
      for (const n of root.querySelectorAll('.lnode.k-x')) if (Number(n.getAttribute('data-i')) === i) n.classList.add('sel');
    }

    return {build, show, mark};
  })();

  // ================================================================ actions table

  function drawActions() {
    const root = clear(document.getElementById('actions'));
    root.append(heading('Actions by name', el('span', {class: 'count',
      text: 'every call in the run' + (D.sample ? ', sampled or not' : '')})));
    const head = ['action', 'calls', 'completed', 'failed', 'cancelled', 'not ended', 'total time', 'mean', 'max'];
    const table = el('table', {class: 'by-name'},
      el('thead', {}, el('tr', {}, head.map((h, n) => el('th', {class: n ? 'num' : '', text: h})))));
    const tbody = el('tbody');
    for (const r of D.by_name) {
      tbody.append(el('tr', {},
        el('td', {text: r[0]}), el('td', {class: 'num', text: fmtInt(r[1])}),
        STATES.map((s, n) => el('td', {class: 'num' + (r[2 + n] ? ' st-text-' + s : ' zero'), text: fmtInt(r[2 + n])})),
        el('td', {class: 'num', text: fmtDur(r[6])}), el('td', {class: 'num', text: fmtDur(r[7])}),
        el('td', {class: 'num', text: fmtDur(r[8])})));
    }
    table.append(tbody);
    root.append(table);
  }

  // ================================================================ details pane

  function valueRows(items, c) {
    const box = el('div', {class: 'values'});
    for (const [name, v, k] of items) {
      const derived = k === undefined ? [] : (c.der || []).filter((d) => d[0] === k);
      const flags = v && v.f ? v.f : [];
      box.append(el('div', {class: 'val'},
        el('div', {class: 'vhead'}, el('span', {class: 'vname', text: name}),
          el('span', {class: 'vtype', text: v && v.t ? v.t : ''}),
          v && v.n !== undefined ? el('span', {class: 'muted', text: fmtBytes(v.n)}) : null,
          flags.map((f) => el('span', {class: 'flag f-' + f, text: f}))),
        el('pre', {class: 'preview', text: v && v.p !== undefined ? v.p :
          v && flags.includes('capped') ? '(over the size cap: type, size and hash only)' : '(no preview)'}),
        v && v.h ? el('div', {class: 'hash', title: v.h, text: 'sha256 ' + v.h.slice(0, 16) + '…'}) : null,
        derived.length ? el('div', {class: 'derived'}, 'same content as the result of ',
          derived.map(([, src, note], n) => [n ? ', ' : '',
            src >= 0 ? callLink(src) : el('span', {class: 'muted', text: 'a call not in this report'}),
            note ? el('span', {class: 'muted', text: ' (' + memberNote(note, c.name) + ')'}) : null])) : null));
    }
    return box;
  }

  /** "summarize arg0[1] = square result" as "arg0[1]". */
  function memberNote(note, name) {
    const left = String(note).split(' = ')[0];
    return left.startsWith(name + ' ') ? left.slice(name.length + 1) : left;
  }

  function sideBlock(title, side, extra) {
    if (!side) return el('div', {class: 'side missing'}, el('h4', {text: title}),
      el('p', {class: 'muted', text: 'not journalled: the process of this side wrote no journal'}));
    const dl = el('dl');
    const row = (k, v) => { if (v !== null && v !== undefined && v !== '') dl.append(el('dt', {text: k}), el('dd', {text: v})); };
    row('started', side[6] === false ? 'not journalled (drawn from its end)'
      : fmtClock(side[0]) + '  (' + fmtRel(side[0]) + ')');
    row('ended', side[3] ? fmtClock(side[1]) + '  (' + fmtRel(side[1]) + ')' : 'never (still open when the journals end)');
    row('took', side[6] === false ? 'unknown' : fmtDur(side[1] - side[0]) + (side[3] ? '' : ' so far'));
    if (side[7]) row('clock', 'suspect: a time outside the run\'s journals, drawn at the edge of the run');
    for (const [k, v] of extra || []) row(k, v);
    return el('div', {class: 'side'}, el('h4', {text: title}), dl);
  }

  function drawDetails(i) {
    const root = clear(document.getElementById('details'));
    if (i < 0) {
      root.append(el('h2', {text: 'Details'}),
        el('p', {class: 'muted', text: 'Click a bar in the timeline, a call in the tree, a failure or a node of the lineage to see that action here.'}));
      return;
    }
    const c = CALLS[i];
    root.setAttribute('data-tag', c.tag);
    root.append(el('div', {class: 'dhead'}, el('h2', {text: c.name}), badge(c.state)),
      el('div', {class: 'tag', title: 'action tag'}, el('code', {class: 'tagtext', text: c.tag})));
    root.append(el('div', {class: 'tools'},
      el('button', {type: 'button', class: 'tool', text: 'Show in timeline', onclick: () => {
        Timeline.focus(i); document.getElementById('timeline').scrollIntoView({behavior: 'smooth'}); }}),
      el('button', {type: 'button', class: 'tool', text: 'Lineage', onclick: () => {
        Lineage.show(i); document.getElementById('lineage').scrollIntoView({behavior: 'smooth'}); }}),
      c.parent !== undefined ? el('button', {type: 'button', class: 'tool', text: 'Parent call',
        onclick: () => select(c.parent, {reveal: true})}) : null));
    const who = el('dl', {class: 'who'});
    const row = (k, ...v) => who.append(el('dt', {text: k}), el('dd', {}, v));
    row('agent', agentName(c.callee), agentClass(c.callee) ? el('span', {class: 'muted', text: ' ' + agentClass(c.callee)}) : null);
    row('caller', agentName(c.caller));
    row('called from', c.parent !== undefined ? callLink(c.parent, CALLS[c.parent].name + ' (' + CALLS[c.parent].tag.slice(0, 8) + ')')
      : el('span', {class: 'muted', text: 'top level'}));
    if (c.nc) row('calls made', String(c.nc) + (KIDS[i].length < c.nc ? ' (' + KIDS[i].length + ' in this report)' : ''));
    if (c.rq && c.ex) {
      row('delivery', fmtDur(c.ex[0] - c.rq[0]) + ' from request to execution (clocks of two processes)');
    }
    root.append(who);
    if (c.err) {
      root.append(el('div', {class: 'error'},
        el('div', {}, el('span', {class: 'etype', text: c.err.type || 'error'}),
          el('span', {class: 'emsg', text: c.err.message ? ': ' + c.err.message : ''})),
        c.err.traceback ? el('details', {open: true}, el('summary', {text: 'Traceback'}),
          el('pre', {class: 'tb', text: c.err.traceback})) : null));
    } else if (c.state === 'failed') {
      root.append(el('p', {class: 'muted', text: 'Failed on the caller side; no error was journalled by the agent side.'}));
    }
    const cpu = c.cpu || {};
    root.append(el('div', {class: 'sides'},
      sideBlock('Request (caller side)', c.rq, [['host:pid', c.rq ? procLabel(c.rq[2]) : null]]),
      sideBlock('Execution (agent side)', c.ex, [
        ['host:pid', c.ex ? procLabel(c.ex[2]) : null],
        ['thread', c.thread],
        ['CPU', cpu.cpu !== undefined ? fmtDur(cpu.cpu) + ' process' + (cpu.thread_cpu !== undefined ? ', ' + fmtDur(cpu.thread_cpu) + ' this thread' : '') : null],
        ['peak RSS', cpu.maxrss !== undefined ? fmtBytes(cpu.maxrss) : null]])));
    root.append(el('h3', {text: 'Arguments'}));
    if (c.in && c.in.length) root.append(valueRows(c.in.map(([n, v], k) => [n, v, k]), c));
    else root.append(el('p', {class: 'muted', text: c.rq ? 'none' : 'unknown: the caller side was not journalled'}));
    root.append(el('h3', {text: 'Result'}));
    if (c.out) root.append(valueRows([['result', c.out]], c));
    else root.append(el('p', {class: 'muted', text: c.state === 'completed' ? 'not journalled' : 'none (' + STATE_LABEL[c.state] + ')'}));
    root.append(el('h3', {text: 'Log lines, output and warnings'}));
    if ((c.logs && c.logs.length) || c.logs_cut) root.append(logList(c));
    else root.append(el('p', {class: 'muted', text: 'none captured'}));
  }

  // ================================================================ start

  function start() {
    drawSummary();
    drawFailures();
    if (CALLS.length) {
      Timeline.build();
      Tree.build();
      Lineage.build();
    } else {
      for (const id of ['timeline', 'tree', 'lineage']) {
        const s = document.getElementById(id);
        s.append(el('p', {class: 'muted', text: 'This run has no actions.'}));
      }
    }
    drawActions();
    drawDetails(-1);
    listeners.push((i, opts) => {
      drawDetails(i);
      if (!CALLS.length) return;
      Timeline.highlight(i);
      if (opts.from !== 'timeline' && opts.reveal) Timeline.focus(i);
      Tree.reveal(i);
      Lineage.mark(i);
    });
    document.body.setAttribute('data-ready', '1');
  }

  start();
})();
