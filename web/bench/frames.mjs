// Frame time of the operator picture with many live tracks, in headless Debian chromium.
//
//   node web/bench/frames.mjs [TRACKS=1000] [SECONDS=20]
//
// Serves web/dist with the API's static answers (status, areas) from a small local server,
// opens the page at 1366x768, then feeds it what a node's stream carries for TRACKS tracks
// (each refreshed ten times a second, as the node publishes at most; one in ten with an impact
// prediction and its ellipses) through window.trilink.apply, and reads the browser's
// animation-frame intervals (window.trilink.frameStats). The peer measured in the same run is
// the same page with no tracks: the ratio is what the tracks cost. Prints one table.
import { chromium } from 'playwright-core';
import { createServer } from 'node:http';
import { readFileSync, existsSync } from 'node:fs';
import { dirname, join, resolve, extname } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const dist = join(repo, 'web/dist');
const TRACKS = Number(process.argv[2] ?? 1000);
const SECONDS = Number(process.argv[3] ?? 20);
if (!existsSync(join(dist, 'index.html'))) throw new Error('build the UI first: cd web && npm ci && npm run build');

const types = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.png': 'image/png' };
const server = createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  if (url.pathname === '/v1/status') {
    res.setHeader('Content-Type', 'application/json');
    return res.end(JSON.stringify({ nation: 'JPN', federation: null }));
  }
  if (url.pathname === '/v1/areas') {
    res.setHeader('Content-Type', 'application/json');
    return res.end(readFileSync(join(repo, 'config/areas/japan.geojson')));
  }
  const file = url.pathname === '/' ? 'index.html' : url.pathname.replace(/^\/ui\//, '');
  if (!/^[\w.-]+$/.test(file) || !existsSync(join(dist, file))) { res.statusCode = 404; return res.end(); }
  res.setHeader('Content-Type', types[extname(file)] ?? 'application/octet-stream');
  res.end(readFileSync(join(dist, file)));
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const base = `http://127.0.0.1:${server.address().port}`;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});

async function measure(tracks) {
  const page = await browser.newPage({ viewport: { width: 1366, height: 768 } });
  await page.goto(`${base}/`);
  await page.waitForFunction(() => window.trilink !== undefined);
  // The feed runs inside the page, on a timer, as WebSocket messages would arrive.
  await page.evaluate(([n]) => {
    const t0 = Date.now();
    window.__feed = setInterval(() => {
      const now = Date.now();
      const s = (now - t0) / 1000;
      for (let i = 0; i < n; i++) {
        // Tracks fanned out from the Korean peninsula towards Japan, moving along their line.
        const lat0 = 38 + (i % 20) * 0.1, lon0 = 125.5 + Math.floor(i / 20) % 10 * 0.1;
        const dir = (i * 137.5) % 60 - 30;
        const k = (s * 3 + i % 50) / 600;
        const lat = lat0 + k * 4 * Math.sin((dir * Math.PI) / 180);
        const lon = lon0 + k * 14;
        const phase = k < 0.1 ? 'boost' : k < 0.8 ? 'midcourse' : 'terminal';
        const t = {
          track: i + 1, time: new Date(now).toISOString(), lat_deg: lat, lon_deg: lon, alt_m: 300000 * Math.sin(Math.PI * Math.min(k, 1)),
          phase, nations: ['JPN', 'KOR'], pos_sd_m: 100,
        };
        if (i % 10 === 0) {
          t.impact = { lat_deg: lat0 + 4 * Math.sin((dir * Math.PI) / 180), lon_deg: lon0 + 14, time: new Date(now + 300000).toISOString(),
            time_sd_s: 3, ellipse95_semi_major_m: 20000, ellipse95_semi_minor_m: 8000, ellipse95_major_azimuth_deg: 80 };
          t.launch = { lat_deg: lat0, lon_deg: lon0, time: new Date(t0).toISOString(), time_sd_s: 1, sd_m: 500 };
        }
        window.trilink.apply({ type: 'track', data: t });
      }
    }, 100);
  }, [tracks]);
  // Let trails build up, then measure while the operator pans and zooms.
  await page.waitForTimeout(5000);
  await page.evaluate(() => window.trilink.resetFrameStats());
  const end = Date.now() + SECONDS * 1000;
  let step = 0;
  while (Date.now() < end) {
    await page.mouse.move(500, 400);
    await page.mouse.down();
    await page.mouse.move(500 + (step % 2 ? 80 : -80), 400 + (step % 2 ? 40 : -40), { steps: 10 });
    await page.mouse.up();
    if (step % 4 === 0) await page.mouse.wheel(0, step % 8 === 0 ? -200 : 200);
    await page.waitForTimeout(400);
    step++;
  }
  const stats = await page.evaluate(() => ({ ...window.trilink.frameStats(), drawn: window.trilink.drawn().tracks }));
  await page.close();
  return stats;
}

const idle = await measure(0);
const busy = await measure(TRACKS);
await browser.close();
server.close();
const row = (name, s) => `| ${name} | ${s.drawn} | ${s.frames} | ${s.p50_ms.toFixed(1)} | ${s.p95_ms.toFixed(1)} | ${s.p99_ms.toFixed(1)} | ${s.max_ms.toFixed(1)} | ${s.over50} |`;
console.log(`frame time, ${SECONDS} s of panning and zooming at 1366x768, headless chromium (software rendering)`);
console.log('| page | tracks drawn | frames | p50 ms | p95 ms | p99 ms | max ms | frames > 50 ms |');
console.log('|---|---|---|---|---|---|---|---|');
console.log(row('no tracks (peer)', idle));
console.log(row(`${TRACKS} tracks, 10 updates/s each`, busy));
console.log(`ratio p50 ${(busy.p50_ms / idle.p50_ms).toFixed(2)}x, p95 ${(busy.p95_ms / idle.p95_ms).toFixed(2)}x, p99 ${(busy.p99_ms / idle.p99_ms).toFixed(2)}x; frames per second ${(1000 / busy.p50_ms).toFixed(0)} at p50`);
