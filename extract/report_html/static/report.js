/* IQB report: map, trends, use cases, drill-down and provenance from data/*.js.
 * Data arrive as scripts calling IQB.summary(...) and IQB.drill(...): a page opened
 * from file:// may not fetch JSON, and nothing here touches the network. */
(function () {
  'use strict';

  var IQB = window.IQB = { data: null, drills: {}, charts: {} };
  var S = { period: null, country: null, level: 'subdivision1', selectedRow: null,
            sort: { ranking: ['iqb_score', -1], drill: ['download_sample_count', -1] } };

  // The use cases are the data's (d.use_cases: the seed iqb_use_cases); each is shown
  // by its id, spaced and capitalised: 'some_use_case' -> 'Some use case'.
  function useCaseName(id) {
    var words = String(id).replace(/_/g, ' ');
    return words.charAt(0).toUpperCase() + words.slice(1);
  }
  // requirement -> metric, unit, comparison that passes
  var REQUIREMENTS = {
    download_throughput_mbps: { metric: 'download', unit: 'Mbit/s', op: '>' },
    upload_throughput_mbps: { metric: 'upload', unit: 'Mbit/s', op: '>' },
    latency_ms: { metric: 'latency', unit: 'ms', op: '<' },
    packet_loss: { metric: 'loss', unit: '%', op: '<' }
  };
  var METRIC_NAMES = { download: 'Download', upload: 'Upload', latency: 'Latency', loss: 'Loss' };
  var UNITS = { download: 'Mbit/s', upload: 'Mbit/s', latency: 'ms', loss: '%' };

  // ---- labels: the polarity convention is named wherever a percentile is shown ----------
  function pctNote(metric, p) {
    if (p === 50) return 'median';
    var best = 100 - p;
    if (metric === 'latency' || metric === 'loss') {
      return p > 50 ? 'best-served ' + best + '%, the low end' : 'worst-served ' + p + '%, the high end';
    }
    return p > 50 ? 'best-served ' + best + '%, the high end' : 'worst-served ' + p + '%, the low end';
  }
  function pctLabel(metric, p) {
    return METRIC_NAMES[metric] + ' p' + p + ' (' + pctNote(metric, p) + ')';
  }
  function better(metric) {
    return (metric === 'latency' || metric === 'loss') ? '\u2193 lower is better' : '\u2191 higher is better';
  }

  // ---- formatting -------------------------------------------------------------------------
  function fmt(v, metric) {
    if (v === null || v === undefined) return '\u2013';
    if (metric === 'loss') v = v * 100;
    if (metric === 'score') return v.toFixed(3);
    if (metric === 'count') return Math.round(v).toLocaleString('en-US');
    var a = Math.abs(v);
    if (a === 0) return '0';
    if (a >= 100) return v.toFixed(0);
    if (a >= 10) return v.toFixed(1);
    if (a >= 1) return v.toFixed(2);
    return v.toPrecision(2);
  }
  function esc(s) {
    return String(s === null || s === undefined ? '' : s).replace(/[&<>"']/g, function (c) {
      return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c];
    });
  }
  function objects(table) {
    return table.rows.map(function (r) {
      var o = {};
      table.cols.forEach(function (c, i) { o[c] = r[i]; });
      return o;
    });
  }
  function $(sel) { return document.querySelector(sel); }
  function $all(sel) { return Array.prototype.slice.call(document.querySelectorAll(sel)); }
  function setText(sel, text) { $all(sel).forEach(function (el) { el.textContent = text; }); }

  function period() { return IQB.data.periods.find(function (p) { return p.id === S.period; }); }
  function periodIndex() { return IQB.data.periods.indexOf(period()); }
  function countriesIn(idx) { return IQB.countries.filter(function (r) { return r.period === idx; }); }
  function countryRow(cc, idx) {
    return IQB.countries.find(function (r) { return r.period === idx && r.country_code === cc; });
  }
  function countryName(cc) {
    var r = IQB.countries.find(function (x) { return x.country_code === cc && x.country_name; });
    return r ? r.country_name : cc;
  }
  function kindBadge(p) {
    return p.synthetic ? '<span class="badge synthetic" title="' + esc(p.evidence) + '">synthetic</span>'
                       : '<span class="badge real" title="' + esc(p.evidence) + '">real</span>';
  }

  // ---- entry points called by the data scripts ----------------------------------------------
  IQB.summary = function (data) {
    IQB.data = data;
    IQB.countries = objects(data.countries);
    init();
  };
  IQB.drill = function (id, data) {
    data.objects = {};
    Object.keys(data.levels).forEach(function (lvl) { data.objects[lvl] = objects(data.levels[lvl]); });
    IQB.drills[id] = data;
    if (id === S.period) renderDrill();
  };

  function readHash() {
    var out = {};
    location.hash.replace(/^#/, '').split('&').forEach(function (kv) {
      var i = kv.indexOf('=');
      if (i > 0) out[decodeURIComponent(kv.slice(0, i))] = decodeURIComponent(kv.slice(i + 1));
    });
    return out;
  }
  function writeHash() {
    history.replaceState(null, '', '#period=' + S.period + '&country=' + S.country + '&level=' + S.level);
  }

  function init() {
    var d = IQB.data, h = readHash();
    var periods = d.periods;
    S.period = periods.some(function (p) { return p.id === h.period; }) ? h.period
      : periods[periods.length - 1].id;
    var idx = periodIndex();
    var inPeriod = countriesIn(idx);
    if (h.country && IQB.countries.some(function (r) { return r.country_code === h.country; })) {
      S.country = h.country;
    } else {  // the country with the most tests: a researcher's first look
      S.country = inPeriod.slice().sort(function (a, b) {
        return (b.download_sample_count || 0) - (a.download_sample_count || 0);
      })[0].country_code;
    }
    if (h.level && ['subdivision1', 'city', 'country_asn'].indexOf(h.level) >= 0) S.level = h.level;

    var sel = $('#period');
    sel.innerHTML = periods.map(function (p) {
      return '<option value="' + p.id + '">' + esc(p.label) + (p.synthetic ? ' (synthetic)' : ' (real)') + '</option>';
    }).join('');
    sel.value = S.period;
    sel.addEventListener('change', function () { S.period = sel.value; S.selectedRow = null; renderAll(); });
    $('#country').addEventListener('change', function () { selectCountry($('#country').value); });
    $all('.tabs button').forEach(function (b) {
      b.addEventListener('click', function () { S.level = b.dataset.level; S.selectedRow = null; renderDrill(); writeHash(); });
    });
    setText('.score-pct', 'p' + d.score_percentile);

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
    renderProvenance();
    renderAll();
    window.addEventListener('resize', function () {
      Object.keys(IQB.charts).forEach(function (k) { IQB.charts[k].resize(); });
    });
  }

  function selectCountry(cc) {
    S.country = cc;
    S.selectedRow = null;
    renderCountry();
    renderDrill();
    highlightRanking();
    renderMap();
    writeHash();
  }

  function renderAll() {
    var p = period();
    setText('.period-label', p.label);
    $all('.kind-badge').forEach(function (el) { el.innerHTML = kindBadge(p); });
    setText('.min-samples', p.min_sample_count === null ? '?' : p.min_sample_count);
    renderCountrySelect();
    renderMap();
    renderRanking();
    renderCountry();
    loadDrill();
    writeHash();
  }

  function renderCountrySelect() {
    var rows = countriesIn(periodIndex()).slice().sort(function (a, b) {
      return (a.country_name || a.country_code).localeCompare(b.country_name || b.country_code);
    });
    if (!rows.some(function (r) { return r.country_code === S.country; }) && rows.length) {
      S.country = rows[0].country_code;
    }
    $('#country').innerHTML = rows.map(function (r) {
      return '<option value="' + r.country_code + '">' + esc((r.country_name || r.country_code) + ' (' + r.country_code + ')') + '</option>';
    }).join('');
    $('#country').value = S.country;
  }

  // ---- map ------------------------------------------------------------------------------------
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
    var minN = period().min_sample_count;
    IQB.mapData = rows.map(function (r) {
      var thin = !r.meets_min_samples;
      var item = { name: r.country_code, value: thin || r.iqb_score === null ? NaN : r.iqb_score, row: r };
      item.itemStyle = {};
      if (thin) {
        item.itemStyle = { areaColor: '#b9b9b9', decal: { symbol: 'rect', symbolSize: 1, color: 'rgba(255,255,255,0.85)',
                                                         dashArrayX: [1, 0], dashArrayY: [2, 3], rotation: -Math.PI / 4 } };
      }
      if (r.country_code === S.country) {  // the chosen country: a red outline, its colour kept
        item.itemStyle.borderColor = '#d7191c';
        item.itemStyle.borderWidth = 2;
      }
      return item;
    });
    chart.setOption({
      animation: false,
      aria: { enabled: true },
      tooltip: {
        trigger: 'item',
        formatter: function (p) {
          var r = p.data && p.data.row;
          if (!r) return esc(p.name) + ': no data';
          return '<b>' + esc(r.country_name || r.country_code) + '</b> (' + r.country_code + ')<br>' +
            (r.meets_min_samples ? 'IQB score ' + fmt(r.iqb_score, 'score')
              : 'too few tests (< ' + minN + '): not scored') +
            '<br>tests: ' + fmt(r.download_sample_count, 'count') + ' down, ' + fmt(r.upload_sample_count, 'count') + ' up';
        }
      },
      visualMap: { min: 0, max: 1, left: 10, bottom: 10, text: ['IQB 1', '0'], calculable: false,
                   inRange: { color: ['#440154', '#3b528b', '#21918c', '#5ec962', '#fde725'] } },
      series: [{
        type: 'map', map: 'world', nameProperty: 'cc', roam: true, selectedMode: false,
        itemStyle: { areaColor: '#ffffff', borderColor: '#8a96a3', borderWidth: 0.5 },
        emphasis: { label: { show: false }, itemStyle: { borderColor: '#000', borderWidth: 1.2 } },
        data: IQB.mapData
      }]
    }, { replaceMerge: ['series'] });  // new data, the reader's zoom and pan kept
    chart.off('click');
    chart.on('click', function (p) { if (p.data && p.data.row) selectCountry(p.name); });
    el.dataset.period = S.period;
    el.dataset.countries = rows.length;
    el.dataset.scored = rows.filter(function (r) { return r.meets_min_samples && r.iqb_score !== null; }).length;
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

  // ---- sortable tables -------------------------------------------------------------------------
  function sortRows(rows, key, dir) {
    return rows.slice().sort(function (a, b) {
      var x = a[key], y = b[key];
      if (x === null || x === undefined) return 1;
      if (y === null || y === undefined) return -1;
      if (typeof x === 'string') return dir * x.localeCompare(y);
      return dir * (x - y);
    });
  }
  function headerHtml(cols, sort) {
    return '<tr>' + cols.map(function (c) {
      var s = sort[0] === c.key ? (sort[1] > 0 ? 'ascending' : 'descending') : 'none';
      return '<th data-key="' + c.key + '" aria-sort="' + s + '"' + (c.cls ? ' class="' + c.cls + '"' : '') + '>' + c.head + '</th>';
    }).join('') + '</tr>';
  }
  function bindSort(table, name, render) {
    $all(table + ' thead th').forEach(function (th) {
      th.addEventListener('click', function () {
        var cur = S.sort[name];
        S.sort[name] = [th.dataset.key, cur[0] === th.dataset.key ? -cur[1] : (th.dataset.key === 'label' || th.dataset.key === 'country_name' ? 1 : -1)];
        render();
      });
    });
  }

  function renderRanking() {
    var cols = [
      { key: 'country_name', head: 'Country', cls: 'name' },
      { key: 'iqb_score', head: 'IQB' },
      { key: 'download_p50', head: 'Down p50<small>Mbit/s</small>' },
      { key: 'download_sample_count', head: 'Tests' }
    ];
    var rows = sortRows(countriesIn(periodIndex()), S.sort.ranking[0], S.sort.ranking[1]);
    $('#ranking thead').innerHTML = headerHtml(cols, S.sort.ranking);
    $('#ranking tbody').innerHTML = rows.map(function (r) {
      var thin = !r.meets_min_samples;
      return '<tr data-cc="' + r.country_code + '"' + (thin ? ' class="thin"' : '') + '>' +
        '<td class="name">' + esc(r.country_name || r.country_code) + ' <small>' + r.country_code + '</small>' +
        (thin ? ' <span class="badge thin">thin</span>' : '') + '</td>' +
        '<td>' + (thin ? '\u2013' : fmt(r.iqb_score, 'score')) + '</td>' +
        '<td>' + fmt(r.download_p50, 'download') + '</td>' +
        '<td>' + fmt(r.download_sample_count, 'count') + '</td></tr>';
    }).join('');
    $all('#ranking tbody tr').forEach(function (tr) {
      tr.addEventListener('click', function () { selectCountry(tr.dataset.cc); });
    });
    bindSort('#ranking', 'ranking', renderRanking);
    highlightRanking();
  }
  function highlightRanking() {
    $all('#ranking tbody tr').forEach(function (tr) { tr.classList.toggle('selected', tr.dataset.cc === S.country); });
    $('#country').value = S.country;
  }

  // ---- one country: KPIs, trends, use cases -----------------------------------------------------
  function renderCountry() {
    var idx = periodIndex(), p = period();
    var r = countryRow(S.country, idx);
    var name = countryName(S.country);
    $('#country-title').innerHTML = esc(name) + ' (' + S.country + '), ' + esc(p.label) + ' ' + kindBadge(p);
    setText('.country-name', name);
    var kpis = [];
    if (r) {
      kpis.push(['IQB score', r.meets_min_samples ? fmt(r.iqb_score, 'score') : 'not scored (thin)']);
      kpis.push(['Download tests', fmt(r.download_sample_count, 'count')]);
      kpis.push(['Upload tests', fmt(r.upload_sample_count, 'count')]);
      kpis.push(['Download median', fmt(r.download_p50, 'download') + ' Mbit/s']);
      kpis.push(['Latency median', fmt(r.latency_p50, 'latency') + ' ms']);
    } else {
      kpis.push(['No data', 'for this period']);
    }
    $('#country-kpis').innerHTML = kpis.map(function (k) {
      return '<div class="kpi"><span>' + esc(k[0]) + '</span><b>' + esc(k[1]) + '</b></div>';
    }).join('');
    renderTrends();
    renderBreakdown(r, esc(name) + ', country');
  }

  function trendChart(id, title, metric, series) {
    var el = document.getElementById(id);
    var chart = IQB.charts[id] || (IQB.charts[id] = echarts.init(el, null, { renderer: 'svg' }));
    var labels = IQB.data.periods.map(function (p) { return p.label; });
    var rows = IQB.data.periods.map(function (p, i) { return countryRow(S.country, i) || null; });
    chart.setOption({
      animation: false,  // a report: drawn once, the same in a browser, a screenshot and print
      title: { text: title, subtext: metric === 'score' ? '\u2191 higher is better (0..1)' : UNITS[metric] + ', ' + better(metric),
               left: 6, top: 2, textStyle: { fontSize: 13 }, subtextStyle: { fontSize: 11 } },
      tooltip: { trigger: 'axis', valueFormatter: function (v) { return fmt(v, metric); } },
      legend: { bottom: 0, textStyle: { fontSize: 11 }, itemHeight: 8 },
      grid: { left: 48, right: 56, top: 62, bottom: 46 },
      xAxis: { type: 'category', data: labels, boundaryGap: labels.length < 3 },
      yAxis: { type: 'value', min: metric === 'score' ? 0 : null, max: metric === 'score' ? 1 : null,
               name: (metric === 'latency' || metric === 'loss') ? '\u2193 better' : '\u2191 better',
               nameLocation: 'end', nameGap: 8, nameTextStyle: { fontSize: 10, color: '#5b6775', align: 'right' },
               scale: metric !== 'score',
               axisLabel: { formatter: function (v) { return fmt(v, metric === 'score' ? null : metric); } } },
      series: series.map(function (s) {
        return {
          name: s.name, type: 'line', connectNulls: false, symbolSize: 7,
          data: rows.map(function (r) {
            if (!r) return null;
            var v = r[s.key];
            if (metric === 'score' && !r.meets_min_samples) v = null;
            return { value: v === null || v === undefined ? null : v, symbol: r.meets_min_samples ? 'circle' : 'emptyTriangle' };
          }),
          endLabel: { show: true, fontSize: 11, formatter: function (p) { return fmt(p.value, metric); } }
        };
      })
    }, true);
    el.dataset.country = S.country;
    el.dataset.values = JSON.stringify(rows.map(function (r) { return r ? r[series[0].key] : null; }));
  }

  function renderTrends() {
    var pct = IQB.data.score_percentile;
    trendChart('trend-score', 'IQB score', 'score', [{ name: 'IQB score (p' + pct + ' values)', key: 'iqb_score' }]);
    ['download', 'upload', 'latency'].forEach(function (m) {
      trendChart('trend-' + m, METRIC_NAMES[m], m, [
        { name: 'p50 (median)', key: m + '_p50' },
        { name: 'p95 (' + pctNote(m, 95) + ')', key: m + '_p95' }
      ]);
    });
    $('.polarity').innerHTML = 'Triangles: a period with too few tests (thin). ' +
      '<b>Percentile labels follow the IQB polarity convention:</b> p95 = what the best-served 5% get; ' +
      'for download and upload that is the high end, for latency and loss it is the low end ' +
      '(latency p95 is the 5th percentile of the round-trip times).';
  }

  function renderBreakdown(r, title) {
    var d = IQB.data, pct = d.score_percentile;
    $('#breakdown-title').innerHTML = 'Use cases: ' + title;
    if (!r) { $('#breakdown').innerHTML = '<p class="hint">No data for this period.</p>'; return; }
    var reqs = {};
    d.requirements.forEach(function (q) { (reqs[q.use_case] = reqs[q.use_case] || {})[q.requirement] = q; });
    var reqKeys = Object.keys(REQUIREMENTS);
    var head = '<tr><th class="name">Use case</th><th>Score</th>' + reqKeys.map(function (k) {
      var m = REQUIREMENTS[k].metric;
      return '<th>' + METRIC_NAMES[m] + ' p' + pct + '<small>' + esc(pctNote(m, pct)) + '; ' + UNITS[m] + ' ' + REQUIREMENTS[k].op + ' threshold</small></th>';
    }).join('') + '</tr>';
    var thin = !r.meets_min_samples;
    var body = d.use_cases.map(function (u) {
      var score = r[u.use_case + '_score'];
      return '<tr><td class="name">' + esc(useCaseName(u.use_case)) + '</td><td><b>' +
        (thin ? '\u2013' : fmt(score, 'score')) + '</b></td>' + reqKeys.map(function (k) {
          var q = (reqs[u.use_case] || {})[k];
          var spec = REQUIREMENTS[k];
          if (!q || !q.weight) return '<td class="hint">not used</td>';
          var v = r[spec.metric + '_p' + pct];
          var shown = fmt(q.threshold, spec.metric);
          if (v === null || v === undefined) return '<td>no value<br><small>need ' + spec.op + ' ' + shown + '</small></td>';
          var ok = spec.op === '>' ? v > q.threshold : v < q.threshold;
          return '<td class="' + (ok ? 'pass' : 'fail') + '" title="weight ' + q.weight + '">' + (ok ? '\u2713 ' : '\u2717 ') +
            fmt(v, spec.metric) + '<br><small>' + (ok ? 'meets ' : 'needs ') + spec.op + ' ' + shown + ' (w ' + q.weight + ')</small></td>';
        }).join('') + '</tr>';
    }).join('');
    $('#breakdown').innerHTML = (thin ? '<p class="hint"><span class="badge thin">thin</span> fewer than ' +
      period().min_sample_count + ' tests on a side: not scored; the values are shown as they are.</p>' : '') +
      '<table id="breakdown-table"><thead>' + head + '</thead><tbody>' + body + '</tbody></table>' +
      '<p class="hint">IQB score ' + (thin ? '\u2013' : '<b>' + fmt(r.iqb_score, 'score') + '</b>') +
      ' = weighted mean of the use-case scores; a use-case score = weighted share of its requirements met ' +
      '(weights and thresholds: seeds iqb_requirements, iqb_use_cases).</p>';
  }

  // ---- drill-down -------------------------------------------------------------------------------
  function loadDrill() {
    if (IQB.drills[S.period]) { renderDrill(); return; }
    $('#drill tbody').innerHTML = '<tr><td class="name">loading\u2026</td></tr>';
    var src = IQB.data.drill_files[S.period];
    var s = document.createElement('script');
    s.src = IQB_URL(src);
    s.onerror = function () { $('#drill-caption').textContent = 'Could not load ' + src + ' (is the report folder complete?)'; };
    document.body.appendChild(s);
  }

  var LEVEL_NAMES = { subdivision1: ['subdivision', 'subdivisions', 'quality_by_subdivision1'],
                      city: ['city', 'cities', 'quality_by_city'],
                      country_asn: ['network', 'networks (ASNs)', 'quality_by_country_asn'] };

  function renderDrill() {
    var drill = IQB.drills[S.period];
    $all('.tabs button').forEach(function (b) { b.setAttribute('aria-selected', b.dataset.level === S.level ? 'true' : 'false'); });
    if (!drill) return;
    var rows = drill.objects[S.level].filter(function (r) { return r.country_code === S.country; });
    var total = drill.levels[S.level].totals[S.country] || 0;
    var names = LEVEL_NAMES[S.level];
    var thin = rows.filter(function (r) { return !r.meets_min_samples; }).length;
    $('#drill-caption').textContent = total === 0 ? 'No ' + names[1] + ' for this country and period.'
      : (rows.length < total ? 'The ' + rows.length + ' ' + names[1] + ' with the most tests, of ' + total +
         ' (all are in ' + names[2] + ' in iqb.duckdb). ' : 'All ' + total + ' ' + names[1] + '. ') +
        thin + ' thin (too few tests: not scored, shown hatched). Click a header to sort, a row for its use cases.';
    var pct = IQB.data.score_percentile;
    var cols = [
      { key: 'label', head: S.level === 'country_asn' ? 'Network' : (S.level === 'city' ? 'City' : 'Subdivision'), cls: 'name' },
      { key: 'code', head: S.level === 'country_asn' ? 'ASN' : 'Code' },
      { key: 'download_sample_count', head: 'Download tests' },
      { key: 'upload_sample_count', head: 'Upload tests' },
      { key: 'iqb_score', head: 'IQB score<small>at p' + pct + '</small>' }
    ];
    ['download', 'upload', 'latency', 'loss'].forEach(function (m) {
      [50, 95].forEach(function (p) {
        cols.push({ key: m + '_p' + p, head: METRIC_NAMES[m] + ' p' + p + '<small>' + esc(pctNote(m, p)) + '; ' + UNITS[m] + '</small>' });
      });
    });
    var sorted = sortRows(rows, S.sort.drill[0], S.sort.drill[1]);
    $('#drill thead').innerHTML = headerHtml(cols, S.sort.drill);
    $('#drill tbody').innerHTML = sorted.map(function (r, i) {
      var isThin = !r.meets_min_samples;
      return '<tr data-i="' + rows.indexOf(r) + '" class="' + (isThin ? 'thin' : '') + '">' + cols.map(function (c) {
        var v = r[c.key];
        if (c.key === 'label') return '<td class="name">' + esc(v) + (isThin ? ' <span class="badge thin">thin</span>' : '') + '</td>';
        if (c.key === 'code') return '<td>' + esc(v) + '</td>';
        if (c.key.indexOf('sample_count') > 0) return '<td>' + fmt(v, 'count') + '</td>';
        if (c.key === 'iqb_score') return '<td>' + (isThin ? '\u2013' : fmt(v, 'score')) + '</td>';
        return '<td>' + fmt(v, c.key.split('_')[0]) + '</td>';
      }).join('') + '</tr>';
    }).join('');
    $all('#drill tbody tr').forEach(function (tr) {
      tr.addEventListener('click', function () {
        var r = rows[+tr.dataset.i];
        $all('#drill tbody tr').forEach(function (x) { x.classList.toggle('selected', x === tr); });
        renderBreakdown(r, esc(r.label) + ' (' + esc(r.code) + '), ' + names[0]);
      });
    });
    bindSort('#drill', 'drill', renderDrill);
  }

  // ---- provenance -------------------------------------------------------------------------------
  function renderProvenance() {
    var d = IQB.data;
    var periods = '<table><thead><tr><th class="name">Period</th><th>Data</th><th class="name">Why</th>' +
      '<th>Countries</th><th>Scored</th><th>min_sample_count</th></tr></thead><tbody>' +
      d.periods.map(function (p) {
        return '<tr><td class="name">' + esc(p.label) + ' <small>' + p.start + '..' + p.end + '</small></td><td>' +
          kindBadge(p) + '</td><td class="name">' + esc(p.evidence) + '</td><td>' + p.countries + '</td><td>' +
          p.scored + '</td><td>' + esc(p.min_sample_count) + '</td></tr>';
      }).join('') + '</tbody></table>';
    var reqKeys = Object.keys(REQUIREMENTS);
    var reqs = {};
    d.requirements.forEach(function (q) { (reqs[q.use_case] = reqs[q.use_case] || {})[q.requirement] = q; });
    var thresholds = '<table><thead><tr><th class="name">Use case (weight)</th>' + reqKeys.map(function (k) {
      var m = REQUIREMENTS[k].metric;
      return '<th>' + METRIC_NAMES[m] + ' p' + d.score_percentile + ' ' + REQUIREMENTS[k].op + '<small>' + UNITS[m] + '; weight, threshold</small></th>';
    }).join('') + '</tr></thead><tbody>' + d.use_cases.map(function (u) {
      return '<tr><td class="name">' + esc(useCaseName(u.use_case)) + ' (' + u.weight + ')</td>' +
        reqKeys.map(function (k) {
          var q = (reqs[u.use_case] || {})[k];
          return '<td>' + (q ? 'w ' + q.weight + ', ' + fmt(q.threshold, REQUIREMENTS[k].metric) : '\u2013') + '</td>';
        }).join('') + '</tr>';
    }).join('') + '</tbody></table>';
    $('#provenance-body').innerHTML =
      '<dl class="facts">' +
      '<dt>Report generated</dt><dd>' + esc(d.generated_at) + '</dd>' +
      '<dt>Database built (latest loaded_at)</dt><dd>' + esc(d.database_built_at) + ' UTC</dd>' +
      '<dt>Commit</dt><dd><code>' + esc(d.commit) + '</code></dd>' +
      '<dt>Database</dt><dd><code>' + esc(d.database) + '</code> (read-only)</dd>' +
      '<dt>Relations read</dt><dd>' + esc(d.relations.join(', ')) + ', seeds iqb_requirements, iqb_use_cases</dd>' +
      '<dt>Score percentile</dt><dd>p' + d.score_percentile + ' (dbt var iqb_percentile; ' + esc(pctNote('download', d.score_percentile)) +
      ' for throughput, ' + esc(pctNote('latency', d.score_percentile)) + ' for latency and loss)</dd>' +
      '</dl><h3>Periods</h3>' + periods + '<h3>Thresholds and weights</h3>' + thresholds +
      '<p class="hint">A requirement passes when throughput is above its threshold or latency / loss below it (strictly). ' +
      'A cell is scored only when both its download and upload side have at least min_sample_count tests.</p>';
  }
})();
