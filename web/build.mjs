// Builds the operator picture into dist/ (served by the node at / and /ui/*): one bundle of
// the app, Leaflet and the offline basemap (world-atlas, Natural Earth), one stylesheet, and
// index.html. Output is deterministic for a given package-lock.json.
import * as esbuild from 'esbuild';
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';

rmSync('dist', { recursive: true, force: true });
mkdirSync('dist');
await esbuild.build({
  entryPoints: ['src/app.js'],
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['chrome110', 'firefox110'],
  outdir: 'dist',
  entryNames: '[name]',
  assetNames: '[name]-[hash]',
  loader: { '.png': 'file', '.svg': 'file' },
  legalComments: 'linked',
  logLevel: 'warning',
});
copyFileSync('src/index.html', 'dist/index.html');
console.log('web UI built in dist/');
