import * as fs from 'node:fs';
import * as path from 'node:path';
import type { TestNpmPackage } from '../../test/helpers/npm-registry';

/**
 * A small express-like project for the `express` row: an app on `mini-express` (a router, a
 * JSON body parser, a debug logger, an HTML escaper: nine packages in a three-level tree,
 * each with a few modules and a README, as small npm packages are) and a `node --test` suite
 * that starts the app on a free port and makes requests to it.
 */
export const EXPRESS_PACKAGES: readonly TestNpmPackage[] = [
  pkg('ms-lite', {}, 'module.exports = (ms) => (ms < 1000 ? `${ms}ms` : `${(ms / 1000).toFixed(1)}s`);\n'),
  pkg('mini-debug', { 'ms-lite': '1.0.0' }, debugIndex()),
  pkg(
    'escape-html-lite',
    {},
    'module.exports = (s) => String(s).replace(/[&<>"\']/g, (c) => `&#${c.charCodeAt(0)};`);\n',
  ),
  pkg('path-match-lite', {}, pathMatchIndex()),
  pkg('mini-router', { 'path-match-lite': '1.0.0' }, routerIndex()),
  pkg('content-type-lite', {}, "module.exports = (h) => String(h || '').split(';')[0].trim().toLowerCase();\n"),
  pkg('raw-body-lite', {}, rawBodyIndex()),
  pkg('mini-json-body', { 'content-type-lite': '1.0.0', 'raw-body-lite': '1.0.0' }, jsonBodyIndex()),
  pkg(
    'mini-express',
    { 'mini-router': '1.0.0', 'mini-json-body': '1.0.0', 'mini-debug': '1.0.0', 'escape-html-lite': '1.0.0' },
    expressIndex(),
  ),
];

/** Writes the app into `dir` with an .npmrc naming `registry` (a URL ending in /). */
export function writeExpressProject(dir: string, registry: string): void {
  const files: Record<string, string> = {
    'package.json': JSON.stringify(
      {
        name: 'express-like-app',
        version: '1.0.0',
        private: true,
        scripts: { test: 'node --test test/' },
        dependencies: { 'mini-express': '1.0.0' },
      },
      null,
      2,
    ),
    '.npmrc': `registry=${registry}\nfetch-retries=0\naudit=false\nfund=false\nupdate-notifier=false\n`,
    'app.js': APP,
    'test/app.test.js': APP_TEST,
  };
  for (const [name, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), content);
  }
}

function pkg(name: string, dependencies: Record<string, string>, index: string): TestNpmPackage {
  const files: Record<string, string> = {
    'index.js': index,
    'README.md': `# ${name}\n\n${'A small module of the express row. '.repeat(40)}\n`,
    LICENSE: 'MIT\n',
  };
  // A few modules beside the entry point, as small packages have (lib/, utilities, types).
  for (let i = 0; i < 4; i++)
    files[`lib/part${i}.js`] = `module.exports = function part${i}(x) { return x + ${i}; };\n`;
  files['index.d.ts'] = 'declare const m: unknown;\nexport = m;\n';
  return { name, version: '1.0.0', dependencies, files };
}

function debugIndex(): string {
  return `const ms = require('ms-lite');
module.exports = (ns) => {
  let last = Date.now();
  return (...args) => {
    const now = Date.now();
    if (process.env.DEBUG === ns) console.error(ns, ...args, '+' + ms(now - last));
    last = now;
  };
};
`;
}

function pathMatchIndex(): string {
  return `module.exports = (pattern) => {
  const names = [];
  const re = new RegExp('^' + pattern.replace(/:(\\w+)/g, (_m, n) => { names.push(n); return '([^/]+)'; }) + '$');
  return (p) => {
    const m = re.exec(p);
    if (!m) return undefined;
    return Object.fromEntries(names.map((n, i) => [n, decodeURIComponent(m[i + 1])]));
  };
};
`;
}

function routerIndex(): string {
  return `const match = require('path-match-lite');
module.exports = () => {
  const routes = [];
  const router = (req, res, next) => {
    const url = new URL(req.url, 'http://x');
    for (const r of routes) {
      const params = r.method === req.method && r.match(url.pathname);
      if (params) { req.params = params; return r.handler(req, res, next); }
    }
    next();
  };
  for (const method of ['GET', 'POST', 'PUT', 'DELETE'])
    router[method.toLowerCase()] = (p, handler) => { routes.push({ method, match: match(p), handler }); return router; };
  return router;
};
`;
}

function rawBodyIndex(): string {
  return `module.exports = (req, limit, cb) => {
  const chunks = [];
  let size = 0;
  req.on('data', (c) => { size += c.length; if (size <= limit) chunks.push(c); });
  req.on('end', () => cb(size > limit ? new Error('too large') : null, Buffer.concat(chunks)));
};
`;
}

function jsonBodyIndex(): string {
  return `const type = require('content-type-lite');
const raw = require('raw-body-lite');
module.exports = (limit = 100000) => (req, res, next) => {
  if (type(req.headers['content-type']) !== 'application/json') return next();
  raw(req, limit, (err, body) => {
    if (err) { res.statusCode = 413; return res.end(); }
    try { req.body = JSON.parse(body.toString('utf8') || 'null'); } catch { res.statusCode = 400; return res.end(); }
    next();
  });
};
`;
}

function expressIndex(): string {
  return `const http = require('node:http');
const router = require('mini-router');
const json = require('mini-json-body');
const debug = require('mini-debug')('mini-express');
const escape = require('escape-html-lite');
function app() {
  const stack = [];
  const handle = (req, res) => {
    res.json = (v) => { res.setHeader('content-type', 'application/json'); res.end(JSON.stringify(v)); };
    let i = 0;
    const next = () => {
      const layer = stack[i++];
      if (layer) return layer(req, res, next);
      res.statusCode = 404;
      res.end('Cannot ' + req.method + ' ' + escape(req.url));
    };
    debug(req.method, req.url);
    next();
  };
  handle.use = (fn) => { stack.push(fn); return handle; };
  handle.listen = (...args) => http.createServer(handle).listen(...args);
  return handle;
}
app.Router = router;
app.json = json;
module.exports = app;
`;
}

const APP = `const express = require('mini-express');
const items = new Map();
const api = express.Router()
  .get('/items/:id', (req, res) => (items.has(req.params.id) ? res.json(items.get(req.params.id)) : ((res.statusCode = 404), res.end())))
  .post('/items/:id', (req, res) => { items.set(req.params.id, req.body); res.statusCode = 201; res.json(req.body); });
module.exports = express().use(express.json()).use(api);
if (require.main === module) module.exports.listen(process.env.PORT || 3000);
`;

const APP_TEST = `const { test } = require('node:test');
const assert = require('node:assert/strict');
const app = require('../app');

async function withServer(fn) {
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  try { await fn('http://127.0.0.1:' + server.address().port); } finally { server.close(); }
}

test('stores and reads an item', () => withServer(async (base) => {
  const put = await fetch(base + '/items/a', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"n":1}' });
  assert.equal(put.status, 201);
  assert.deepEqual(await (await fetch(base + '/items/a')).json(), { n: 1 });
}));

test('a missing item is 404', () => withServer(async (base) => {
  assert.equal((await fetch(base + '/items/none')).status, 404);
}));

test('an unknown route says so, escaped', () => withServer(async (base) => {
  const res = await fetch(base + '/<x>');
  assert.equal(res.status, 404);
  assert.match(await res.text(), /Cannot GET \\/(%3Cx%3E|&#60;x&#62;)/);
}));
`;
