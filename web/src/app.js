// The operator's picture: a live map of one trilink node's fused products (docs/web.md).
// Data: the node's WebSocket stream (/v1/stream: a snapshot, then changes), /v1/status every
// second for partner links and the log's health, /v1/areas once, /v1/replay for reviewing a past interval.
import L from 'leaflet';
import 'leaflet/dist/leaflet.css';
import { feature, mesh } from 'topojson-client';
import land from 'world-atlas/land-50m.json';
import countries from 'world-atlas/countries-50m.json';
import './app.css';

const PHASE_COLOUR = { boost: '#ff6a3d', midcourse: '#ffd23d', terminal: '#ff3dd2' };
const PHASES = ['boost', 'midcourse', 'terminal'];
const LEVEL_COLOUR = { watch: '#ffd23d', warning: '#ff8c1a', impact: '#ff3030' };
const LEVEL_RANK = { watch: 0, warning: 1, impact: 2 };
// The 50% ellipse is the 95% one scaled by sqrt(chi2_2(0.50) / chi2_2(0.95)).
const SCALE_50 = Math.sqrt(1.3862944 / 5.9914645);
const EARTH_R = 6371008.8;
const TRAIL_POINTS = 300;
const TRACK_ROWS = 40;

// RFC 3339 with up to nanoseconds -> ms since the epoch (Date.parse wants at most ms).
function parseTime(s) {
  if (!s) return NaN;
  return Date.parse(s.replace(/\.(\d{3})\d*Z$/, '.$1Z'));
}
const $ = (id) => document.getElementById(id);
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('data-')) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) e.append(c);
  return e;
}
function fmtDuration(s) {
  if (!Number.isFinite(s)) return '—';
  const neg = s < 0;
  s = Math.abs(Math.round(s));
  const m = Math.floor(s / 60);
  const r = String(s % 60).padStart(2, '0');
  return `${neg ? '+' : ''}${m}:${r}`;
}

// ---------------------------------------------------------------- state
const S = {
  nation: null,
  tracks: new Map(), // id -> track JSON (docs/tracks.md)
  trails: new Map(), // id -> [[t, lat, lon, alt, phase]]
  alerts: new Map(), // id -> alert JSON
  sensors: [],
  status: null,
  replay: null, // {frames, index, playing, speed}
  dirty: true,
  connected: false,
};

// ---------------------------------------------------------------- map
const map = L.map('map', { preferCanvas: true, worldCopyJump: true, zoomSnap: 0.25, minZoom: 2, maxZoom: 12 });
map.attributionControl.setPrefix(false);
map.attributionControl.addAttribution('Coastlines and borders: Natural Earth (public domain) via world-atlas');
map.fitBounds([[20, 115], [48, 150]]);
// The basemap has a canvas of its own, below the overlays: it is redrawn on pan and zoom only,
// not every time a track moves.
map.createPane('basemap').style.zIndex = 350;
const basemap = L.canvas({ padding: 0.2, pane: 'basemap' });
const canvas = L.canvas({ padding: 0.2 }); // sensors and coverage
const svg = L.svg({ padding: 0.2 });
L.geoJSON(feature(land, land.objects.land), {
  renderer: basemap, interactive: false,
  style: { color: '#3a4d63', weight: 1, fillColor: '#1b2633', fillOpacity: 1 },
}).addTo(map);
L.geoJSON(mesh(countries, countries.objects.countries, (a, b) => a !== b), {
  renderer: basemap, interactive: false, style: { color: '#4e6580', weight: 0.7, dashArray: '3 3' },
}).addTo(map);

// Tracks and their histories are drawn by the page itself on one canvas over the map: a few
// draw calls per redraw (one path per phase colour), only what is in view, and only when the
// data changed or a pan or zoom ended. Leaflet's own vector layers draw a thousand markers one
// by one, and redraw them all whenever one moves.
const TrackCanvas = L.Layer.extend({
  initialize(paint) { this._paint = paint; this._dirty = true; },
  onAdd() {
    this._canvas = L.DomUtil.create('canvas', 'leaflet-zoom-hide track-canvas');
    this.getPane().appendChild(this._canvas);
    this._dirty = true;
  },
  onRemove() { L.DomUtil.remove(this._canvas); this._canvas = null; },
  // A pan moves the canvas with the map; what it uncovers is drawn at most every 100 ms
  // (redrawing a screen-sized canvas each frame of a pan costs more than the tracks).
  getEvents() { return { move: this._moved, moveend: this.redraw, zoomend: this.redraw, resize: this.redraw, viewreset: this.redraw }; },
  _moved() { this._movedAt ??= performance.now(); },
  redraw() { this._dirty = true; return this; },
  // Called by the render loop, so at most once per animation frame.
  flush(now) {
    if (this._movedAt !== undefined && now - this._movedAt >= 100) this._dirty = true;
    if (!this._map || !this._dirty) return;
    this._dirty = false;
    this._movedAt = undefined;
    const m = this._map, c = this._canvas, size = m.getSize(), dpr = window.devicePixelRatio || 1;
    if (c.width !== Math.round(size.x * dpr) || c.height !== Math.round(size.y * dpr)) {
      c.width = Math.round(size.x * dpr); c.height = Math.round(size.y * dpr);
      c.style.width = `${size.x}px`; c.style.height = `${size.y}px`;
    }
    const topLeft = m.containerPointToLayerPoint([0, 0]);
    L.DomUtil.setPosition(c, topLeft);
    const ctx = c.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, size.x, size.y);
    // World pixel (at this zoom) of the canvas' top-left corner.
    const o = topLeft.add(m.getPixelOrigin());
    this._paint(ctx, m.getZoom(), o.x, o.y, size.x, size.y);
  },
});

// One canvas for markers and histories (each screen-sized canvas costs a composite on every
// change): the layer control's two entries are empty groups that say what it draws.
const trackCanvas = new TrackCanvas((ctx, ...view) => {
  if (map.hasLayer(layers.trails)) paintTrails(ctx, ...view);
  if (map.hasLayer(layers.tracks)) paintMarkers(ctx, ...view); else hit.n = 0;
  if (map.hasLayer(layers.ellipses)) paintCountdowns(ctx, ...view); else countdowns = [];
});

const layers = {
  areas: L.layerGroup().addTo(map),
  sensors: L.layerGroup().addTo(map),
  trails: L.layerGroup().addTo(map),
  tracks: L.layerGroup().addTo(map),
  launches: L.layerGroup().addTo(map),
  ellipses: L.layerGroup().addTo(map),
};
L.control.layers(null, {
  'Defended areas': layers.areas,
  'Sensors and coverage': layers.sensors,
  'Track history': layers.trails,
  'Tracks': layers.tracks,
  'Launch points (95%)': layers.launches,
  'Impact ellipses (50%, 95%)': layers.ellipses,
}, { collapsed: true, position: 'topright' }).addTo(map);
L.control.scale({ imperial: false }).addTo(map);
trackCanvas.addTo(map);
map.on('overlayadd overlayremove', () => trackCanvas.redraw());

let areaLayer = null;
function loadAreas() {
  fetch('/v1/areas').then((r) => r.json()).then((g) => {
    areaLayer = L.geoJSON(g, {
      renderer: svg,
      style: () => ({ color: '#3dc8ff', weight: 1.5, fillColor: '#3dc8ff', fillOpacity: 0.06, className: 'defended-area' }),
      onEachFeature: (f, l) => l.bindTooltip(`defended area: ${f.properties?.name ?? ''}`),
    });
    layers.areas.clearLayers();
    layers.areas.addLayer(areaLayer);
    S.dirty = true;
  }).catch(() => setTimeout(loadAreas, 2000));
}

// Points of an ellipse given centre, semi-axes (m) and the major axis' azimuth (deg from north).
function ellipseRing(lat, lon, a, b, azDeg, n = 72) {
  const th = (azDeg * Math.PI) / 180;
  const coslat = Math.max(Math.cos((lat * Math.PI) / 180), 1e-6);
  const out = [];
  for (let k = 0; k < n; k++) {
    const p = (2 * Math.PI * k) / n;
    const e = a * Math.cos(p) * Math.sin(th) + b * Math.sin(p) * Math.cos(th);
    const no = a * Math.cos(p) * Math.cos(th) - b * Math.sin(p) * Math.sin(th);
    out.push([lat + (no / EARTH_R) * (180 / Math.PI), lon + (e / (EARTH_R * coslat)) * (180 / Math.PI)]);
  }
  return out;
}

// Drawn state per track (a thousand tracks at 10 Hz): the latest track, its history, the
// history projected at the current zoom, and its SVG impact ellipses and launch circle.
const drawn = new Map(); // id -> {t, trail, px, e95, e50, impact, launch}
const MARKER_R = 5;
const PHASE_FILL = [PHASE_COLOUR.boost, PHASE_COLOUR.midcourse, PHASE_COLOUR.terminal, '#fff'];
let hit = { n: 0, x: new Float64Array(0), y: new Float64Array(0), ids: [], ox: 0, oy: 0 }; // markers as last drawn

function trailPixels(d, zoom) {
  const tr = d.trail;
  const key = tr.length ? `${zoom}:${tr.length}:${tr[0][0]}:${tr[tr.length - 1][0]}:${tr[tr.length - 1][1]}` : '';
  if (d.px?.key === key) return d.px;
  const n = tr.length, xy = new Float64Array(2 * n), phase = new Uint8Array(n);
  let minx = Infinity, miny = Infinity, maxx = -Infinity, maxy = -Infinity;
  for (let i = 0; i < n; i++) {
    const p = map.project([tr[i][1], tr[i][2]], zoom);
    xy[2 * i] = p.x; xy[2 * i + 1] = p.y; phase[i] = tr[i][4];
    minx = Math.min(minx, p.x); maxx = Math.max(maxx, p.x); miny = Math.min(miny, p.y); maxy = Math.max(maxy, p.y);
  }
  d.px = { key, n, xy, phase, minx, miny, maxx, maxy };
  return d.px;
}

// Histories, coloured by the phase of each leg's later point: one path per phase.
function paintTrails(ctx, zoom, ox, oy, w, h) {
  const shown = [];
  for (const d of drawn.values()) {
    const p = trailPixels(d, zoom);
    if (p.n < 2 || p.maxx < ox || p.minx > ox + w || p.maxy < oy || p.miny > oy + h) continue;
    shown.push(p);
  }
  ctx.lineWidth = 2; ctx.globalAlpha = 0.9; ctx.lineJoin = 'round';
  for (let ph = 0; ph < PHASES.length; ph++) {
    ctx.beginPath();
    for (const p of shown) {
      let open = false;
      for (let i = 1; i < p.n; i++) {
        if (p.phase[i] !== ph) { open = false; continue; }
        if (!open) { ctx.moveTo(p.xy[2 * i - 2] - ox, p.xy[2 * i - 1] - oy); open = true; }
        ctx.lineTo(p.xy[2 * i] - ox, p.xy[2 * i + 1] - oy);
      }
    }
    ctx.strokeStyle = PHASE_FILL[ph];
    ctx.stroke();
  }
  ctx.globalAlpha = 1;
}

// Markers: one filled path per phase colour, white rims in one stroke; remembered for hover.
function paintMarkers(ctx, zoom, ox, oy, w, h) {
  const n = drawn.size;
  const xs = new Float64Array(n), ys = new Float64Array(n), ph = new Uint8Array(n), ids = [];
  let k = 0;
  for (const [id, d] of drawn) {
    const p = map.project([d.t.lat_deg, d.t.lon_deg], zoom);
    const x = p.x - ox, y = p.y - oy;
    if (x < -MARKER_R || y < -MARKER_R || x > w + MARKER_R || y > h + MARKER_R) continue;
    const i = PHASES.indexOf(d.t.phase);
    xs[k] = x; ys[k] = y; ph[k] = i < 0 ? 3 : i; ids.push(id); k++;
  }
  hit = { n: k, x: xs, y: ys, ids, ox, oy };
  // The hovered track's label follows it.
  if (hoverId !== null) showHover();
  ctx.lineWidth = 1.5; ctx.strokeStyle = '#fff';
  for (let c = 0; c < PHASE_FILL.length; c++) {
    ctx.beginPath();
    let any = false;
    for (let i = 0; i < k; i++) {
      if (ph[i] !== c) continue;
      ctx.moveTo(xs[i] + MARKER_R, ys[i]);
      ctx.arc(xs[i], ys[i], MARKER_R, 0, 2 * Math.PI);
      any = true;
    }
    if (!any) continue;
    ctx.fillStyle = PHASE_FILL[c];
    ctx.fill();
    ctx.stroke();
  }
}

// Time to impact beside each predicted impact point, on the page's clock (or the replayed
// one); the canvas is repainted at least once a second while there is one.
let countdowns = []; // [{track, text}] as last painted
function paintCountdowns(ctx, zoom, ox, oy, w, h) {
  const now = nowMs();
  countdowns = [];
  ctx.font = 'bold 12px system-ui, sans-serif';
  ctx.textBaseline = 'middle';
  ctx.lineWidth = 3; ctx.lineJoin = 'round'; ctx.strokeStyle = '#0b0f14'; ctx.fillStyle = '#ff8080';
  for (const d of drawn.values()) {
    const im = d.t.impact;
    if (!im) continue;
    const p = map.project([im.lat_deg, im.lon_deg], zoom);
    const x = p.x - ox + 8, y = p.y - oy;
    if (x < -80 || y < -10 || x > w || y > h + 10) continue;
    const text = `T−${fmtDuration((parseTime(im.time) - now) / 1000)}`;
    ctx.strokeText(text, x, y);
    ctx.fillText(text, x, y);
    countdowns.push({ track: d.t.track, text });
  }
}

// Hovering a marker shows what it is (the nearest within 8 px).
const hoverTip = L.tooltip({ direction: 'top', offset: [0, -MARKER_R] });
let hoverId = null;
function showHover() {
  const x = hoverId === null ? null : drawn.get(hoverId)?.t;
  if (!x) { hoverId = null; if (map.hasLayer(hoverTip)) map.closeTooltip(hoverTip); return; }
  hoverTip.setLatLng([x.lat_deg, x.lon_deg])
    .setContent(`track ${x.track} · ${x.phase} · ${(x.alt_m / 1000).toFixed(0)} km · ${x.nations.join('+')}`
      + (x.ballistic_coeff ? ` · β ${Math.round(x.ballistic_coeff.kg_m2)} kg/m²` : ''));
  if (!map.hasLayer(hoverTip)) map.openTooltip(hoverTip);
}
map.on('mousemove', (e) => {
  // The mouse in the canvas' pixels as last drawn (a pan moves the canvas before it is redrawn).
  const o = map.containerPointToLayerPoint([0, 0]).add(map.getPixelOrigin());
  const mx = e.containerPoint.x + o.x - hit.ox, my = e.containerPoint.y + o.y - hit.oy;
  let best = -1, bestD = 64;
  for (let i = 0; i < hit.n; i++) {
    const dx = hit.x[i] - mx, dy = hit.y[i] - my, dd = dx * dx + dy * dy;
    if (dd <= bestD) { bestD = dd; best = i; }
  }
  hoverId = best >= 0 ? hit.ids[best] : null;
  showHover();
});
map.getContainer().addEventListener('mouseleave', () => { hoverId = null; showHover(); });

// Ellipses and launch circles move only when the prediction moves by about 100 m or more.
const impactKey = (im) => `${im.lat_deg.toFixed(3)},${im.lon_deg.toFixed(3)},${Math.round(im.ellipse95_semi_major_m / 50)},`
  + `${Math.round(im.ellipse95_semi_minor_m / 50)},${Math.round(im.ellipse95_major_azimuth_deg)}`;
const launchKey = (la) => `${la.lat_deg.toFixed(3)},${la.lon_deg.toFixed(3)},${Math.round(la.sd_m / 50)}`;

function drawTrack(t, trail) {
  let d = drawn.get(t.track);
  if (!d) {
    d = {};
    drawn.set(t.track, d);
  }
  d.t = t;
  d.trail = trail ?? [];
  trackCanvas.redraw();
  // Impact ellipses (SVG: few, and findable by class). Tooltips are built when shown.
  const im = t.impact;
  if (im) {
    const a = im.ellipse95_semi_major_m, b = im.ellipse95_semi_minor_m, az = im.ellipse95_major_azimuth_deg;
    const key = impactKey(im);
    if (d.impactKey !== key) {
      d.impactKey = key;
      const r95 = ellipseRing(im.lat_deg, im.lon_deg, a, b, az);
      const r50 = ellipseRing(im.lat_deg, im.lon_deg, a * SCALE_50, b * SCALE_50, az);
      if (!d.e95) {
        d.e95 = L.polygon(r95, { renderer: svg, color: '#ff3030', weight: 1.5, fillOpacity: 0.08, dashArray: '4 3', className: 'impact-ellipse95' });
        d.e50 = L.polygon(r50, { renderer: svg, color: '#ff3030', weight: 2, fillOpacity: 0.2, className: 'impact-ellipse50' });
        d.e95.bindTooltip(() => {
          const x = d.t.impact;
          if (!x) return '';
          return `track ${d.t.track} impact ${new Date(parseTime(x.time)).toISOString().slice(11, 19)}Z ± ${x.time_sd_s.toFixed(0)} s · `
            + `95%: ${(x.ellipse95_semi_major_m / 1000).toFixed(1)} × ${(x.ellipse95_semi_minor_m / 1000).toFixed(1)} km`;
        });
        d.impact = L.circleMarker([im.lat_deg, im.lon_deg], { renderer: svg, radius: 4, color: '#fff', weight: 1.5, fillColor: '#ff3030', fillOpacity: 1, className: 'impact-point' });
        layers.ellipses.addLayer(d.e95);
        layers.ellipses.addLayer(d.e50);
        layers.ellipses.addLayer(d.impact);
        d.e95.getElement?.()?.setAttribute('data-track', String(t.track));
      } else {
        d.e95.setLatLngs(r95);
        d.e50.setLatLngs(r50);
        d.impact.setLatLng([im.lat_deg, im.lon_deg]);
      }
    }
  } else if (d.e95) {
    layers.ellipses.removeLayer(d.e95); layers.ellipses.removeLayer(d.e50); layers.ellipses.removeLayer(d.impact);
    d.e95 = d.e50 = d.impact = null;
    d.impactKey = null;
  }
  const la = t.launch;
  if (la) {
    const key = launchKey(la);
    if (d.launchKey !== key) {
      d.launchKey = key;
      // 95% circle of a 2-D error with this RMS radius: sqrt(chi2_2(0.95) / 2) ≈ 1.73.
      const r = Math.max(1.73 * la.sd_m, 200);
      if (!d.launch) {
        d.launch = L.circle([la.lat_deg, la.lon_deg], { renderer: svg, radius: r, color: '#ff6a3d', weight: 1.5, fillOpacity: 0.15, className: 'launch-point' });
        d.launch.bindTooltip(() => {
          const x = d.t.launch;
          if (!x) return '';
          return `launch of track ${d.t.track} at ${new Date(parseTime(x.time)).toISOString().slice(11, 19)}Z ± ${x.time_sd_s.toFixed(1)} s, ${(x.sd_m / 1000).toFixed(1)} km RMS`;
        });
        layers.launches.addLayer(d.launch);
      } else {
        d.launch.setLatLng([la.lat_deg, la.lon_deg]);
        d.launch.setRadius(r);
      }
    }
  } else if (d.launch) {
    layers.launches.removeLayer(d.launch);
    d.launch = null;
    d.launchKey = null;
  }
}

function undrawTrack(id) {
  const d = drawn.get(id);
  if (!d) return;
  if (d.e95) { layers.ellipses.removeLayer(d.e95); layers.ellipses.removeLayer(d.e50); layers.ellipses.removeLayer(d.impact); }
  if (d.launch) layers.launches.removeLayer(d.launch);
  drawn.delete(id);
  trackCanvas.redraw();
}

let sensorKey = '';
function drawSensors() {
  const key = JSON.stringify(S.sensors.map((s) => [s.id, s.lat_deg.toFixed(2), s.lon_deg.toFixed(2), Math.round(s.observed_range_m / 1e4)]));
  if (key === sensorKey) return;
  sensorKey = key;
  layers.sensors.clearLayers();
  for (const s of S.sensors) {
    const own = s.nation === S.nation;
    const colour = own ? '#3ddc84' : '#8fb3ff';
    const tip = `${s.id} (${s.nation}${own ? '' : ', partner'}) · ${s.kind === 'radar' ? 'radar' : 'space IR'} · ${s.measurements} measurements`;
    if (s.kind === 'radar' && s.observed_range_m > 0) {
      layers.sensors.addLayer(L.circle([s.lat_deg, s.lon_deg], {
        renderer: canvas, radius: s.observed_range_m, color: colour, weight: 1, dashArray: '2 4', fill: false, interactive: false,
      }));
    }
    layers.sensors.addLayer(L.circleMarker([s.lat_deg, s.lon_deg], {
      renderer: canvas, radius: s.kind === 'radar' ? 4 : 3, color: colour, weight: 2, fillOpacity: s.kind === 'radar' ? 1 : 0,
    }).bindTooltip(tip));
  }
}

function styleAreas(alerts) {
  if (!areaLayer) return;
  const worst = new Map();
  for (const a of alerts) {
    const w = worst.get(a.area);
    if (!w || LEVEL_RANK[a.level] > LEVEL_RANK[w]) worst.set(a.area, a.level);
  }
  areaLayer.eachLayer((l) => {
    const lvl = worst.get(l.feature?.properties?.name);
    l.setStyle(lvl ? { color: LEVEL_COLOUR[lvl], fillColor: LEVEL_COLOUR[lvl], fillOpacity: 0.25, weight: 2 }
      : { color: '#3dc8ff', fillColor: '#3dc8ff', fillOpacity: 0.06, weight: 1.5 });
  });
}

// ---------------------------------------------------------------- panels
function nowMs() {
  return S.replay ? parseTime(S.replay.frames[S.replay.index]?.time) : Date.now();
}
// The alert's impact time, or its track's newer prediction when the track is in the picture
// (the node re-issues an alert only when the time moves by 5 s or more).
function impactTime(a) {
  const t = S.replay ? null : S.tracks.get(a.track);
  return t?.impact?.time ?? a.impact_time;
}
function tti(a) {
  return (parseTime(impactTime(a)) - nowMs()) / 1000;
}
function needsAck(a) {
  return !S.replay && !(a.acknowledged && LEVEL_RANK[a.acknowledged.level] >= LEVEL_RANK[a.level]);
}

let alertsKey = '';
function renderAlerts(alerts) {
  const list = $('alerts');
  const sorted = [...alerts].sort((x, y) => tti(x) - tti(y));
  const key = JSON.stringify(sorted.map((a) => [a.id, a.level, a.confidence.toFixed(2), a.acknowledged?.by, a.acknowledged?.level, a.nations]));
  if (key !== alertsKey) {
    alertsKey = key;
    list.replaceChildren(...sorted.map((a) => {
      const ack = a.acknowledged && LEVEL_RANK[a.acknowledged.level] >= LEVEL_RANK[a.level]
        ? el('span', { class: 'acked' }, `ack ${a.acknowledged.by}`)
        : S.replay ? el('span') : el('button', { type: 'button', class: 'ack', onclick: () => acknowledge(a.id) }, 'Acknowledge');
      return el('li', { class: `alert ${a.level}${needsAck(a) ? ' unacked' : ''}`, 'data-id': a.id, 'data-area': a.area, 'data-level': a.level },
        el('div', {}, el('span', { class: 'level' }, a.level), ' · ', el('span', { class: 'area' }, a.area)),
        el('div', { class: 'tti', 'data-track': String(a.track), 'data-impact': impactTime(a) }, ''),
        el('div', { class: 'meta' },
          `track ${a.track} · confidence ${(100 * a.confidence).toFixed(0)}% · ±${a.time_to_impact_sd_s.toFixed(0)} s · sensors: ${(a.nations ?? []).join(', ') || '—'} `, ack));
    }));
  }
  for (const t of list.querySelectorAll('.tti')) {
    const a = sorted.find((x) => String(x.track) === t.dataset.track);
    if (a) t.dataset.impact = impactTime(a);
    t.textContent = `T−${fmtDuration((parseTime(t.dataset.impact) - nowMs()) / 1000)}`;
  }
  $('alert-count').textContent = String(alerts.length);
  $('no-alerts').hidden = alerts.length > 0;
  styleAreas(alerts);
}

function renderTracks(tracks) {
  // Soonest impact first; the impact time is parsed once per track, not per comparison.
  const rows = tracks.map((t) => [t.impact ? parseTime(t.impact.time) : Infinity, t])
    .sort((a, b) => a[0] - b[0] || a[1].track - b[1].track).map((r) => r[1]);
  const body = $('tracks').tBodies[0];
  const now = nowMs();
  const shown = rows.slice(0, TRACK_ROWS).map((t) => el('tr', { 'data-track': String(t.track) },
    el('td', {}, String(t.track)),
    el('td', { class: `phase-${t.phase}` }, t.phase),
    el('td', {}, (t.alt_m / 1000).toFixed(0)),
    el('td', {}, t.impact ? fmtDuration((parseTime(t.impact.time) - now) / 1000) : '—'),
    el('td', {}, t.nations.join(' '))));
  if (rows.length > TRACK_ROWS) shown.push(el('tr', {}, el('td', { colSpan: 5, class: 'quiet' }, `+ ${rows.length - TRACK_ROWS} more`)));
  body.replaceChildren(...shown);
  $('track-count').textContent = String(tracks.length);
}

function renderLinks() {
  const fed = S.status?.federation;
  const body = $('links').tBodies[0];
  $('no-links').hidden = !!fed;
  if (!fed) { body.replaceChildren(); return; }
  body.replaceChildren(...fed.partners.flatMap((p) => {
    const r = p.receiving ?? {};
    // A partner this node does not dial (no `address`) only subscribes to it: that link is
    // up while the partner is connected, and nothing comes back over it.
    const dials = !!p.address;
    const state = dials ? (r.state ?? 'down') : (p.sending?.connected ? 'up' : 'down');
    const lags = Object.values(r.lag ?? {});
    const lagRecords = lags.reduce((s, l) => s + l.records, 0);
    const lagSeconds = lags.reduce((s, l) => Math.max(s, l.seconds), 0);
    const hb = r.last_heartbeat ? `${((Date.now() - parseTime(r.last_heartbeat)) / 1000).toFixed(0)} s ago` : 'never';
    const row = el('tr', { 'data-partner': p.nation, 'data-state': state },
      el('td', {}, p.nation),
      el('td', { class: `link-${state}` }, state),
      el('td', {}, dials ? `lag ${lagRecords} rec / ${lagSeconds.toFixed(1)} s` : 'it dials in'),
      el('td', { class: 'quiet' }, dials ? `heartbeat ${hb}` : 'we send only'));
    // This node's log went back: the partner holds records of ours that this log lost, so
    // none of ours go to it (docs/federation.md). Said, with the whole reason, until it clears.
    // Likewise a relayed origin whose log forked: the partner holds the other branch.
    const warn = (attr, text) => el('tr', { [attr]: p.nation }, el('td', { colSpan: 4, class: 'link-behind' }, text));
    const behind = p.sending?.own_log_behind;
    return [row,
      ...(behind ? [warn('data-partner-behind', `NOT SENDING our records to ${p.nation}: ${behind}`)] : []),
      ...Object.entries(p.sending?.forked ?? {}).map(([origin, why]) =>
        warn('data-partner-forked', `NOT RELAYING ${origin}'s records to ${p.nation}: ${why}`))];
  }));
}

function renderClock() {
  const t = new Date(nowMs());
  $('clock').textContent = Number.isFinite(t.getTime()) ? `${t.toISOString().slice(11, 19)}Z` : '--:--:--Z';
}

// ---------------------------------------------------------------- live data
function applySnapshot(m) {
  S.tracks = new Map(m.tracks.map((t) => [t.track, t]));
  S.trails = new Map(Object.entries(m.trails ?? {}).map(([id, pts]) => [Number(id), pts]));
  S.alerts = new Map(m.alerts.map((a) => [a.id, a]));
  S.sensors = m.sensors ?? [];
  for (const id of [...drawn.keys()]) if (!S.tracks.has(id)) undrawTrack(id);
  S.dirty = true;
}

const pending = new Set();
function applyMessage(m) {
  switch (m.type) {
    case 'snapshot': applySnapshot(m); break;
    case 'track': {
      const t = m.data;
      S.tracks.set(t.track, t);
      const trail = S.trails.get(t.track) ?? [];
      const ts = parseTime(t.time) / 1000;
      if (!trail.length || ts - trail[trail.length - 1][0] >= 2) {
        trail.push([ts, t.lat_deg, t.lon_deg, t.alt_m, Math.max(0, PHASES.indexOf(t.phase))]);
        if (trail.length > TRAIL_POINTS) trail.shift();
      }
      S.trails.set(t.track, trail);
      pending.add(t.track);
      break;
    }
    case 'track_deleted':
      S.tracks.delete(m.track); S.trails.delete(m.track); pending.add(m.track); break;
    case 'alert':
      if (m.change === 'withdrawn') S.alerts.delete(m.data.id); else S.alerts.set(m.data.id, m.data);
      S.dirty = true;
      break;
    case 'lagged':
      // Too slow for the stream: start over from a fresh snapshot.
      ws?.close();
      break;
    default: break;
  }
}

let ws = null;
let backoff = 500;
function connect() {
  ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/v1/stream`);
  ws.onopen = () => { S.connected = true; backoff = 500; setConn(); };
  // The live state keeps flowing in during a replay; only drawing it waits.
  ws.onmessage = (e) => applyMessage(JSON.parse(e.data));
  ws.onclose = () => {
    S.connected = false; setConn();
    setTimeout(connect, backoff);
    backoff = Math.min(backoff * 2, 5000);
  };
}
function setConn() {
  const c = $('conn');
  c.textContent = S.connected ? `stream up · ${location.host}` : 'stream DOWN — reconnecting';
  c.className = S.connected ? 'conn' : 'conn bad';
}

function pollStatus() {
  fetch('/v1/status').then((r) => r.json()).then((s) => {
    S.status = s;
    if (S.nation !== s.nation) { S.nation = s.nation; $('nation').textContent = s.nation; document.title = `trilink ${s.nation}`; sensorKey = ''; }
    renderLinks();
    // The node's log failed (a full or failing disk, a lost NATS cluster): it acknowledges
    // no input until it is back, so the picture is going stale. Said until it clears.
    const failed = s.log?.failed;
    const [lf, detail] = [$('log-failed'), $('log-failed-detail')];
    lf.hidden = !failed;
    detail.hidden = !failed;
    if (failed) {
      lf.textContent = `LOG FAILED — this node takes no input: ${failed}`;
      lf.title = failed;
      detail.textContent = `The log failed: ${failed}. Sensors' reports are refused (503) and the picture is going stale until it is back.`;
    }
  }).catch(() => {}).finally(() => setTimeout(pollStatus, 1000));
}

// Sensors move (ships, satellites) and appear as they report: refreshed every 3 s.
function pollSensors() {
  fetch('/v1/sensors').then((r) => r.json()).then((b) => {
    if (!S.replay) { S.sensors = b.sensors; S.dirty = true; }
  }).catch(() => {}).finally(() => setTimeout(pollSensors, 3000));
}

// ---------------------------------------------------------------- acknowledgement
// The session cookie (HttpOnly, got at /login) goes with every same-origin request; a
// duty officer's session may acknowledge. A session that has expired goes back to the login.
async function acknowledge(id) {
  const r = await fetch(`/v1/alerts/${encodeURIComponent(id)}/ack`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}',
  });
  if (r.status === 401) { location.assign('/login'); return; }
  const body = await r.json().catch(() => ({ error: r.statusText }));
  if (!r.ok) { alert(`acknowledgement refused: ${body.error}`); return; }
  const a = S.alerts.get(id);
  if (a) { a.acknowledged = { by: body.operator, level: body.level, at: new Date().toISOString() }; S.dirty = true; }
}

// Who is logged in, and what the roles allow: replay needs an auditor.
function loadSession() {
  fetch('/v1/session').then((r) => {
    if (r.status === 401) { location.assign('/login'); return null; }
    return r.json();
  }).then((s) => {
    if (!s) return;
    S.session = s;
    $('who').textContent = s.name;
    const auditor = s.roles.includes('auditor');
    $('replay-toggle').disabled = !auditor;
    if (!auditor) $('replay-time').textContent = 'replay needs the auditor role';
  }).catch(() => {});
}

// ---------------------------------------------------------------- replay
async function startReplay() {
  const minutes = $('replay-minutes').value;
  $('replay-time').textContent = 'rebuilding from the log…';
  const r = await fetch(`/v1/replay?minutes=${minutes}&step_s=1`);
  const body = await r.json();
  if (!r.ok) { $('replay-time').textContent = `replay refused: ${body.error}`; return; }
  S.replay = { frames: body.frames, index: 0, playing: false, last: 0, acc: 0 };
  const s = $('replay-slider');
  s.max = String(body.frames.length - 1); s.value = '0'; s.disabled = false;
  $('replay-play').disabled = false;
  $('replay-toggle').textContent = 'Back to live';
  $('mode').textContent = 'REPLAY'; $('mode').className = 'mode replay';
  for (const id of [...drawn.keys()]) undrawTrack(id);
  S.dirty = true;
}
function stopReplay() {
  S.replay = null;
  $('replay-slider').disabled = true; $('replay-play').disabled = true; $('replay-play').textContent = '▶';
  $('replay-toggle').textContent = 'Replay…';
  $('replay-time').textContent = 'live picture';
  $('mode').textContent = 'LIVE'; $('mode').className = 'mode live';
  for (const id of [...drawn.keys()]) undrawTrack(id);
  // The live state kept flowing in: draw it whole.
  for (const id of S.tracks.keys()) pending.add(id);
  S.dirty = true;
}
$('replay-toggle').onclick = () => (S.replay ? stopReplay() : startReplay());
$('replay-play').onclick = () => {
  if (!S.replay) return;
  S.replay.playing = !S.replay.playing;
  S.replay.last = performance.now();
  $('replay-play').textContent = S.replay.playing ? '❚❚' : '▶';
};
$('replay-slider').oninput = (e) => { if (S.replay) { S.replay.index = Number(e.target.value); S.dirty = true; } };

function replayFrame() {
  const R = S.replay;
  const f = R.frames[R.index];
  if (!f) return;
  const trails = new Map();
  for (let i = Math.max(0, R.index - TRAIL_POINTS * 2); i <= R.index; i += 2) {
    for (const t of R.frames[i].tracks) {
      if (!trails.has(t.track)) trails.set(t.track, []);
      trails.get(t.track).push([0, t.lat_deg, t.lon_deg, t.alt_m, Math.max(0, PHASES.indexOf(t.phase))]);
    }
  }
  const live = new Set(f.tracks.map((t) => t.track));
  for (const id of [...drawn.keys()]) if (!live.has(id)) undrawTrack(id);
  for (const t of f.tracks) drawTrack(t, trails.get(t.track));
  renderAlerts(f.alerts);
  renderTracks(f.tracks);
  $('replay-time').textContent = `${f.time.slice(0, 19)}Z  (${R.index + 1}/${R.frames.length})`;
}

// ---------------------------------------------------------------- render loop
const frameTimes = new Float64Array(4096);
let frameN = 0, lastFrame = 0, lastPanels = 0, lastSecond = 0;
function frame(now) {
  if (lastFrame) frameTimes[frameN++ % frameTimes.length] = now - lastFrame;
  lastFrame = now;
  const R = S.replay;
  if (R?.playing) {
    R.acc += ((now - R.last) / 1000) * Number($('replay-speed').value);
    R.last = now;
    if (R.acc >= 1) {
      R.index = Math.min(R.frames.length - 1, R.index + Math.floor(R.acc));
      R.acc %= 1;
      $('replay-slider').value = String(R.index);
      S.dirty = true;
      if (R.index === R.frames.length - 1) { R.playing = false; $('replay-play').textContent = '▶'; }
    }
  }
  if (R) {
    if (S.dirty) { replayFrame(); S.dirty = false; }
  } else {
    for (const id of pending) {
      const t = S.tracks.get(id);
      if (t) drawTrack(t, S.trails.get(id)); else undrawTrack(id);
    }
    if (pending.size) { pending.clear(); S.dirty = true; }
    if (S.dirty) {
      for (const [id, t] of S.tracks) if (!drawn.has(id)) drawTrack(t, S.trails.get(id));
      drawSensors();
    }
    // Panels at 4 Hz: the countdowns tick, the table follows.
    if (S.dirty || now - lastPanels > 250) {
      renderAlerts([...S.alerts.values()]);
      if (now - lastPanels > 250) renderTracks([...S.tracks.values()]);
      lastPanels = now;
      S.dirty = false;
    }
  }
  // The countdowns beside the impact points tick.
  const second = Math.floor(nowMs() / 1000);
  if (second !== lastSecond) { lastSecond = second; if (countdowns.length) trackCanvas.redraw(); }
  trackCanvas.flush(now);
  renderClock();
  requestAnimationFrame(frame);
}

// What tests and the frame-time benchmark read (window.trilink).
window.trilink = {
  state: S,
  drawn: () => ({
    tracks: drawn.size,
    ellipses95: [...drawn.values()].filter((d) => d.e95).length,
    launches: [...drawn.values()].filter((d) => d.launch).length,
    sensors: S.sensors.length,
    countdowns,
    trackPositions: [...drawn.entries()].map(([id, d]) => ({ track: id, lat: d.t.lat_deg, lng: d.t.lon_deg })),
  }),
  frameStats: () => {
    const n = Math.min(frameN, frameTimes.length);
    const v = [...frameTimes.slice(0, n)].sort((a, b) => a - b);
    const q = (p) => v[Math.min(n - 1, Math.floor(p * n))] ?? NaN;
    return { frames: n, p50_ms: q(0.5), p95_ms: q(0.95), p99_ms: q(0.99), max_ms: v[n - 1] ?? NaN, over50: v.filter((x) => x > 50).length };
  },
  resetFrameStats: () => { frameN = 0; },
  apply: applyMessage,
  // Where a position is on the map's container, in CSS pixels.
  screenPoint: (lat, lng) => map.latLngToContainerPoint([lat, lng]),
};

loadAreas();
loadSession();
pollStatus();
pollSensors();
connect();
requestAnimationFrame(frame);
