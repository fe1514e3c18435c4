/* riskmap glue: fetch the cached geometry once, colour it from the page's value table,
   tooltips, click-through, layer switch, search, state zoom, synced maps, sortable tables.
   Reads its configuration from <script type="application/json" id="riskmap-config">. */
(function () {
  'use strict';
  window.riskmapReady = false;
  window.riskmapFeatures = 0;

  function norm(s) {
    return String(s || '').normalize('NFD').replace(/[\u0300-\u036f]/g, '').toLowerCase().trim();
  }

  /* ---- phones: the map first, its options folded away until asked for ---- */
  if (window.matchMedia && window.matchMedia('(max-width: 700px)').matches) {
    Array.prototype.forEach.call(document.querySelectorAll('details.controls-panel'), function (d) {
      d.open = false;
    });
  }

  /* ---- tables scroll inside their own box, reachable from the keyboard ---- */
  Array.prototype.forEach.call(document.querySelectorAll('main table'), function (table) {
    var box = table.parentElement;
    if (!box.classList.contains('tablewrap')) {
      box = document.createElement('div');
      box.className = 'tablewrap';
      table.parentNode.insertBefore(box, table);
      box.appendChild(table);
    }
    if (!box.hasAttribute('tabindex')) {
      box.setAttribute('tabindex', '0');
      box.setAttribute('role', 'region');
      var cap = table.caption || box.previousElementSibling;
      box.setAttribute('aria-label', (cap && cap.textContent.trim()) || document.title);
    }
  });
  Array.prototype.forEach.call(document.querySelectorAll('.panel, .tablewrap, pre'), function (el) {
    if (!el.hasAttribute('tabindex') && (el.scrollWidth > el.clientWidth + 1 ||
                                         el.scrollHeight > el.clientHeight + 1)) {
      el.setAttribute('tabindex', '0');
    }
  });

  /* ---- sortable tables (independent of maps) ---- */
  function sortTable(table, col, th) {
    var body = table.tBodies[0];
    var asc = th.getAttribute('aria-sort') !== 'ascending';
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (c) { c.removeAttribute('aria-sort'); });
    th.setAttribute('aria-sort', asc ? 'ascending' : 'descending');
    var numeric = th.classList.contains('num');
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[col].getAttribute('data-v'), y = b.cells[col].getAttribute('data-v');
      if (x === null) { x = a.cells[col].textContent; }
      if (y === null) { y = b.cells[col].textContent; }
      var r;
      if (numeric) {
        var fx = parseFloat(x), fy = parseFloat(y);
        if (isNaN(fx) && isNaN(fy)) { r = 0; } else if (isNaN(fx)) { return 1; } else if (isNaN(fy)) { return -1; } else { r = fx - fy; }
      } else {
        r = norm(x).localeCompare(norm(y));
      }
      return asc ? r : -r;
    });
    rows.forEach(function (row) { body.appendChild(row); });
  }
  Array.prototype.forEach.call(document.querySelectorAll('table.sortable'), function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, i) {
      var label = th.textContent;
      var b = document.createElement('button');
      b.type = 'button'; b.className = 'sort'; b.textContent = label;
      th.textContent = ''; th.appendChild(b);
      b.addEventListener('click', function () { sortTable(table, i, th); });
    });
  });

  /* choosing another edition reloads the view (its URL is the permalink) */
  Array.prototype.forEach.call(document.querySelectorAll('form.controls select[name="edicion"]'), function (sel) {
    sel.addEventListener('change', function () { sel.form.submit(); });
  });

  var cfgEl = document.getElementById('riskmap-config');
  if (!cfgEl || typeof L === 'undefined') { window.riskmapReady = !cfgEl; return; }
  var cfg = JSON.parse(cfgEl.textContent);
  var T = cfg.labels || {};
  var locale = cfg.locale || 'es-MX';
  var fmtInt = new Intl.NumberFormat(locale, { maximumFractionDigits: 0 });
  var fmtPct1 = new Intl.NumberFormat(locale, { minimumFractionDigits: 1, maximumFractionDigits: 1 });
  function pct(x) { return x === null || x === undefined ? '–' : fmtPct1.format(x * 100) + (cfg.pctSpace ? ' %' : '%'); }
  function int(x) { return x === null || x === undefined ? '–' : fmtInt.format(x); }

  function setParam(name, value) {
    if (!window.history || !history.replaceState) { return; }
    var url = new URL(window.location.href);
    if (value === null || value === undefined || value === '') { url.searchParams.delete(name); } else { url.searchParams.set(name, value); }
    history.replaceState(null, '', url.toString());
    Array.prototype.forEach.call(document.querySelectorAll('a[data-keep-query]'), function (a) {
      var target = new URL(a.href);
      url.searchParams.forEach(function (v, k) { target.searchParams.set(k, v); });
      a.href = target.toString();
    });
  }

  /* TopoJSON (riskmap.web.topology) -> GeoJSON: arcs are delta-encoded integers on the
     transform's grid; a ring lists arc indexes, ~i meaning arc i backwards. */
  function fromTopology(topo) {
    var tf = topo.transform, sx = tf.scale[0], sy = tf.scale[1], tx = tf.translate[0], ty = tf.translate[1];
    var arcs = topo.arcs.map(function (arc) {
      var x = 0, y = 0;
      return arc.map(function (d) { x += d[0]; y += d[1]; return [x * sx + tx, y * sy + ty]; });
    });
    function ring(ids) {
      var out = [];
      ids.forEach(function (id, k) {
        var a = id < 0 ? arcs[~id].slice().reverse() : arcs[id];
        for (var i = k ? 1 : 0; i < a.length; i++) { out.push(a[i]); }
      });
      return out;
    }
    var obj = topo.objects[Object.keys(topo.objects)[0]];
    return { type: 'FeatureCollection', features: obj.geometries.map(function (g) {
      var geom = null;
      if (g.type === 'Polygon') { geom = { type: 'Polygon', coordinates: g.arcs.map(ring) }; }
      if (g.type === 'MultiPolygon') { geom = { type: 'MultiPolygon', coordinates: g.arcs.map(function (p) { return p.map(ring); }) }; }
      return { type: 'Feature', properties: g.properties, geometry: geom };
    }) };
  }

  var geometryCache = {};
  function geometry(url) {
    if (!geometryCache[url]) {
      geometryCache[url] = fetch(url, { credentials: 'same-origin' }).then(function (r) {
        if (!r.ok) { throw new Error('geometry ' + url + ': HTTP ' + r.status); }
        return r.json();
      }).then(function (data) { return data.type === 'Topology' ? fromTopology(data) : data; });
    }
    return geometryCache[url];
  }

  function line(parent, text, strong) {
    var el = document.createElement(strong ? 'strong' : 'span');
    el.textContent = text;
    parent.appendChild(el);
    if (!strong) { parent.appendChild(document.createElement('br')); }
  }

  function MapView(spec) {
    this.spec = spec;
    this.map = window[spec.var];
    this.layer = spec.layer || 'nivel';
    this.byCode = {};
    this.selected = null;
  }
  MapView.prototype.colour = function (code) {
    var v = this.spec.values[code], s = this.spec;
    if (!v) { return cfg.noData; }
    if (s.mode === 'keyed') { return s.keyColours[v[0]] || cfg.noData; }
    if (this.layer === 'nivel') { return cfg.levelColours[v[0]] || cfg.noData; }
    var idx = { probabilidad: 6, esperados: 7, incertidumbre: 8, certeza: 9 }[this.layer];
    var c = v[idx];
    return c >= 0 ? s.classColours[this.layer][c] : cfg.noData;
  };
  MapView.prototype.style = function (feature) {
    var code = feature.properties.cvegeo;
    var sel = code === this.selected;
    return { fillColor: this.colour(code), fillOpacity: 0.85, color: sel ? '#000' : '#5f6b76',
             weight: sel ? 3 : 0.5, opacity: 1 };
  };
  MapView.prototype.tooltip = function (feature) {
    var p = feature.properties, v = this.spec.values[p.cvegeo], box = document.createElement('div');
    line(box, p.nom_mun, true);
    line(box, p.nom_ent + ' · ' + p.cvegeo);
    if (!v) { line(box, T.sin_informacion || ''); return box; }
    if (this.spec.mode === 'keyed') {
      line(box, (T[v[0]] || v[0]));
      for (var i = 1; i < v.length; i++) { if (v[i]) { line(box, v[i]); } }
      return box;
    }
    line(box, (T.level || '') + ': ' + (T[v[0]] || v[0]));
    if (v[1] !== null) { line(box, (T.probability || '') + ': ' + pct(v[1]) + ' [' + pct(v[2]) + ' – ' + pct(v[3]) + ']'); }
    line(box, (T.children || '') + ': ' + int(v[4]));
    if (v[5] !== null) { line(box, (T.expected || '') + ': ' + int(v[5])); }
    if (v[10] !== null && v[10] !== undefined) { line(box, (T.certainty || '') + ': ' + pct(v[10]) + (v[10] < 0.8 ? ' (' + (T.uncertain || '') + ')' : '')); }
    return box;
  };
  MapView.prototype.draw = function (data) {
    var self = this, spec = this.spec;
    var feats = data.features.filter(function (f) {
      return !spec.estado || f.properties.cve_ent === spec.estado;
    });
    this.geo = L.geoJSON({ type: 'FeatureCollection', features: feats }, {
      style: function (f) { return self.style(f); },
      onEachFeature: function (f, lyr) {
        self.byCode[f.properties.cvegeo] = lyr;
        lyr.bindTooltip(function () { return self.tooltip(f); }, { sticky: true, className: 'rm-tip' });
        lyr.on('click', function () {
          if (spec.link) { window.location.href = spec.link.replace('__CODE__', encodeURIComponent(f.properties.cvegeo)); }
        });
      }
    }).addTo(this.map);
    window.riskmapFeatures += feats.length;
    if (spec.selected && this.byCode[spec.selected]) {
      this.select(spec.selected, spec.zoomToSelected);
    } else if (spec.fit !== false && feats.length) {
      this.map.fitBounds(this.geo.getBounds(), { padding: [12, 12], animate: false });
    }
  };
  MapView.prototype.restyle = function () {
    var self = this;
    if (this.geo) { this.geo.setStyle(function (f) { return self.style(f); }); }
  };
  MapView.prototype.select = function (code, zoom) {
    var previous = this.byCode[this.selected], lyr = this.byCode[code];
    this.selected = code;
    // Restyle only the two polygons involved; zoom first so the canvas redraws once.
    if (lyr && zoom) { this.map.fitBounds(lyr.getBounds(), { maxZoom: 9, padding: [60, 60], animate: false }); }
    var self = this;
    [previous, lyr].forEach(function (l) { if (l) { l.setStyle(self.style(l.feature)); } });
    if (lyr) { lyr.bringToFront(); }
  };

  var views = cfg.maps.map(function (spec) { return new MapView(spec); });
  var statusEl = document.getElementById('mapstatus');

  Promise.all(views.map(function (view) {
    return geometry(view.spec.geometry).then(function (data) { view.draw(data); });
  })).then(function () {
    if (statusEl) { statusEl.hidden = true; }
    window.riskmapReady = true;
  }).catch(function (err) {
    if (statusEl) { statusEl.textContent = T.mapError || 'Map unavailable'; statusEl.hidden = false; }
    console.error(err);
  });

  /* maps side by side move together (after each move ends, so drags stay smooth) */
  if (cfg.sync && views.length > 1) {
    var syncing = false;
    views.forEach(function (a) {
      a.map.on('moveend', function () {
        if (syncing) { return; }
        syncing = true;
        try {
          views.forEach(function (b) {
            if (b !== a) { b.map.setView(a.map.getCenter(), a.map.getZoom(), { animate: false }); }
          });
        } finally { syncing = false; }
      });
    });
  }

  /* layer switch + legend */
  var layerSel = document.getElementById('capa');
  function showLegend(layer) {
    Array.prototype.forEach.call(document.querySelectorAll('[data-legend]'), function (el) {
      el.hidden = el.getAttribute('data-legend') !== layer;
    });
  }
  if (layerSel) {
    layerSel.addEventListener('change', function () {
      views.forEach(function (v) { v.layer = layerSel.value; v.restyle(); });
      showLegend(layerSel.value);
      Array.prototype.forEach.call(document.querySelectorAll('[data-missing-layer]'), function (el) {
        el.hidden = el.getAttribute('data-missing-layer') !== layerSel.value;
      });
      setParam('capa', layerSel.value);
    });
  }

  /* state filter: zoom without reloading; the form still works without JavaScript */
  var stateSel = document.getElementById('estado');
  if (stateSel && cfg.states) {
    stateSel.addEventListener('change', function () {
      var st = cfg.states[stateSel.value];
      if (st && views[0]) {
        views[0].map.fitBounds(st.bounds, { padding: [10, 10], animate: false });
      } else if (views[0] && views[0].geo) {
        views[0].map.fitBounds(views[0].geo.getBounds(), { animate: false });
      }
      showStateCounts(stateSel.value);
      setParam('estado', stateSel.value);
    });
  }

  /* level counts of the chosen state, beside the national ones */
  function showStateCounts(code) {
    var box = document.getElementById('conteo-estado');
    var counts = cfg.stateCounts && cfg.stateCounts[code];
    if (!box) { return; }
    box.hidden = !counts;
    if (!counts) { return; }
    box.querySelector('[data-state-name]').textContent = cfg.states[code] ? cfg.states[code].name : code;
    Array.prototype.forEach.call(box.querySelectorAll('[data-level]'), function (el) {
      el.textContent = (counts[el.getAttribute('data-level')] || 0).toLocaleString(cfg.locale);
    });
  }

  /* accent-insensitive search by name or code, over the geometry's names */
  var q = document.getElementById('buscar');
  var results = document.getElementById('resultados');
  if (q && results && views[0]) {
    var index = null;
    q.addEventListener('input', function () {
      var view = views[0];
      if (!index && view.geo) {
        index = [];
        view.geo.eachLayer(function (lyr) {
          var p = lyr.feature.properties;
          index.push({ code: p.cvegeo, name: p.nom_mun, state: p.nom_ent, key: norm(p.nom_mun) + ' ' + p.cvegeo });
        });
      }
      var term = norm(q.value);
      results.textContent = '';
      if (!index || term.length < 2) { return; }
      index.filter(function (e) { return e.key.indexOf(term) >= 0; }).slice(0, 12).forEach(function (e) {
        var li = document.createElement('li'), b = document.createElement('button');
        b.type = 'button';
        b.textContent = e.name + ' (' + e.state + ', ' + e.code + ')';
        b.addEventListener('click', function () {
          view.select(e.code, true);
          setParam('sel', e.code);
          var info = document.getElementById('seleccion');
          if (info && view.spec.link) {
            info.textContent = '';
            var a = document.createElement('a');
            a.href = view.spec.link.replace('__CODE__', encodeURIComponent(e.code));
            a.textContent = (T.open || '') + ' ' + e.name;
            info.appendChild(a);
          }
        });
        li.appendChild(b);
        results.appendChild(li);
      });
    });
  }
})();
