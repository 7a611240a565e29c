// The operator's picture in a real browser (Debian's chromium, driven by playwright-core):
// starts `trilink demo` (three nodes, the bundled Honshu launch in real time), opens Japan's
// node, and checks what an operator relies on — a track, an impact ellipse and an alert for
// Japan appear with plausible values, the time to impact counts down, the alert can be
// acknowledged (and the node logs it), a partner link that goes silent is shown down and then
// up again, a replay of the last minutes rebuilds the event from the log, and a node whose
// disk fills up says on its page that it takes no input.
//
//   TRILINK_BIN=target/debug/trilink node web/tests/ui.test.mjs
//
// Screenshots go to target/web-test/. Exits non-zero on the first failed check.
import { chromium } from 'playwright-core';
import { spawn, execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { createHash, X509Certificate } from 'node:crypto';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const bin = resolve(repo, process.env.TRILINK_BIN ?? 'target/debug/trilink');
const out = join(repo, 'target/web-test');
const JPN = 'https://127.0.0.1:8082';
const OPERATOR_TOKEN = 'demo-jpn-duty-officer';

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const log = (...a) => console.log(`[${new Date().toISOString().slice(11, 19)}]`, ...a);
function check(ok, what) {
  if (!ok) throw new Error(`check failed: ${what}`);
  log(`ok: ${what}`);
}

// The demo in its own directory: the repo's configs and scenarios, a fresh run/.
const dir = mkdtempSync(join(tmpdir(), 'trilink-ui-'));
cpSync(join(repo, 'config'), join(dir, 'config'), { recursive: true });
cpSync(join(repo, 'scenarios'), join(dir, 'scenarios'), { recursive: true });
symlinkSync(join(repo, 'web'), join(dir, 'web'));
const demoLog = openSync(join(out, 'demo.log'), 'w');
const demo = spawn(bin, ['demo', '--dir', dir], { detached: true, stdio: ['ignore', demoLog, demoLog] });
let browser;
let stopped = [];

async function until(what, f, timeoutMs, everyMs = 250) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
// The demo's nodes serve HTTPS with certificates of the demo's own CAs (run/pki): this test
// trusts JPN's CA for its own requests, and the browser JPN's certificate (by its key).
const jpnCa = () => readFileSync(join(dir, 'run/pki/jpn/ca.crt'));
function jpnFetch(path, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = https.get(`${JPN}${path}`, { ca: jpnCa(), headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { text += c; });
      res.on('end', () => resolve({ status: res.statusCode, ok: res.statusCode === 200, text, json: () => JSON.parse(text) }));
    });
    req.on('error', reject);
  });
}
const getJson = async (path) => (await jpnFetch(path, { Authorization: `Bearer ${OPERATOR_TOKEN}` })).json();
// The nodes this test configures itself have one user, a viewer and admin, who logs in.
const VIEWER_TOKEN = 'ui-test-viewer';
const viewerUser = ['[[user]]', 'name = "ui test"', 'roles = ["viewer", "admin"]',
  `token_sha256 = "${createHash('sha256').update(VIEWER_TOKEN).digest('hex')}"`];
// Logs in on the node's login page (its session cookie is HttpOnly: the page never sees it).
async function login(page, base, token) {
  await page.goto(`${base}/login`);
  await page.fill('input[name="token"]', token);
  await Promise.all([page.waitForURL(`${base}/`), page.click('button[type="submit"]')]);
  await page.waitForFunction(() => window.trilink !== undefined);
}
function usaPid() {
  // The USA node of this demo: `trilink node --config <dir>/config/usa.toml`.
  const pids = execFileSync('pgrep', ['-f', `${dir}/config/usa.toml`]).toString().trim().split('\n');
  return Number(pids[0]);
}
function parseTminus(text) {
  const m = /T−(\+?)(\d+):(\d\d)/.exec(text);
  if (!m) return NaN;
  const s = Number(m[2]) * 60 + Number(m[3]);
  return m[1] ? -s : s;
}

async function main() {
  await until('the demo federation', async () => {
    try { return (await jpnFetch('/healthz')).ok && readFileSync(join(out, 'demo.log'), 'utf8').includes('launches under way'); } catch { return false; }
  }, 120_000);
  log('demo up');
  // The browser trusts exactly JPN's API key (its SPKI hash), as an operator's browser would
  // trust the node's CA: no other certificate error is ignored.
  const spki = createHash('sha256')
    .update(new X509Certificate(readFileSync(join(dir, 'run/pki/jpn/api.crt'))).publicKey.export({ type: 'spki', format: 'der' }))
    .digest('base64');
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', `--ignore-certificate-errors-spki-list=${spki}`],
  });
  const page = await browser.newPage({ viewport: { width: 1366, height: 768 } });
  const consoleErrors = [];
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  // Nothing is shown before a login: the picture sends the browser to the login page, and a
  // wrong token is refused there.
  await page.goto(`${JPN}/`);
  check(page.url() === `${JPN}/login`, `an anonymous browser is sent to ${page.url()}`);
  check((await jpnFetch('/v1/tracks')).status === 401, 'the API refuses an anonymous read');
  await page.fill('input[name="token"]', 'not-a-token');
  const [refusal] = await Promise.all([
    page.waitForResponse((r) => r.url() === `${JPN}/login` && r.request().method() === 'POST'),
    page.click('button[type="submit"]'),
  ]);
  await page.waitForSelector('p[role="alert"]');
  check(refusal.status() === 401 && (await page.textContent('p[role="alert"]')).includes('not valid'),
    'a wrong token is refused on the login page');
  consoleErrors.length = 0; // the refused login's 401, which the browser reports as a failed load
  await login(page, JPN, OPERATOR_TOKEN);
  const cookies = await page.context().cookies();
  const session = cookies.find((c) => c.name === 'trilink_session');
  check(session?.httpOnly && session?.secure && session?.sameSite === 'Strict', 'the session cookie is HttpOnly, Secure and SameSite=Strict');
  check(page.url().startsWith('https:'), `the picture is served over HTTPS (${page.url()})`);
  await page.screenshot({ path: join(out, '01-opened.png') });
  check((await page.textContent('#nation')) === 'JPN', 'the page shows the JPN node');

  // A track appears, over the Sea of Japan, with sensors of more than one nation.
  await page.waitForFunction(() => window.trilink.drawn().tracks > 0, null, { timeout: 180_000 });
  const drawn = await page.evaluate(() => window.trilink.drawn());
  const p = drawn.trackPositions[0];
  check(p.lat > 30 && p.lat < 45 && p.lng > 120 && p.lng < 145, `track ${p.track} drawn at ${p.lat.toFixed(2)}, ${p.lng.toFixed(2)}`);
  const sensors = await until('sensors on the map', () => page.evaluate(() => window.trilink.drawn().sensors), 10_000);
  check(sensors > 0, `${sensors} sensors on the map`);
  await page.waitForSelector('#tracks tbody tr[data-track]');
  // The marker is painted where the track is (the track canvas' pixel there is not empty), and
  // hovering it names the track.
  const at = await page.evaluate((id) => {
    const d = window.trilink.drawn().trackPositions.find((x) => x.track === id);
    const q = window.trilink.screenPoint(d.lat, d.lng);
    const c = document.querySelector('canvas.track-canvas');
    const r = c.getBoundingClientRect(), m = document.getElementById('map').getBoundingClientRect();
    const k = c.width / r.width;
    const px = c.getContext('2d').getImageData(Math.round((m.left + q.x - r.left) * k), Math.round((m.top + q.y - r.top) * k), 1, 1).data;
    return { x: m.left + q.x, y: m.top + q.y, alpha: px[3] };
  }, p.track);
  check(at.alpha > 0, `track ${p.track}'s marker painted at ${at.x.toFixed(0)}, ${at.y.toFixed(0)}`);
  await page.mouse.move(at.x + 1, at.y);
  await page.waitForSelector(`.leaflet-tooltip:has-text("track ${p.track}")`, { timeout: 5_000 });
  check(true, `hovering the marker names track ${p.track}`);
  await page.mouse.move(5, 5);
  await page.screenshot({ path: join(out, '02-track.png') });

  // An impact ellipse and an alert for Japan.
  await page.waitForSelector('path.impact-ellipse95', { timeout: 180_000 });
  await page.waitForSelector('#alerts li.alert', { timeout: 180_000 });
  const area = await page.getAttribute('#alerts li.alert', 'data-area');
  check(area === 'Japan', `the alert names area ${area}`);
  const level = await page.getAttribute('#alerts li.alert', 'data-level');
  check(['watch', 'warning', 'impact'].includes(level), `alert level ${level}`);
  // The countdown runs on the browser clock against the predicted impact time: every reading
  // is that time less the clock. While the missile boosts and early in its ballistic flight
  // the prediction still moves (by its standard deviation, tens of seconds); once it holds for
  // a few seconds, the countdown falls a second per second.
  const parse = (t) => Date.parse(t.replace(/\.(\d{3})\d*Z$/, '.$1Z'));
  // The reading, its impact time and the clock are taken together (the page redraws the panel
  // four times a second, and the prediction may move between two separate reads).
  const readTti = async () => {
    const r = await page.evaluate(() => {
      const e = document.querySelector('#alerts li.alert .tti');
      return { at: Date.now(), text: e.textContent, impact: e.dataset.impact };
    });
    return { at: r.at, tti: parseTminus(r.text), impact: parse(r.impact) };
  };
  const first = await readTti();
  check(first.tti > 0 && first.tti < 15 * 60, `time to impact T−${first.tti} s is plausible for a medium-range missile`);
  let window;
  const deadline = Date.now() + 240_000;
  while (!window) {
    if (Date.now() > deadline) throw new Error('the impact prediction never held for four seconds');
    const samples = [];
    for (let i = 0; i < 9; i++) {
      const x = await readTti();
      if (Math.abs(x.tti - (x.impact - x.at) / 1000) > 1.5) throw new Error(`countdown shows ${x.tti} s but the prediction is ${((x.impact - x.at) / 1000).toFixed(1)} s away`);
      samples.push(x);
      await page.waitForTimeout(500);
    }
    const spread = Math.max(...samples.map((x) => x.impact)) - Math.min(...samples.map((x) => x.impact));
    if (spread <= 1000) window = samples;
  }
  const fell = window[0].tti - window[window.length - 1].tti;
  check(fell >= 2 && fell <= 6, `time to impact counts down while the prediction holds (${window.map((x) => x.tti).join(', ')} s, every 0.5 s)`);
  // The same countdown is painted beside the predicted impact point on the map.
  const both = await page.evaluate(() => {
    const a = document.querySelector('#alerts li.alert');
    const track = Number(a.querySelector('.tti').dataset.track);
    return { panel: a.querySelector('.tti').textContent, map: window.trilink.drawn().countdowns.find((c) => c.track === track)?.text };
  });
  check(both.map !== undefined && Math.abs(parseTminus(both.map) - parseTminus(both.panel)) <= 2,
    `the map shows ${both.map} beside the impact point (the panel ${both.panel})`);
  const meta = await page.textContent('#alerts li.alert .meta');
  check(/JPN|KOR|USA/.test(meta), `the alert says whose sensors contributed: ${meta.trim()}`);
  check(await page.$('#alerts li.alert.unacked') !== null, 'the new alert flashes until acknowledged');
  await page.screenshot({ path: join(out, '03-alert.png') });

  // Acknowledge, as the logged-in duty officer; the node logs who acknowledged.
  await page.click('#alerts li.alert button.ack');
  await page.waitForSelector('#alerts li.alert .acked', { timeout: 10_000 });
  const alerts = await getJson('/v1/alerts');
  const acked = alerts.alerts.find((a) => a.acknowledged);
  check(acked?.acknowledged.by === 'JPN duty officer', `the API shows the alert acknowledged by ${acked?.acknowledged.by}`);
  check(await page.$('#alerts li.alert.unacked') === null, 'the acknowledged alert stops flashing');
  let ackLogged = false;
  for (let from = 1; !ackLogged;) {
    const pageOfLog = await getJson(`/v1/log/JPN?from=${from}&limit=1000`);
    if (!pageOfLog.records.length) break;
    ackLogged = pageOfLog.records.some((r) => r.kind === 'RECORD_KIND_ALERT_ACK' && r.body.operator === 'JPN duty officer');
    from = pageOfLog.next;
  }
  check(ackLogged, 'the acknowledgement is a record in the JPN log');
  await page.screenshot({ path: join(out, '04-acknowledged.png') });

  // Cut the federation link to the hub: the USA node stops answering (SIGSTOP).
  await page.waitForSelector('#links tr[data-partner="USA"][data-state="up"]', { timeout: 30_000 });
  const pid = usaPid();
  process.kill(pid, 'SIGSTOP');
  stopped.push(pid);
  log(`USA node (pid ${pid}) stopped`);
  await page.waitForSelector('#links tr[data-partner="USA"]:not([data-state="up"])', { timeout: 60_000 });
  const state = await page.getAttribute('#links tr[data-partner="USA"]', 'data-state');
  check(state !== 'up', `the USA link is shown ${state}`);
  await page.screenshot({ path: join(out, '05-link-cut.png') });
  process.kill(pid, 'SIGCONT');
  stopped = [];
  await page.waitForSelector('#links tr[data-partner="USA"][data-state="up"]', { timeout: 60_000 });
  check(true, 'the USA link is shown up again once the hub answers');
  await page.screenshot({ path: join(out, '06-link-restored.png') });

  // Replay the last five minutes from the log at 60x.
  await page.selectOption('#replay-minutes', '5');
  await page.click('#replay-toggle');
  await page.waitForFunction(() => !document.getElementById('replay-slider').disabled, null, { timeout: 60_000 });
  const frames = await page.evaluate(() => Number(document.getElementById('replay-slider').max) + 1);
  check(frames > 100, `the replay holds ${frames} frames`);
  await page.selectOption('#replay-speed', '60');
  await page.click('#replay-play');
  await page.waitForFunction(() => window.trilink.drawn().tracks > 0, null, { timeout: 30_000 });
  check(true, 'the replay draws the track again');
  await page.screenshot({ path: join(out, '07-replay.png') });
  await page.click('#replay-toggle');
  check((await page.textContent('#mode')) === 'LIVE', 'back to the live picture');

  await fullDisk();
  await logWentBack();

  const fs = await page.evaluate(() => window.trilink.frameStats());
  log(`frame time over the run: p50 ${fs.p50_ms.toFixed(1)} ms, p99 ${fs.p99_ms.toFixed(1)} ms, max ${fs.max_ms.toFixed(1)} ms`);
  check(consoleErrors.length === 0, `no errors in the browser console${consoleErrors.length ? `: ${consoleErrors.join('; ')}` : ''}`);
}

// A full disk, for real: a node whose log lives on a 512 KiB tmpfs (mounted in a mount
// namespace of its own, so no privilege is needed and it goes with the process) takes input
// until its log cannot grow, then refuses it with 503 and the reason; its page says so.
const FULL = 'http://127.0.0.1:8093';
let fullNode;
async function fullDisk() {
  const fdir = join(dir, 'full');
  mkdirSync(join(fdir, 'data'), { recursive: true });
  execFileSync(bin, ['pki', 'init', '--nations', 'KOR', '--out', join(fdir, 'pki')], { stdio: 'ignore' });
  const token = 'full-disk-radar';
  const sha = createHash('sha256').update(token).digest('hex');
  writeFileSync(join(fdir, 'kor.toml'), [
    'nation = "KOR"', 'data_dir = "data/log"', 'signing_key = "pki/kor/node.key"',
    '[listen]', 'http = "127.0.0.1:8093"', 'grpc = "127.0.0.1:50093"', 'plain = true',
    '[web]', `dir = "${join(repo, 'web/dist')}"`,
    '[[sensor]]', 'id = "KOR-GP-1"', `token_sha256 = "${sha}"`, ...viewerUser, '',
  ].join('\n'));
  const nodeLog = openSync(join(out, 'full-disk-node.log'), 'w');
  fullNode = spawn('unshare', ['--user', '--map-root-user', '--mount', 'sh', '-c',
    'mount -t tmpfs -o size=512k tmpfs data && exec "$0" node --config kor.toml', bin],
  { cwd: fdir, stdio: ['ignore', nodeLog, nodeLog] });
  await until('the node on a small disk', async () => {
    try { return (await fetch(`${FULL}/healthz`)).ok; } catch { return false; }
  }, 30_000);
  const line = (i, k) => JSON.stringify({
    type: 'radar', time: new Date(Date.now() - k).toISOString(), sensor: 'KOR-GP-1', nation: 'KOR',
    site: { lat_deg: 36.95, lon_deg: 127.45, alt_m: 250 }, range_m: 262143 + i + k, az_rad: 1.1, el_rad: 0.12,
    sigma_range_m: 25, sigma_az_rad: 0.001, sigma_el_rad: 0.001,
  });
  let refused;
  let accepted = 0;
  for (let i = 0; i < 2000 && !refused; i++) {
    const body = Array.from({ length: 50 }, (_, k) => line(i, k)).join('\n');
    const r = await fetch(`${FULL}/v1/ingest`, { method: 'POST', body, headers: { Authorization: `Bearer ${token}` } });
    if (r.status === 200) accepted++;
    else refused = { status: r.status, error: (await r.json()).error };
  }
  check(accepted > 0 && refused?.status === 503 && /No space left on device/.test(refused.error),
    `the node took ${accepted} batches, then refused with ${refused?.status}: ${refused?.error}`);
  const page = await browser.newPage({ viewport: { width: 1366, height: 768 } });
  await login(page, FULL, VIEWER_TOKEN);
  await page.waitForSelector('#log-failed:not([hidden])', { timeout: 10_000 });
  const banner = await page.textContent('#log-failed');
  check(/^LOG FAILED/.test(banner) && /No space left on device/.test(banner), `its page says: ${banner}`);
  // However long the reason, the rest of the page keeps its place.
  const box = async (sel) => page.evaluate((q) => document.querySelector(q).getBoundingClientRect().toJSON(), sel);
  const [side, conn, detail] = [await box('#side'), await box('#conn'), await box('#log-failed-detail')];
  check(side.width > 300 && side.right <= 1366 && conn.width > 0 && conn.right <= 1366,
    `the side panel (${Math.round(side.left)}-${Math.round(side.right)} px) and the stream status stay in view`);
  const said = await page.textContent('#log-failed-detail');
  check(/No space left on device/.test(said) && detail.left >= side.left && detail.right <= side.right,
    `the side panel gives the whole reason: ${said}`);
  await page.screenshot({ path: join(out, '08-log-failed.png') });
  await page.close();
  fullNode.kill('SIGTERM');
  await new Promise((r) => { fullNode.on('exit', r); setTimeout(r, 10_000); });
  fullNode = undefined;
}

// A node whose log went back, for real: KOR sends to JPN; KOR's log is copied while KOR is
// stopped, KOR takes three more reports that JPN holds, and KOR is restarted on the old copy.
// KOR's page says, under the JPN link, that none of its records go to JPN, and why.
const BACK = { KOR: ['127.0.0.1:8094', '127.0.0.1:50094', '127.0.0.1:17094'], JPN: ['127.0.0.1:8095', '127.0.0.1:50095', '127.0.0.1:17095'] };
const backNodes = new Map();
async function logWentBack() {
  const bdir = join(dir, 'back');
  mkdirSync(bdir, { recursive: true });
  const pki = join(bdir, 'pki');
  execFileSync(bin, ['pki', 'init', '--nations', 'KOR,JPN', '--out', pki], { stdio: 'ignore' });
  const token = 'went-back-radar';
  const sha = createHash('sha256').update(token).digest('hex');
  const conf = (n, other, extra) => {
    const [http, grpc, fed] = BACK[n];
    const [lower, otherLower] = [n.toLowerCase(), other.toLowerCase()];
    writeFileSync(join(bdir, `${lower}.toml`), [
      `nation = "${n}"`, `data_dir = "${join(bdir, lower)}"`, `signing_key = "${join(pki, lower, 'node.key')}"`,
      `releasable_to = ["${other}"]`,
      '[listen]', `http = "${http}"`, `grpc = "${grpc}"`, 'plain = true',
      '[web]', `dir = "${join(repo, 'web/dist')}"`,
      '[federation]', `listen = "${fed}"`,
      `tls_cert = "${join(pki, lower, 'tls.crt')}"`, `tls_key = "${join(pki, lower, 'tls.key')}"`,
      '[[partner]]', `nation = "${other}"`, ...extra,
      `ca = "${join(pki, otherLower, 'ca.crt')}"`, `signing_key = "${join(pki, otherLower, 'node.pub')}"`,
      '[[sensor]]', `id = "${n}-GP-1"`, `nation = "${n}"`, `token_sha256 = "${sha}"`, ...viewerUser, '',
    ].join('\n'));
  };
  conf('KOR', 'JPN', []);
  conf('JPN', 'KOR', [`address = "${BACK.KOR[2]}"`]);
  const url = (n) => `http://${BACK[n][0]}`;
  const start = async (n) => {
    const nodeLog = openSync(join(out, `went-back-${n.toLowerCase()}.log`), 'a');
    backNodes.set(n, spawn(bin, ['node', '--config', join(bdir, `${n.toLowerCase()}.toml`)], { stdio: ['ignore', nodeLog, nodeLog] }));
    await until(`the ${n} node`, async () => {
      try { return (await fetch(`${url(n)}/healthz`)).ok; } catch { return false; }
    }, 30_000);
  };
  const stop = async (n) => {
    const p = backNodes.get(n);
    backNodes.delete(n);
    const exited = new Promise((r) => { p.on('exit', r); setTimeout(r, 15_000); });
    p.kill('SIGTERM');
    await exited;
  };
  const status = async (n) => (await fetch(`${url(n)}/v1/status`, { headers: { Authorization: `Bearer ${VIEWER_TOKEN}` } })).json();
  const post = async (k) => {
    const body = JSON.stringify({
      type: 'radar', time: new Date().toISOString(), sensor: 'KOR-GP-1', nation: 'KOR',
      site: { lat_deg: 36.95, lon_deg: 127.45, alt_m: 250 }, range_m: 300000 + k, az_rad: 1.1, el_rad: 0.12,
      sigma_range_m: 25, sigma_az_rad: 0.001, sigma_el_rad: 0.001,
    });
    const r = await fetch(`${url('KOR')}/v1/ingest`, { method: 'POST', body, headers: { Authorization: `Bearer ${token}` } });
    if (r.status !== 200) throw new Error(`KOR refused a report: ${r.status} ${await r.text()}`);
  };
  // JPN holds all KOR's log has: its head of KOR's records.
  const converged = async () => {
    let held = 0;
    await until('JPN to hold what KOR has', async () => {
      const [k, j] = [await status('KOR'), await status('JPN')];
      held = j.origins.find((o) => o.origin === 'KOR')?.seq ?? 0;
      return held > 0 && held === k.log.seq;
    }, 30_000);
    return held;
  };
  await start('KOR');
  await start('JPN');
  for (let k = 0; k < 3; k++) await post(k);
  const before = await converged();
  await stop('KOR');
  cpSync(join(bdir, 'kor'), join(bdir, 'kor-copy'), { recursive: true });
  await start('KOR');
  for (let k = 3; k < 6; k++) await post(k);
  const held = await converged();
  await stop('KOR');
  rmSync(join(bdir, 'kor'), { recursive: true, force: true });
  cpSync(join(bdir, 'kor-copy'), join(bdir, 'kor'), { recursive: true });
  await start('KOR');
  check(before < held, `KOR restarted on the copy from seq ${before}; JPN holds its records to ${held}`);
  const page = await browser.newPage({ viewport: { width: 1366, height: 768 } });
  await login(page, url('KOR'), VIEWER_TOKEN);
  await page.waitForSelector('#links tr[data-partner-behind="JPN"]', { timeout: 30_000 });
  const said = await page.textContent('#links tr[data-partner-behind="JPN"]');
  check(said.startsWith('NOT SENDING our records to JPN') && said.includes(`up to seq ${held}`) && said.includes('would fork'),
    `KOR's page says under the JPN link: ${said}`);
  // KOR does not dial JPN: its link to JPN is JPN's subscription, which is up.
  check(await page.getAttribute('#links tr[data-partner="JPN"]', 'data-state') === 'up', 'the JPN link is shown up (JPN dials in)');
  const box = async (sel) => page.evaluate((q) => document.querySelector(q).getBoundingClientRect().toJSON(), sel);
  const [side, row] = [await box('#side'), await box('#links tr[data-partner-behind="JPN"]')];
  check(row.left >= side.left && row.right <= side.right && side.right <= 1366, 'the reason stays inside the side panel');
  await page.screenshot({ path: join(out, '09-log-went-back.png') });
  await page.close();
  await stop('KOR');
  await stop('JPN');
}

let failed = false;
try {
  await main();
  log('ui test passed; screenshots in target/web-test/');
} catch (e) {
  failed = true;
  console.error(e);
  try {
    const pages = browser?.contexts()[0]?.pages() ?? [];
    if (pages[0]) await pages[0].screenshot({ path: join(out, 'failure.png') });
  } catch { /* the failure itself is what matters */ }
} finally {
  for (const pid of stopped) { try { process.kill(pid, 'SIGCONT'); } catch { /* gone */ } }
  fullNode?.kill('SIGKILL');
  for (const p of backNodes.values()) p.kill('SIGKILL');
  await browser?.close();
  // Ctrl-C for the demo's process group: it stops the nodes gracefully.
  try { process.kill(-demo.pid, 'SIGINT'); } catch { /* gone */ }
  await new Promise((r) => { demo.on('exit', r); setTimeout(r, 30_000); });
  rmSync(dir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
