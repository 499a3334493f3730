/* IQB report: map, trends, use cases, drill-down and provenance from data/*.js.
 * Data arrive as scripts calling IQB.summary(...) and IQB.drill(...): a page opened
 * from file:// may not fetch JSON, and nothing here touches the network.
 *
 * Safety: every value from the data (codes, names, periods, numbers) reaches the page
 * as text: the DOM is built with createElement / textContent / setAttribute, never from
 * HTML strings; the charts' tooltips, the one place the charting library takes HTML,
 * escape every value (esc). Names are shortened for display, whole on hover.
 *
 * Scores: the page computes them itself (score()), exactly as the score macro of the
 * dbt project does (dbt_project/macros/iqb_scores.sql, upstream's calculator), at any of
 * the nine percentiles and with any thresholds and weights (the what-if panel). */
(function () {
  'use strict';

  var IQB = window.IQB = { data: null, drills: {}, charts: {} };
  var PERCENTILES = [1, 5, 10, 25, 50, 75, 90, 95, 99];
  var LEVELS = ['subdivision1', 'city', 'country_asn'];
  var S = { period: null, country: null, level: 'subdivision1', pct: 95, place: null, compare: [],
            cfg: null, sort: { ranking: ['iqb_score', -1], drill: ['download_sample_count', -1] } };
  var cfgVersion = 0;

  // requirement -> metric, unit, comparison that passes; in the score macro's order
  var REQ_ORDER = ['download_throughput_mbps', 'upload_throughput_mbps', 'latency_ms', 'packet_loss'];
  var REQUIREMENTS = {
    download_throughput_mbps: { metric: 'download', op: '>' },
    upload_throughput_mbps: { metric: 'upload', op: '>' },
    latency_ms: { metric: 'latency', op: '<' },
    packet_loss: { metric: 'loss', op: '<' }
  };
  var METRICS = ['download', 'upload', 'latency', 'loss'];
  var METRIC_NAMES = { download: 'Download', upload: 'Upload', latency: 'Latency', loss: 'Loss' };
  // Loss is a ratio (0..1) here as in the marts, the seeds and the CLI, never a percentage.
  var UNITS = { download: 'Mbit/s', upload: 'Mbit/s', latency: 'ms', loss: 'ratio 0..1' };
  var LEVEL_NAMES = { country: ['country', 'countries', 'quality_by_country'],
                      subdivision1: ['subdivision', 'subdivisions', 'quality_by_subdivision1'],
                      city: ['city', 'cities', 'quality_by_city'],
                      country_asn: ['network', 'networks (ASNs)', 'quality_by_country_asn'] };
  var NAME_MAX = 60;  // characters of a name shown; the whole name is on hover

  function useCaseName(id) {
    var words = String(id).replace(/_/g, ' ');
    return words.charAt(0).toUpperCase() + words.slice(1);
  }

  // ---- labels: the polarity convention is named wherever a percentile is shown ----------
  function pctNote(metric, p) {
    if (p === 50) return 'median';
    var best = 100 - p;
    if (metric === 'latency' || metric === 'loss') {
      return p > 50 ? 'best-served ' + best + '%, the low end' : 'worst-served ' + p + '%, the high end';
    }
    return p > 50 ? 'best-served ' + best + '%, the high end' : 'worst-served ' + p + '%, the low end';
  }
  function better(metric) {
    return (metric === 'latency' || metric === 'loss') ? '\u2193 lower is better' : '\u2191 higher is better';
  }

  // ---- formatting -------------------------------------------------------------------------
  function fmt(v, metric) {
    if (v === null || v === undefined || (typeof v === 'number' && isNaN(v))) return '\u2013';
    if (typeof v !== 'number') return String(v);
    if (metric === 'score') return v.toFixed(3);
    if (metric === 'count') return Math.round(v).toLocaleString('en-US');
    var a = Math.abs(v);
    if (a === 0) return '0';
    if (a >= 100) return v.toFixed(0);
    if (a >= 10) return v.toFixed(1);
    if (a >= 1) return v.toFixed(2);
    return v.toPrecision(2);
  }
  // A value beside its threshold, with as many digits as it takes not to look equal to it
  // when it is not: 25.0066 against "> 25" shows 25.01, never 25.0.
  function fmtVs(v, t) {
    var s = fmt(v, 'value');
    if (v === t) return String(v);
    for (var digits = 3; digits <= 17 && Number(s) === t; digits++) s = String(Number(v.toPrecision(digits)));
    if (Number(s) === t) s = String(v);
    return s;
  }
  function esc(s) {  // for the charting library's HTML tooltips only
    return String(s === null || s === undefined ? '' : s).replace(/[&<>"']/g, function (c) {
      return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c];
    });
  }
  function short(s, n) {
    s = String(s === null || s === undefined ? '' : s);
    n = n || NAME_MAX;
    return s.length > n ? s.slice(0, n - 1) + '\u2026' : s;
  }

  // ---- DOM, built from nodes: values are text, never markup ----------------------------------
  function h(tag, attrs) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        var v = attrs[k];
        if (v === null || v === undefined || v === false) return;
        if (k === 'text') node.textContent = String(v);
        else if (k === 'on') Object.keys(v).forEach(function (ev) { node.addEventListener(ev, v[ev]); });
        else node.setAttribute(k, String(v));
      });
    }
    for (var i = 2; i < arguments.length; i++) add(node, arguments[i]);
    return node;
  }
  function add(node, child) {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) { child.forEach(function (c) { add(node, c); }); return; }
    node.appendChild(typeof child === 'object' ? child : document.createTextNode(String(child)));
  }
  function fill(node, children) {
    while (node.firstChild) node.removeChild(node.firstChild);
    add(node, children);
    return node;
  }
  function nameNode(s, cls, n) {  // a name shortened for display, whole on hover
    var full = String(s === null || s === undefined ? '' : s);
    n = n || NAME_MAX;
    if (full.length <= n && !cls) return document.createTextNode(full);
    return h('span', { 'class': 'nm' + (cls ? ' ' + cls : ''), title: full.length > n ? full : null }, short(full, n));
  }
  function codeNode(s) { return nameNode(s, null, 12); }
  function $(sel) { return document.querySelector(sel); }
  function $all(sel) { return Array.prototype.slice.call(document.querySelectorAll(sel)); }
  function setText(sel, text) { $all(sel).forEach(function (el) { el.textContent = text; }); }
  // A data table: cols/rows as JSON, then the percentile values of each row packed as
  // little-endian float64 (base64; NaN for NULL): exact, and smaller than JSON numbers.
  function objects(table) {
    var vals = table.values, view = null, n = vals ? vals.cols.length : 0;
    if (vals && vals.f64) {
      var bin = atob(vals.f64), bytes = new Uint8Array(bin.length);
      for (var b = 0; b < bin.length; b++) bytes[b] = bin.charCodeAt(b);
      view = new DataView(bytes.buffer);
    }
    return table.rows.map(function (r, k) {
      var o = {};
      table.cols.forEach(function (c, i) { o[c] = r[i]; });
      for (var j = 0; j < n; j++) {
        var v = view.getFloat64((k * n + j) * 8, true);
        o[vals.cols[j]] = isFinite(v) ? v : null;  // NULL, NaN, infinite: no value
      }
      return o;
    });
  }
  function badge(cls, text, title) { return h('span', { 'class': 'badge ' + cls, title: title }, text); }
  function kindBadge(p) {
    return p.synthetic ? badge('synthetic', 'synthetic', p.evidence) : badge('real', 'real', p.evidence);
  }

  // ---- the score: upstream's calculator, as the dbt macro computes it ------------------------
  function defaultConfig() {
    var d = IQB.data, cfg = { uc: {}, req: {} };
    d.use_cases.forEach(function (u) { cfg.uc[u.use_case] = u.weight; cfg.req[u.use_case] = {}; });
    d.requirements.forEach(function (q) {
      (cfg.req[q.use_case] = cfg.req[q.use_case] || {})[q.requirement] = { w: q.weight, t: q.threshold };
    });
    return cfg;
  }
  function useCases() { return IQB.data.use_cases.map(function (u) { return u.use_case; }); }
  function reqOf(cfg, u, k) {
    // a requirement missing from the seed has weight 0 (and no threshold)
    return (cfg.req[u] || {})[k] || { w: 0, t: null };
  }
  function statusOf(r, iqb) {
    if (!r.is_known_country) return 'unknown_country';
    if (r.has_invalid_values) return 'invalid_values';
    if (!r.meets_min_samples) return 'too_few_samples';
    if (iqb === null) return 'missing_values';
    return 'scored';
  }
  // One row at percentile pct with config cfg: {uc: {use_case: score|null}, iqb, status}.
  // Strict comparisons; a requirement of weight 0 counts 0 and needs no value; a missing
  // value a weighted requirement needs makes its use case NULL, and so the IQB score;
  // weighted means divide by the weights' sum, NULL when it is 0; rows too thin, with
  // invalid values or a code that is not a country are not scored.
  function score(r, pct, cfg) {
    var eligible = !!(r.meets_min_samples && r.is_known_country && !r.has_invalid_values);
    var uc = {}, names = useCases();
    names.forEach(function (u) {
      if (!eligible) { uc[u] = null; return; }
      var num = 0, den = 0, isNull = false;
      REQ_ORDER.forEach(function (k, i) {
        var q = reqOf(cfg, u, k), spec = REQUIREMENTS[k], term;
        if (q.w === 0) term = 0;
        else {
          var v = r[spec.metric + '_p' + pct];
          if (v === null || v === undefined || q.t === null || q.t === undefined) { isNull = true; term = 0; }
          else term = q.w * ((spec.op === '>' ? v > q.t : v < q.t) ? 1 : 0);
        }
        num = i === 0 ? term : num + term;
        den = i === 0 ? q.w : den + q.w;
      });
      uc[u] = isNull || den === 0 ? null : num / den;
    });
    var num = 0, den = 0, isNull = false;
    names.forEach(function (u, i) {
      var w = cfg.uc[u] || 0, term;
      if (w === 0) term = 0;
      else if (uc[u] === null) { isNull = true; term = 0; }
      else term = w * uc[u];
      num = i === 0 ? term : num + term;
      den = i === 0 ? w : den + w;
    });
    var iqb = isNull || den === 0 ? null : num / den;
    return { uc: uc, iqb: iqb, status: statusOf(r, iqb) };
  }
  function scoreOf(r) {  // at the page's percentile and config, cached on the row
    var key = S.pct + '|' + cfgVersion;
    if (r._key !== key) { r._score = score(r, S.pct, S.cfg); r._key = key; }
    return r._score;
  }
  IQB.score = score;
  IQB.defaultConfig = function () { return defaultConfig(); };
  IQB.config = function () { return JSON.parse(JSON.stringify(S.cfg)); };  // the what-if's
  IQB.state = function () { return { period: S.period, country: S.country, level: S.level, pct: S.pct, place: S.place }; };
  // For a benchmark: recompute every country row's score at percentile pct (default 50)
  // with the build's config, as a change of the percentile selector does; returns ms.
  IQB.benchRescore = function (pct) {
    var cfg = defaultConfig(), t0 = performance.now(), n = 0;
    IQB.countries.forEach(function (r) { if (score(r, pct || 50, cfg).iqb !== null) n++; });
    var ms = performance.now() - t0;
    IQB.benchLast = { ms: ms, rows: IQB.countries.length, scored: n };
    return ms;
  };

  // ---- periods, countries, places ---------------------------------------------------------------
  function period() { return IQB.data.periods.find(function (p) { return p.id === S.period; }); }
  function periodIndex() { return IQB.data.periods.indexOf(period()); }
  function countriesIn(idx) {  // countries only: other codes stay in the data, flagged
    return IQB.countries.filter(function (r) { return r.period === idx && r.is_known_country; });
  }
  function notCountriesIn(idx) {
    return IQB.countries.filter(function (r) { return r.period === idx && !r.is_known_country; });
  }
  function countryRow(cc, idx) {
    return IQB.countries.find(function (r) { return r.period === idx && r.country_code === cc; });
  }
  function countryName(cc) {
    var r = IQB.countries.find(function (x) { return x.country_code === cc && x.country_name; });
    return r ? r.country_name : cc;
  }
  function placeKey(level, r) {
    return level === 'country' ? 'country|' + r.country_code : [level, r.country_code, r.code, r.label].join('|');
  }
  function parseKey(key) {
    var parts = String(key).split('|');
    if (parts[0] === 'country') return { level: 'country', cc: parts.slice(1).join('|'), key: key };
    return { level: parts[0], cc: parts[1], key: key };
  }
  function placeRow(key, idx) {
    var p = parseKey(key);
    if (p.level === 'country') return countryRow(p.cc, idx) || null;
    var drill = IQB.drills[IQB.data.periods[idx].id];
    return drill && drill.byKey[p.level] ? drill.byKey[p.level][key] || null : null;
  }
  function placeName(key) {
    var p = parseKey(key);
    if (p.level === 'country') return countryName(p.cc) + ' (' + p.cc + ')';
    for (var i = IQB.data.periods.length - 1; i >= 0; i--) {
      var r = placeRow(key, i);
      if (r) return r.label + ' (' + r.code + ', ' + r.country_code + ')';
    }
    return key;
  }

  // ---- entry points called by the data scripts ----------------------------------------------
  var drillWaiting = {};
  IQB.summary = function (data) {
    IQB.data = data;
    IQB.countries = objects(data.countries);
    init();
  };
  IQB.drill = function (id, data) {
    data.objects = {};
    data.byKey = {};
    Object.keys(data.levels).forEach(function (lvl) {
      data.objects[lvl] = objects(data.levels[lvl]);
      data.byKey[lvl] = {};
      data.objects[lvl].forEach(function (r) { r.key = placeKey(lvl, r); data.byKey[lvl][r.key] = r; });
    });
    IQB.drills[id] = data;
    (drillWaiting[id] || []).forEach(function (cb) { cb(); });
    delete drillWaiting[id];
  };
  function loadDrill(id, cb) {
    if (IQB.drills[id]) { cb(); return; }
    if (drillWaiting[id]) { drillWaiting[id].push(cb); return; }
    drillWaiting[id] = [cb];
    var src = IQB.data.drill_files[id];
    var s = document.createElement('script');
    s.src = IQB_URL(src);
    s.onerror = function () {
      $('#drill-caption').textContent = 'Could not load ' + src + ' (is the report folder complete?)';
    };
    document.body.appendChild(s);
  }
  function loadAllDrills(cb) {
    var ids = IQB.data.periods.map(function (p) { return p.id; }), left = ids.length;
    ids.forEach(function (id) { loadDrill(id, function () { if (--left === 0) cb(); }); });
  }
  IQB.loadAllDrills = loadAllDrills;

  // ---- the link keeps every setting ------------------------------------------------------------
  function readHash() {
    var out = {};
    location.hash.replace(/^#/, '').split('&').forEach(function (kv) {
      var i = kv.indexOf('=');
      if (i > 0) {
        try { out[decodeURIComponent(kv.slice(0, i))] = decodeURIComponent(kv.slice(i + 1)); } catch (e) { /* a bad link: ignored */ }
      }
    });
    return out;
  }
  function writeHash() {
    var parts = [['period', S.period], ['country', S.country], ['level', S.level], ['pct', S.pct]];
    if (S.place) parts.push(['place', S.place]);
    if (S.compare.length) parts.push(['cmp', S.compare.map(encodeURIComponent).join(',')]);
    var base = defaultConfig();
    useCases().forEach(function (u) {
      if (S.cfg.uc[u] !== base.uc[u]) parts.push(['w.' + u, S.cfg.uc[u]]);
      REQ_ORDER.forEach(function (k) {
        var q = reqOf(S.cfg, u, k), b = reqOf(base, u, k);
        if (q.w !== b.w) parts.push(['w.' + u + '.' + k, q.w]);
        if (q.t !== b.t) parts.push(['t.' + u + '.' + k, q.t]);
      });
    });
    history.replaceState(null, '', '#' + parts.map(function (p) {
      return encodeURIComponent(p[0]) + '=' + encodeURIComponent(p[1]);
    }).join('&'));
  }
  function configFromHash(hash) {
    var cfg = defaultConfig();
    Object.keys(hash).forEach(function (k) {
      var m = k.match(/^([wt])\.([^.]+)(?:\.([^.]+))?$/), v = Number(hash[k]);
      if (!m || hash[k] === '' || !isFinite(v) || cfg.uc[m[2]] === undefined) return;
      if (!m[3]) { if (m[1] === 'w' && v >= 0) cfg.uc[m[2]] = v; return; }
      if (!REQUIREMENTS[m[3]]) return;
      var q = cfg.req[m[2]][m[3]] = cfg.req[m[2]][m[3]] || { w: 0, t: null };
      if (m[1] === 'w' && v >= 0) q.w = v;
      if (m[1] === 't') q.t = v;
    });
    return cfg;
  }

  function init() {
    var d = IQB.data, h0 = readHash();
    var periods = d.periods;
    S.period = periods.some(function (p) { return p.id === h0.period; }) ? h0.period : periods[periods.length - 1].id;
    S.pct = PERCENTILES.indexOf(Number(h0.pct)) >= 0 ? Number(h0.pct) : d.score_percentile;
    S.cfg = configFromHash(h0);
    var inPeriod = countriesIn(periodIndex());
    if (h0.country && IQB.countries.some(function (r) { return r.country_code === h0.country && r.is_known_country; })) {
      S.country = h0.country;
    } else if (inPeriod.length) {  // the country with the most tests: a researcher's first look
      S.country = inPeriod.slice().sort(function (a, b) {
        return (b.download_sample_count || 0) - (a.download_sample_count || 0);
      })[0].country_code;
    }
    if (h0.level && LEVELS.indexOf(h0.level) >= 0) S.level = h0.level;
    if (h0.place && parseKey(h0.place).cc === S.country) S.place = h0.place;
    if (h0.cmp) S.compare = h0.cmp.split(',').map(function (k) { try { return decodeURIComponent(k); } catch (e) { return null; } })
      .filter(function (k) { return k; });

    var sel = $('#period');
    fill(sel, periods.map(function (p) {
      return h('option', { value: p.id }, p.label + (p.synthetic ? ' (synthetic)' : ' (real)'));
    }));
    sel.value = S.period;
    sel.addEventListener('change', function () { S.period = sel.value; renderAll(); });
    $('#country').addEventListener('change', function () { selectCountry($('#country').value); });
    var pctSel = $('#pct');
    fill(pctSel, PERCENTILES.map(function (p) {
      return h('option', { value: p }, 'p' + p + (p === d.score_percentile ? ' (build)' : ''));
    }));
    pctSel.value = String(S.pct);
    pctSel.addEventListener('change', function () { S.pct = Number(pctSel.value); rescore(); });
    $all('.tabs button').forEach(function (b) {
      b.addEventListener('click', function () { S.level = b.dataset.level; renderDrill(); writeHash(); });
    });
    var synthetic = periods.filter(function (p) { return p.synthetic; });
    if (synthetic.length) {
      var b = $('#synthetic-banner');
      b.hidden = false;
      b.textContent = 'Synthetic data: ' + synthetic.length + ' of ' + periods.length +
        ' period(s) (' + synthetic.map(function (p) { return p.label; }).join(', ') +
        ') come from the demo\u2019s synthetic sample (iqb sample), not from measurements. ' +
        'Country figures are drawn to resemble M-Lab\u2019s real October 2024 table; every region, ' +
        'city and network is invented. Do not cite them.';
    }
    renderWhatIf();
    renderAll();
    window.addEventListener('resize', function () {
      Object.keys(IQB.charts).forEach(function (k) { IQB.charts[k].resize(); });
    });
  }

  function selectCountry(cc) {
    S.country = cc;
    S.place = null;
    renderAll();
  }
  function selectPlace(key) {
    S.place = key;
    renderCountry();
    renderDrill();
    renderRegionMap();
    writeHash();
  }
  function rescore() {  // a new percentile or config: every score on the page, at once
    cfgVersion++;
    renderAll();
  }

  function renderAll() {
    var p = period();
    setText('.period-label', p.label);
    $all('.kind-badge').forEach(function (el) { fill(el, kindBadge(p)); });
    setText('.min-samples', p.min_sample_count === null ? '?' : p.min_sample_count);
    setText('.score-pct', 'p' + S.pct);
    renderCountrySelect();
    renderMap();
    renderRanking();
    renderNotCountries();
    renderCountry();
    loadDrill(S.period, function () { renderDrill(); renderRegionMap(); renderCountry(); });
    renderProvenance();
    writeHash();
  }

  function renderCountrySelect() {
    var rows = countriesIn(periodIndex()).slice().sort(function (a, b) {
      return String(a.country_name || a.country_code).localeCompare(String(b.country_name || b.country_code));
    });
    if (!rows.some(function (r) { return r.country_code === S.country; }) && rows.length) {
      S.country = rows[0].country_code;
      S.place = null;
    }
    fill($('#country'), rows.map(function (r) {
      return h('option', { value: r.country_code }, short((r.country_name || r.country_code) + ' (' + r.country_code + ')'));
    }));
    $('#country').value = S.country;
  }

  // ---- maps -------------------------------------------------------------------------------------
  var THIN_STYLE = { areaColor: '#b9b9b9', decal: { symbol: 'rect', symbolSize: 1, color: 'rgba(255,255,255,0.85)',
                                                    dashArrayX: [1, 0], dashArrayY: [2, 3], rotation: -Math.PI / 4 } };
  var VISUAL = { min: 0, max: 1, left: 10, bottom: 10, text: ['IQB 1', '0'], calculable: false,
                 inRange: { color: ['#440154', '#3b528b', '#21918c', '#5ec962', '#fde725'] } };
  var TOOLBOX = { right: 8, top: 4, feature: { saveAsImage: { title: 'image', name: 'iqb-chart' } } };
  function mapItem(name, r, selected) {
    var s = scoreOf(r), thin = !r.meets_min_samples;
    var item = { name: name, value: s.iqb === null ? NaN : s.iqb, row: r, itemStyle: {} };
    if (thin) item.itemStyle = JSON.parse(JSON.stringify(THIN_STYLE));
    if (selected) { item.itemStyle.borderColor = '#d7191c'; item.itemStyle.borderWidth = 2; }
    return item;
  }
  function mapTooltip(p, label) {
    var r = p.data && p.data.row;
    if (!r) return esc(short(p.name)) + ': no data';
    var s = scoreOf(r), minN = period().min_sample_count;
    return '<b>' + esc(short(label(r))) + '</b><br>' +
      (s.iqb !== null ? 'IQB score ' + fmt(s.iqb, 'score') + ' at p' + S.pct
        : (s.status === 'too_few_samples' ? 'too few tests (< ' + esc(minN) + '): not scored' : 'not scored: ' + esc(s.status))) +
      '<br>tests: ' + fmt(r.download_sample_count, 'count') + ' down, ' + fmt(r.upload_sample_count, 'count') + ' up';
  }
  var worldRegistered = false;
  function renderMap() {
    var el = $('#map');
    if (!worldRegistered) {
      var geo = topojson.feature(window.IQB_WORLD, window.IQB_WORLD.objects.countries);
      geo.features = geo.features.filter(function (f) { return f.properties.name !== 'Antarctica'; });
      geo.features.forEach(unwrapAntimeridian);
      echarts.registerMap('world', geo);
      worldRegistered = true;
    }
    var chart = IQB.charts.map || (IQB.charts.map = echarts.init(el, null, { renderer: 'svg' }));
    var rows = countriesIn(periodIndex());
    IQB.mapData = rows.map(function (r) { return mapItem(r.country_code, r, r.country_code === S.country); });
    chart.setOption({
      animation: false,
      aria: { enabled: true },
      toolbox: TOOLBOX,
      tooltip: { trigger: 'item', formatter: function (p) {
        return mapTooltip(p, function (r) { return (r.country_name || r.country_code) + ' (' + r.country_code + ')'; });
      } },
      visualMap: VISUAL,
      series: [{
        type: 'map', map: 'world', nameProperty: 'cc', roam: true, selectedMode: false,
        itemStyle: { areaColor: '#ffffff', borderColor: '#8a96a3', borderWidth: 0.5 },
        emphasis: { label: { show: false }, itemStyle: { borderColor: '#000', borderWidth: 1.2 } },
        data: IQB.mapData
      }]
    }, { replaceMerge: ['series'] });  // new data, the reader's zoom and pan kept
    chart.off('click');
    chart.on('click', function (p) { if (p.data && p.data.row) selectCountry(p.data.row.country_code); });
    el.dataset.period = S.period;
    el.dataset.pct = S.pct;
    el.dataset.countries = rows.length;
    el.dataset.scored = rows.filter(function (r) { return scoreOf(r).iqb !== null; }).length;
    el.dataset.thin = rows.filter(function (r) { return !r.meets_min_samples; }).length;
  }

  // A ring that crosses the 180th meridian (Russia, Fiji) would be drawn across the whole
  // map on a flat projection: its western points move east of 180 instead.
  function unwrapAntimeridian(f) {
    var g = f.geometry;
    if (!g) return;
    var polys = g.type === 'Polygon' ? [g.coordinates] : (g.type === 'MultiPolygon' ? g.coordinates : []);
    polys.forEach(function (poly) {
      poly.forEach(function (ring) {
        var east = ring.some(function (c) { return c[0] > 160; });
        var west = ring.some(function (c) { return c[0] < -160; });
        if (east && west) ring.forEach(function (c) { if (c[0] < 0) c[0] += 360; });
      });
    });
  }

  // The region map: Natural Earth admin-1 boundaries (assets/admin1.js, loaded when first
  // needed), matched on the ISO 3166-2 code only; a code with no boundary is listed, never
  // guessed onto a shape.
  var admin1Registered = {}, admin1Loading = false;
  function renderRegionMap() {
    var el = $('#region-map'), note = $('#region-note');
    if (!window.IQB_ADMIN1) {
      if (!admin1Loading) {
        admin1Loading = true;
        var s = document.createElement('script');
        s.src = IQB_URL('assets/admin1.js');
        s.onload = renderRegionMap;
        document.body.appendChild(s);
      }
      return;
    }
    var drill = IQB.drills[S.period];
    if (!drill) return;
    var cc = S.country, name = 'admin1-' + cc;
    if (!admin1Registered[cc]) {
      var obj = window.IQB_ADMIN1.objects[Object.keys(window.IQB_ADMIN1.objects)[0]];
      var mine = { type: 'GeometryCollection', geometries: obj.geometries.filter(function (g) {
        return g.properties && g.properties.iso_a2 === cc;
      }) };
      var geo = topojson.feature(window.IQB_ADMIN1, mine);
      geo.features.forEach(unwrapAntimeridian);
      admin1Registered[cc] = { features: geo.features.length,
                               codes: geo.features.map(function (f) { return f.properties.iso_3166_2; }) };
      if (geo.features.length) echarts.registerMap(name, geo);
    }
    var known = admin1Registered[cc];
    var rows = drill.objects.subdivision1.filter(function (r) { return r.country_code === cc; });
    var missing = rows.filter(function (r) { return known.codes.indexOf(r.code) < 0; });
    el.dataset.country = cc;
    el.dataset.regions = rows.length - missing.length;
    el.dataset.missing = missing.length;
    var chart = IQB.charts.region;
    if (!known.features) {
      if (chart) { chart.dispose(); delete IQB.charts.region; }
      el.hidden = true;
      fill(note, 'No region boundaries for ' + short(countryName(cc)) + ' in Natural Earth\u2019s admin-1 data.');
      return;
    }
    el.hidden = false;
    chart = chart || (IQB.charts.region = echarts.init(el, null, { renderer: 'svg' }));
    var data = rows.filter(function (r) { return known.codes.indexOf(r.code) >= 0; }).map(function (r) {
      return mapItem(r.code, r, r.key === S.place);
    });
    chart.setOption({
      animation: false,
      aria: { enabled: true },
      toolbox: TOOLBOX,
      tooltip: { trigger: 'item', formatter: function (p) {
        return mapTooltip(p, function (r) { return r.label + ' (' + r.code + ')'; });
      } },
      visualMap: VISUAL,
      series: [{
        type: 'map', map: name, nameProperty: 'iso_3166_2', roam: true, selectedMode: false,
        itemStyle: { areaColor: '#ffffff', borderColor: '#8a96a3', borderWidth: 0.5 },
        emphasis: { label: { show: false }, itemStyle: { borderColor: '#000', borderWidth: 1.2 } },
        data: data
      }]
    }, true);
    chart.off('click');
    chart.on('click', function (p) {
      if (!(p.data && p.data.row)) return;
      S.level = 'subdivision1';
      selectPlace(p.data.row.key);
    });
    fill(note, missing.length ? [
      'No boundary for ' + missing.length + ' of ' + rows.length + ' subdivisions (their codes are not in ' +
      'Natural Earth\u2019s admin-1 data; not placed on the map): ',
      missing.map(function (r, i) { return [i ? ', ' : '', nameNode(r.label + ' (' + r.code + ')', 'missing-region')]; })
    ] : 'Every subdivision of the drill-down has a boundary.');
  }

  // ---- tables: sortable, downloadable as CSV ----------------------------------------------------
  function sortRows(rows, get, dir) {
    return rows.slice().sort(function (a, b) {
      var x = get(a), y = get(b);
      if (x === null || x === undefined) return 1;
      if (y === null || y === undefined) return -1;
      if (typeof x === 'string' || typeof y === 'string') return dir * String(x).localeCompare(String(y));
      return dir * (x - y);
    });
  }
  // cols: {key, head, note, cls, value(r) -> raw value, cell(r) -> node or text}
  function renderTable(table, cols, rows, sortName, opts) {
    opts = opts || {};
    var sort = sortName ? S.sort[sortName] : null;
    var byKey = {};
    cols.forEach(function (c) { byKey[c.key] = c; });
    if (sort && byKey[sort[0]]) {
      var col = byKey[sort[0]];
      rows = sortRows(rows, col.value || function (r) { return r[col.key]; }, sort[1]);
    }
    fill(table.querySelector('thead'), h('tr', null, cols.map(function (c) {
      var s = sort && sort[0] === c.key ? (sort[1] > 0 ? 'ascending' : 'descending') : 'none';
      return h('th', { 'data-key': c.key, 'aria-sort': sortName ? s : null, 'class': c.cls,
                       on: sortName ? { click: function () {
                         var cur = S.sort[sortName];
                         S.sort[sortName] = [c.key, cur[0] === c.key ? -cur[1] : (c.cls === 'name' ? 1 : -1)];
                         renderTable(table, cols, rows, sortName, opts);
                       } } : null }, c.head, c.note ? h('small', null, c.note) : null);
    })));
    fill(table.querySelector('tbody'), rows.map(function (r) {
      var tr = h('tr', { 'class': opts.rowClass ? opts.rowClass(r) : null }, cols.map(function (c) {
        var v = c.cell ? c.cell(r) : fmt(c.value ? c.value(r) : r[c.key], c.metric);
        return h('td', { 'class': c.cls }, v);
      }));
      if (opts.onRow) tr.addEventListener('click', function () { opts.onRow(r, tr); });
      if (opts.decorate) opts.decorate(r, tr);
      return tr;
    }));
    table.iqbCsv = function () {
      var csvCols = (opts.csvFirst || []).concat(cols);
      return [csvCols.map(function (c) { return c.csvHead || c.key; })].concat(rows.map(function (r) {
        return csvCols.map(function (c) { return c.value ? c.value(r) : r[c.key]; });
      }));
    };
  }
  function csvCell(v) {
    if (v === null || v === undefined) return '';
    var s = typeof v === 'number' ? String(v) : String(v);
    // a spreadsheet runs a cell that starts with = + - @ as a formula: data stay data
    if (typeof v !== 'number' && /^[=+\-@\t\r]/.test(s)) s = "'" + s;
    return /[",\n\r]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
  }
  function domCsv(table) {  // a table of text (provenance, breakdown headers): its cells
    return Array.prototype.map.call(table.querySelectorAll('tr'), function (tr) {
      return Array.prototype.map.call(tr.children, function (c) { return c.textContent.replace(/\s+/g, ' ').trim(); });
    });
  }
  function downloadCsv(table, name) {
    if (!table) return;
    var text = (table.iqbCsv ? table.iqbCsv() : domCsv(table)).map(function (row) { return row.map(csvCell).join(','); }).join('\r\n') + '\r\n';
    var url = URL.createObjectURL(new Blob([text], { type: 'text/csv' }));
    var a = h('a', { href: url, download: name + '.csv' });
    document.body.appendChild(a);
    a.click();
    document.body.removeChild(a);
    setTimeout(function () { URL.revokeObjectURL(url); }, 1000);
  }
  IQB.tableCsv = function (id) {
    var t = document.getElementById(id);
    return t ? (t.iqbCsv ? t.iqbCsv() : domCsv(t)) : null;
  };
  function csvButton(tableId, name) {
    return h('button', { 'class': 'csv', type: 'button', 'data-table': tableId,
                         on: { click: function () { downloadCsv(document.getElementById(tableId), name()); } } }, 'CSV');
  }

  function scoreCell(r) {
    var s = scoreOf(r);
    if (s.iqb !== null) return fmt(s.iqb, 'score');
    return h('span', { 'class': 'hint', title: s.status }, '\u2013');
  }
  function renderRanking() {
    var pct = S.pct;
    var cols = [
      { key: 'country_name', head: 'Country', cls: 'name', value: function (r) { return r.country_name || r.country_code; },
        cell: function (r) {
          return [nameNode(r.country_name || r.country_code), ' ', h('small', null, codeNode(r.country_code)),
                  r.meets_min_samples ? null : [' ', badge('thin', 'thin')]];
        } },
      { key: 'iqb_score', head: 'IQB', note: 'at p' + pct, value: function (r) { return scoreOf(r).iqb; }, cell: scoreCell },
      { key: 'download_p50', head: 'Down p50', note: 'Mbit/s', metric: 'download' },
      { key: 'download_sample_count', head: 'Tests', metric: 'count' }
    ];
    var table = $('#ranking');
    renderTable(table, cols, countriesIn(periodIndex()), 'ranking', {
      rowClass: function (r) { return r.meets_min_samples ? null : 'thin'; },
      onRow: function (r) { selectCountry(r.country_code); },
      csvFirst: [{ key: 'country_code' }],
      decorate: function (r, tr) { tr.iqbCc = r.country_code; }
    });
    fill($('#ranking-tools'), csvButton('ranking', function () { return 'iqb-countries-' + S.period + '-p' + S.pct; }));
    highlightRanking();
  }
  function highlightRanking() {
    $all('#ranking tbody tr').forEach(function (tr) { tr.classList.toggle('selected', tr.iqbCc === S.country); });
    $('#country').value = S.country;
  }
  function renderNotCountries() {
    var rows = notCountriesIn(periodIndex()), el = $('#not-countries');
    el.hidden = !rows.length;
    fill(el, rows.length ? [
      rows.length + ' row(s) of this period carry a code that is not a country (not in the ISO 3166-1 seed, nor the ' +
      'user-assigned XK): kept in the data, flagged is_known_country = false, never scored, counted or ranked here: ',
      rows.map(function (r, i) { return [i ? ', ' : '', h('code', null, nameNode(JSON.stringify(r.country_code)))]; })
    ] : null);
  }

  // ---- one place: KPIs, trends, use cases -----------------------------------------------------
  function currentPlaceKey() { return S.place || 'country|' + S.country; }
  function renderCountry() {
    var idx = periodIndex(), p = period();
    var key = currentPlaceKey(), pk = parseKey(key);
    var r = placeRow(key, idx);
    var name = countryName(S.country);
    fill($('#country-title'), [nameNode(name), ' (', codeNode(S.country), '), ' + p.label + ' ', kindBadge(p)]);
    setText('.country-name', short(name));
    fill($('#place-title'), pk.level === 'country' ? ['Country: ', nameNode(name)]
      : [useCaseName(LEVEL_NAMES[pk.level][0]) + ': ', nameNode(placeName(key)), ' ',
         h('button', { type: 'button', on: { click: function () { selectPlace(null); } } }, 'back to the country')]);
    var kpis = [];
    if (r) {
      var s = scoreOf(r);
      kpis.push(['IQB score at p' + S.pct, s.iqb !== null ? fmt(s.iqb, 'score') : 'not scored (' + s.status + ')']);
      kpis.push(['Download tests', fmt(r.download_sample_count, 'count')]);
      kpis.push(['Upload tests', fmt(r.upload_sample_count, 'count')]);
      kpis.push(['Download median', fmt(r.download_p50, 'download') + ' Mbit/s']);
      kpis.push(['Latency median', fmt(r.latency_p50, 'latency') + ' ms']);
    } else {
      kpis.push(['No data', 'for this period']);
    }
    fill($('#country-kpis'), kpis.map(function (k) { return h('div', { 'class': 'kpi' }, h('span', null, k[0]), h('b', null, k[1])); }));
    renderCompare();
    renderTrends();
    renderBreakdown(r, key);
  }

  // ---- trends: one place or several side by side ------------------------------------------------
  function trendPlaces() {
    var keys = [currentPlaceKey()];
    S.compare.forEach(function (k) { if (keys.indexOf(k) < 0) keys.push(k); });
    return keys;
  }
  function tooltipAxis(metric) {
    return function (params) {
      var list = Array.isArray(params) ? params : [params];
      return list.length ? esc(list[0].axisValueLabel) + '<br>' + list.map(function (p) {
        var v = p.value && typeof p.value === 'object' ? p.value.value : p.value;
        return esc(short(p.seriesName)) + ': ' + esc(fmt(v, metric));
      }).join('<br>') : '';
    };
  }
  function trendChart(id, title, metric, series) {
    var el = document.getElementById(id);
    var chart = IQB.charts[id] || (IQB.charts[id] = echarts.init(el, null, { renderer: 'svg' }));
    var labels = IQB.data.periods.map(function (p) { return p.label; });
    chart.setOption({
      animation: false,  // a report: drawn once, the same in a browser, a screenshot and print
      title: { text: title, subtext: metric === 'score' ? '\u2191 higher is better (0..1)'
                 : (metric === 'count' ? 'tests per period' : UNITS[metric] + ', ' + better(metric)),
               left: 6, top: 2, textStyle: { fontSize: 13 }, subtextStyle: { fontSize: 11 } },
      toolbox: TOOLBOX,
      tooltip: { trigger: 'axis', formatter: tooltipAxis(metric) },
      legend: { bottom: 0, textStyle: { fontSize: 11 }, itemHeight: 8, type: 'scroll',
                formatter: function (n) { return short(n, 40); }, tooltip: { show: false } },
      grid: { left: 48, right: 56, top: 62, bottom: 46 },
      xAxis: { type: 'category', data: labels, boundaryGap: labels.length < 3 },
      yAxis: { type: 'value', min: metric === 'score' ? 0 : null, max: metric === 'score' ? 1 : null,
               name: metric === 'count' ? '' : ((metric === 'latency' || metric === 'loss') ? '\u2193 better' : '\u2191 better'),
               nameLocation: 'end', nameGap: 8, nameTextStyle: { fontSize: 10, color: '#5b6775', align: 'right' },
               scale: metric !== 'score',
               axisLabel: { formatter: function (v) {  // three digits: ticks close together stay apart
                 return metric === 'count' ? fmt(v, 'count') : String(Number(v.toPrecision(3)));
               } } },
      series: series.map(function (s) {
        return {
          name: s.name, type: 'line', connectNulls: false, symbolSize: 7,
          data: s.rows.map(function (r) {
            if (!r) return null;
            var v = s.get(r);
            return { value: v === null || v === undefined ? null : v, symbol: r.meets_min_samples ? 'circle' : 'emptyTriangle' };
          }),
          endLabel: { show: true, fontSize: 11, formatter: function (p) { return fmt(p.value, metric); } }
        };
      })
    }, true);
    el.dataset.places = JSON.stringify(series.map(function (s) { return s.name; }));
    el.dataset.values = JSON.stringify(series.length ? series[0].rows.map(function (r) { return r ? series[0].get(r) : null; }) : []);
  }
  function renderTrends() {
    var keys = trendPlaces(), pct = S.pct;
    var needDrills = keys.some(function (k) { return parseKey(k).level !== 'country'; }) &&
      IQB.data.periods.some(function (p) { return !IQB.drills[p.id]; });
    if (needDrills) { loadAllDrills(function () { renderTrends(); }); }
    var rowsOf = {};
    keys.forEach(function (k) { rowsOf[k] = IQB.data.periods.map(function (p, i) { return placeRow(k, i); }); });
    var many = keys.length > 1;
    // series names shortened (the chart lays out its legend from them) and kept apart
    var names = {};
    keys.forEach(function (k) {
      var n = short(placeName(k), 48), i = 2;
      while (Object.keys(names).some(function (x) { return names[x] === n; })) n = short(placeName(k), 44) + ' #' + i++;
      names[k] = n;
    });
    function per(get, suffix) {
      return keys.map(function (k) { return { name: names[k] + (suffix || ''), rows: rowsOf[k], get: get }; });
    }
    trendChart('trend-score', 'IQB score at p' + pct, 'score', per(function (r) { return scoreOf(r).iqb; }));
    METRICS.forEach(function (m) {
      var series = many ? per(function (r) { return r[m + '_p' + pct]; }, ' p' + pct)
        : [{ name: 'p50 (median)', rows: rowsOf[keys[0]], get: function (r) { return r[m + '_p50']; } }].concat(
          pct === 50 ? [] : [{ name: 'p' + pct + ' (' + pctNote(m, pct) + ')', rows: rowsOf[keys[0]],
                               get: function (r) { return r[m + '_p' + pct]; } }]);
      trendChart('trend-' + m, METRIC_NAMES[m], m, series);
    });
    trendChart('trend-tests', 'Tests', 'count', many
      ? per(function (r) { return r.download_sample_count; }, ' download')
      : [{ name: 'download tests', rows: rowsOf[keys[0]], get: function (r) { return r.download_sample_count; } },
         { name: 'upload tests', rows: rowsOf[keys[0]], get: function (r) { return r.upload_sample_count; } }]);
    fill($('.polarity'), ['Triangles: a period with too few tests (thin). ',
      h('b', null, 'Percentile labels follow the IQB polarity convention:'),
      ' p95 = what the best-served 5% get; for download and upload that is the high end, for latency and loss ' +
      'it is the low end (latency p95 is the 5th percentile of the round-trip times). A place of the drill-down ' +
      'has a point in the periods where it is among the places with the most tests.']);
  }
  function renderCompare() {
    var el = $('#compare'), key = currentPlaceKey(), pk = parseKey(key);
    var inList = S.compare.indexOf(key) >= 0;
    var buttons = [h('button', { type: 'button', on: { click: function () {
      S.compare = inList ? S.compare.filter(function (k) { return k !== key; }) : S.compare.concat([key]);
      renderCountry(); writeHash();
    } } }, inList ? 'Remove from comparison' : 'Add to comparison')];
    if (pk.level === 'country_asn') {
      buttons.push(h('button', { type: 'button', on: { click: function () {
        loadAllDrills(function () {
          var code = placeRow(key, periodIndex()) && placeRow(key, periodIndex()).code, found = [];
          IQB.data.periods.forEach(function (p) {
            IQB.drills[p.id].objects.country_asn.forEach(function (r) {
              if (r.code === code && found.indexOf(r.key) < 0 && r.key !== key) found.push(r.key);
            });
          });
          S.compare = S.compare.concat(found.filter(function (k) { return S.compare.indexOf(k) < 0; }));
          renderCountry(); writeHash();
        });
      } } }, 'Compare this network in every country'));
    }
    if (S.compare.length) {
      buttons.push(h('button', { type: 'button', on: { click: function () { S.compare = []; renderCountry(); writeHash(); } } }, 'Clear comparison'));
    }
    fill(el, [buttons, S.compare.length ? h('ul', { 'class': 'compare-list' }, S.compare.map(function (k) {
      return h('li', null, nameNode(placeName(k)), ' ', h('button', { type: 'button', title: 'remove', on: { click: function () {
        S.compare = S.compare.filter(function (x) { return x !== k; }); renderCountry(); writeHash();
      } } }, '\u00d7'));
    })) : null]);
  }

  // ---- use-case breakdown: marks and scores from one comparison, the exact values --------------
  function renderBreakdown(r, key) {
    var pct = S.pct, pk = parseKey(key);
    fill($('#breakdown-title'), ['Use cases at p' + pct + ': ', nameNode(placeName(key)), ', ' + LEVEL_NAMES[pk.level][0]]);
    var out = $('#breakdown');
    if (!r) { fill(out, h('p', { 'class': 'hint' }, 'No data for this period.')); return; }
    var s = scoreOf(r);
    var table = h('table', { id: 'breakdown-table' },
      h('thead', null, h('tr', null, h('th', { 'class': 'name' }, 'Use case'), h('th', null, 'Score'),
        REQ_ORDER.map(function (k) {
          var m = REQUIREMENTS[k].metric;
          return h('th', null, METRIC_NAMES[m] + ' p' + pct,
                   h('small', null, pctNote(m, pct) + '; ' + UNITS[m] + ' ' + REQUIREMENTS[k].op + ' threshold'));
        }))),
      h('tbody', null, useCases().map(function (u) {
        var ucScore = s.uc[u];
        return h('tr', { 'data-use-case': u }, h('td', { 'class': 'name' }, useCaseName(u) + ' (w ' + S.cfg.uc[u] + ')'),
          h('td', null, h('b', null, ucScore === null ? '\u2013' : fmt(ucScore, 'score'))),
          REQ_ORDER.map(function (k) {
            var q = reqOf(S.cfg, u, k), spec = REQUIREMENTS[k];
            if (!q.w) return h('td', { 'class': 'hint' }, 'not used');
            var v = r[spec.metric + '_p' + pct];
            if (v === null || v === undefined) {
              return h('td', null, 'no value', h('br'), h('small', null, 'need ' + spec.op + ' ' + q.t));
            }
            var ok = spec.op === '>' ? v > q.t : v < q.t;  // the comparison score() makes
            return h('td', { 'class': ok ? 'pass' : 'fail', title: 'exact value ' + v + '; weight ' + q.w,
                             'data-value': v, 'data-pass': ok },
              (ok ? '\u2713 ' : '\u2717 ') + fmtVs(v, q.t), h('br'),
              h('small', null, (ok ? 'meets ' : 'needs ') + spec.op + ' ' + q.t + ' (w ' + q.w + ')'));
          }));
      })));
    table.iqbCsv = function () {
      var head = ['use_case', 'use_case_weight', 'score', 'percentile'];
      REQ_ORDER.forEach(function (k) { head.push(k + '_value', k + '_threshold', k + '_weight', k + '_passes'); });
      return [head].concat(useCases().map(function (u) {
        var row = [u, S.cfg.uc[u], s.uc[u], pct];
        REQ_ORDER.forEach(function (k) {
          var q = reqOf(S.cfg, u, k), v = r[REQUIREMENTS[k].metric + '_p' + pct];
          var ok = v === null || v === undefined || !q.w ? null : (REQUIREMENTS[k].op === '>' ? v > q.t : v < q.t);
          row.push(v, q.t, q.w, ok);
        });
        return row;
      }));
    };
    fill(out, [
      h('div', { 'class': 'tools' }, csvButton('breakdown-table', function () {
        return 'iqb-use-cases-' + S.period + '-p' + S.pct;
      })),
      s.status !== 'scored' ? h('p', { 'class': 'hint' }, badge('thin', s.status),
        ' not scored (score_status ' + s.status + '); the values are shown as they are.') : null,
      table,
      h('p', { 'class': 'hint' }, 'IQB score ', h('b', null, s.iqb === null ? '\u2013' : fmt(s.iqb, 'score')),
        ' = weighted mean of the use-case scores; a use-case score = weighted share of its requirements met ' +
        '(strictly above / below the threshold, exact values). Weights and thresholds: the what-if panel ' +
        '(the build\u2019s are the seeds iqb_requirements, iqb_use_cases).')
    ]);
  }

  // ---- drill-down -------------------------------------------------------------------------------
  function renderDrill() {
    var drill = IQB.drills[S.period];
    $all('.tabs button').forEach(function (b) { b.setAttribute('aria-selected', b.dataset.level === S.level ? 'true' : 'false'); });
    if (!drill) { fill($('#drill tbody'), h('tr', null, h('td', { 'class': 'name' }, 'loading\u2026'))); return; }
    var rows = drill.objects[S.level].filter(function (r) { return r.country_code === S.country; });
    var total = drill.levels[S.level].totals[S.country] || 0;
    var names = LEVEL_NAMES[S.level];
    var thin = rows.filter(function (r) { return !r.meets_min_samples; }).length;
    $('#drill-caption').textContent = total === 0 ? 'No ' + names[1] + ' for this country and period.'
      : (rows.length < total ? 'The ' + rows.length + ' ' + names[1] + ' with the most tests, of ' + total +
         ' (all are in ' + names[2] + ' in iqb.duckdb). ' : 'All ' + total + ' ' + names[1] + '. ') +
        thin + ' thin (too few tests: not scored, shown hatched). Click a header to sort, a row for its trends and use cases.';
    var pct = S.pct;
    var cols = [
      { key: 'label', head: S.level === 'country_asn' ? 'Network' : (S.level === 'city' ? 'City' : 'Subdivision'), cls: 'name',
        cell: function (r) { return [nameNode(r.label), r.meets_min_samples ? null : [' ', badge('thin', 'thin')]]; } },
      { key: 'code', head: S.level === 'country_asn' ? 'ASN' : 'Code', cell: function (r) { return codeNode(r.code); } },
      { key: 'download_sample_count', head: 'Download tests', metric: 'count' },
      { key: 'upload_sample_count', head: 'Upload tests', metric: 'count' },
      { key: 'iqb_score', head: 'IQB score', note: 'at p' + pct, value: function (r) { return scoreOf(r).iqb; }, cell: scoreCell }
    ];
    METRICS.forEach(function (m) {
      (pct === 50 || pct === 95 ? [50, 95] : [50, pct]).forEach(function (p) {
        cols.push({ key: m + '_p' + p, head: METRIC_NAMES[m] + ' p' + p, note: pctNote(m, p) + '; ' + UNITS[m], metric: m });
      });
    });
    renderTable($('#drill'), cols, rows, 'drill', {
      rowClass: function (r) { return (r.meets_min_samples ? '' : 'thin') + (r.key === S.place ? ' selected' : ''); },
      onRow: function (r) { selectPlace(r.key); }
    });
    fill($('#drill-tools'), csvButton('drill', function () { return 'iqb-' + S.level + '-' + S.country + '-' + S.period + '-p' + S.pct; }));
  }

  // ---- what-if: every threshold and weight, recomputed at once --------------------------------
  function renderWhatIf() {
    var base = defaultConfig(), panel = $('#whatif-body');
    function input(value, baseValue, set, label) {
      var inp = h('input', { type: 'number', step: 'any', value: value === null ? '' : value, 'aria-label': label,
                             'class': value !== baseValue ? 'changed' : null });
      inp.addEventListener('change', function () {
        var v = Number(inp.value);
        if (inp.value === '' || !isFinite(v)) { inp.value = value === null ? '' : value; return; }
        set(v);
        value = v;
        inp.classList.toggle('changed', v !== baseValue);
        rescore();
      });
      return inp;
    }
    fill(panel, h('table', { id: 'whatif-table' },
      h('thead', null, h('tr', null, h('th', { 'class': 'name' }, 'Use case', h('small', null, 'weight')),
        REQ_ORDER.map(function (k) {
          var m = REQUIREMENTS[k].metric;
          return h('th', null, METRIC_NAMES[m] + ' ' + REQUIREMENTS[k].op, h('small', null, 'weight; threshold, ' + UNITS[m]));
        }))),
      h('tbody', null, useCases().map(function (u) {
        return h('tr', null,
          h('td', { 'class': 'name' }, useCaseName(u), ' ',
            input(S.cfg.uc[u], base.uc[u], function (v) { S.cfg.uc[u] = Math.max(0, v); }, u + ' weight')),
          REQ_ORDER.map(function (k) {
            var q = reqOf(S.cfg, u, k), b = reqOf(base, u, k);
            function target() { return (S.cfg.req[u][k] = S.cfg.req[u][k] || { w: 0, t: null }); }
            return h('td', null,
              input(q.w, b.w, function (v) { target().w = Math.max(0, v); }, u + ' ' + k + ' weight'), ' ',
              input(q.t, b.t, function (v) { target().t = v; }, u + ' ' + k + ' threshold'));
          }));
      }))));
    document.getElementById('whatif-table').iqbCsv = function () {
      var out = [['use_case', 'use_case_weight', 'requirement', 'weight', 'threshold']];
      useCases().forEach(function (u) {
        REQ_ORDER.forEach(function (k) { var q = reqOf(S.cfg, u, k); out.push([u, S.cfg.uc[u], k, q.w, q.t]); });
      });
      return out;
    };
    add(panel, h('div', { 'class': 'tools' }, csvButton('whatif-table', function () { return 'iqb-config-what-if'; })));
    var reset = $('#whatif-reset');
    reset.onclick = function () { S.cfg = defaultConfig(); renderWhatIf(); rescore(); };
  }

  // ---- provenance -------------------------------------------------------------------------------
  function renderProvenance() {
    var d = IQB.data, base = defaultConfig();
    var periods = h('table', { id: 'periods-table' },
      h('thead', null, h('tr', null, ['Period', 'Data', 'Why', 'Countries', 'Other codes', 'Scored (build)', 'min_sample_count']
        .map(function (t, i) { return h('th', { 'class': i === 0 || i === 2 ? 'name' : null }, t); }))),
      h('tbody', null, d.periods.map(function (p) {
        return h('tr', null, h('td', { 'class': 'name' }, p.label + ' ', h('small', null, p.start + '..' + p.end)),
          h('td', null, kindBadge(p)), h('td', { 'class': 'name' }, p.evidence), h('td', null, p.countries),
          h('td', null, p.not_countries), h('td', null, p.scored), h('td', null, p.min_sample_count));
      })));
    var thresholds = h('table', { id: 'config-table' },
      h('thead', null, h('tr', null, h('th', { 'class': 'name' }, 'Use case (weight)'), REQ_ORDER.map(function (k) {
        var m = REQUIREMENTS[k].metric;
        return h('th', null, METRIC_NAMES[m] + ' ' + REQUIREMENTS[k].op, h('small', null, UNITS[m] + '; weight, threshold'));
      }))),
      h('tbody', null, useCases().map(function (u) {
        return h('tr', null, h('td', { 'class': 'name' }, useCaseName(u) + ' (' + base.uc[u] + ')'),
          REQ_ORDER.map(function (k) {
            var q = (base.req[u] || {})[k];
            return h('td', null, q ? 'w ' + q.w + ', ' + q.t : '\u2013');
          }));
      })));
    function fact(dt, dd) { return [h('dt', null, dt), h('dd', null, dd)]; }
    fill($('#provenance-body'), [
      h('dl', { 'class': 'facts' },
        fact('Report generated', d.generated_at),
        fact('Database built (latest loaded_at)', d.database_built_at + ' UTC'),
        fact('Commit', h('code', null, d.commit)),
        fact('Database', [h('code', null, d.database), ' (read-only)']),
        fact('Relations read', d.relations.join(', ') + ', seeds iqb_requirements, iqb_use_cases'),
        fact('Score percentile', 'build: p' + d.score_percentile + ' (dbt var iqb_percentile); shown: p' + S.pct +
          ' (' + pctNote('download', S.pct) + ' for throughput, ' + pctNote('latency', S.pct) + ' for latency and loss)'),
        fact('Maps', 'Natural Earth (public domain): countries 1:110m (world-atlas 2.0.2), regions 1:10m admin-1 ' +
          'matched on ISO 3166-2 codes, simplified (extract/results/html/geo/README.md)'),
        fact('Scores', 'computed in this page from the values at every percentile, as the score macro computes them; ' +
          'at the build\u2019s percentile and config they equal iqb_scores_by_<level>')),
      h('h3', null, 'Periods'), h('div', { 'class': 'tools' }, csvButton('periods-table', function () { return 'iqb-periods'; })),
      periods,
      h('h3', null, 'Thresholds and weights of the build'),
      h('div', { 'class': 'tools' }, csvButton('config-table', function () { return 'iqb-config'; })), thresholds,
      h('p', { 'class': 'hint' }, 'A requirement passes when throughput is above its threshold or latency / loss below it ' +
        '(strictly). Loss is a ratio (0..1), as in the marts. A cell is scored only when both its download and upload ' +
        'side have at least min_sample_count tests, its code is a country and its values are valid.')
    ]);
  }
})();
