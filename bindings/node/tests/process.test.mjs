// Processes: a forked child, many clients in one process, closing at exit, finding the library.
import assert from 'node:assert/strict';
import { fork, spawnSync } from 'node:child_process';
import { cpSync, symlinkSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { AgentBurn } from '../index.mjs';
import { startServer, tempDir } from './support/server.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const PACKAGE = path.dirname(HERE);
const CHILD = path.join(HERE, 'support', 'child.mjs');

function runChild(args) {
  return new Promise((resolve, reject) => {
    const child = fork(CHILD, [JSON.stringify(args)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let message = null;
    child.on('message', (m) => { message = m; });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(message) : reject(new Error(`child exited ${code}`))));
  });
}

async function serverKeys(server, taskId, count) {
  const events = await server.waitEvents(count, { taskId });
  return new Set(events.map((e) => e.idempotency_key));
}

test('a forked child tracks and delivers beside its parent, on the same buffer root', async (t) => {
  const server = await startServer(t);
  const bufferDir = tempDir(t);
  const agentId = await (async () => {
    const ab = new AgentBurn({ baseUrl: server.url, apiKey: server.key, bufferDir, logger: null });
    const id = await ab.registerAgent('Forked Bot');
    await ab.close();
    return id;
  })();
  const options = { baseUrl: server.url, apiKey: server.key, agentId, bufferDir, flushIntervalMs: 10 };
  const parent = new AgentBurn({ ...options, logger: null });
  t.after(() => parent.close(0));
  const childRun = runChild({ options, count: 50, taskId: 'fork-child', end: 'flush' });
  const parentKeys = [];
  for (let i = 0; i < 50; i += 1) parentKeys.push(parent.track('openai', 0.001, { operation: 'llm_call', taskId: 'fork-parent' }));
  const child = await childRun;
  assert.equal(child.delivered, true);
  assert.equal(await parent.flush(30000), true);
  assert.deepEqual(await serverKeys(server, 'fork-child', 50), new Set(child.keys));
  assert.deepEqual(await serverKeys(server, 'fork-parent', 50), new Set(parentKeys));
});

test('many clients in one process deliver every event and close', async (t) => {
  const server = await startServer(t);
  const bufferDir = tempDir(t);
  const first = new AgentBurn({ baseUrl: server.url, apiKey: server.key, bufferDir, logger: null });
  const agentId = await first.registerAgent('Many Bot');
  await first.close();
  const clients = Array.from({ length: 25 }, () => new AgentBurn({ baseUrl: server.url, apiKey: server.key, agentId, bufferDir, flushIntervalMs: 10 }));
  const keys = new Set();
  for (let round = 0; round < 20; round += 1) {
    for (const ab of clients) keys.add(ab.track('anthropic', 0.002, { operation: 'llm_call', taskId: 'many' }));
  }
  assert.equal(keys.size, 500);
  assert.deepEqual(await Promise.all(clients.map((ab) => ab.flush(30000))), clients.map(() => true));
  assert.deepEqual(await serverKeys(server, 'many', 500), keys);
  assert.deepEqual(await Promise.all(clients.map((ab) => ab.close())), clients.map(() => true));
});

test('a process that ends without closing delivers at exit: at the end of its event loop, and at process.exit() without a logger', async (t) => {
  const server = await startServer(t);
  const bufferDir = tempDir(t);
  const ab = new AgentBurn({ baseUrl: server.url, apiKey: server.key, bufferDir, logger: null });
  t.after(() => ab.close(0));
  const agentId = await ab.registerAgent('Exiting Bot');
  const options = { baseUrl: server.url, apiKey: server.key, agentId, bufferDir: tempDir(t), closeTimeoutMs: 30000 };
  const natural = await runChild({ options, count: 10, taskId: 'exit-natural', end: 'natural' });
  assert.deepEqual(await serverKeys(server, 'exit-natural', 10), new Set(natural.keys));
  const exited = await runChild({ options: { ...options, logger: null }, count: 10, taskId: 'exit-call', end: 'exit' });
  assert.deepEqual(await serverKeys(server, 'exit-call', 10), new Set(exited.keys));
});

test('process.exit() with a logger leaves the client as it is: the process ends, and its events wait on disk', async (t) => {
  const bufferDir = tempDir(t);
  const exited = await runChild({ options: { agentId: 'a', bufferDir }, count: 10, taskId: 'exit-logger', end: 'exit' });
  assert.equal(exited.keys.length, 10);
  const next = new AgentBurn({ bufferDir, logger: null });
  assert.equal(next.stats().pending, 10, 'the next client takes the events over');
  await next.close(0);
});

function loadIn(dir, env) {
  return spawnSync(process.execPath, ['--input-type=module', '-e',
    `import('${path.join(dir, 'index.mjs')}').then((m) => console.log('loaded', m.libraryPath, m.libraryVersion()))`], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env }, encoding: 'utf8',
  });
}

test('the library: AGENTBURN_LIBRARY, then the install prefix, then a build tree; one error lists every place tried', (t) => {
  const library = process.env.AGENTBURN_LIBRARY;
  assert.ok(library, 'the tests run with AGENTBURN_LIBRARY set (ctest sets it)');
  // A copy of the package outside the checkout, so that no build tree is beside it.
  const copy = path.join(tempDir(t), 'agentburn');
  mkdirSync(copy);
  for (const name of ['index.mjs', 'index.cjs', 'package.json', 'lib']) cpSync(path.join(PACKAGE, name), path.join(copy, name), { recursive: true });
  symlinkSync(path.join(PACKAGE, 'node_modules'), path.join(copy, 'node_modules'));

  let run = loadIn(copy, { AGENTBURN_BUILD_DIR: path.join(copy, 'no-build') });
  assert.notEqual(run.status, 0);
  for (const place of ['AGENTBURN_LIBRARY: not set', '/usr/local/lib/libagentburn.so.1', "the dynamic loader's search path: libagentburn.so.1", `AGENTBURN_BUILD_DIR: ${path.join(copy, 'no-build', 'libagentburn.so.1')}: no such file`]) {
    assert.ok(run.stderr.includes(place), `the error names ${place}:\n${run.stderr}`);
  }
  assert.match(run.stderr, /cannot load libagentburn\. Set AGENTBURN_LIBRARY/);

  run = loadIn(copy, { AGENTBURN_LIBRARY: path.join(copy, 'package.json') });
  assert.notEqual(run.status, 0);
  assert.match(run.stderr, /AGENTBURN_LIBRARY=.*package\.json: /);
  assert.ok(!run.stderr.includes('/usr/local/lib'), 'with AGENTBURN_LIBRARY set nothing else is tried');

  run = loadIn(copy, { AGENTBURN_BUILD_DIR: path.dirname(library) });
  assert.equal(run.status, 0, run.stderr);
  assert.match(run.stdout, /^loaded .*libagentburn\.so(\.1)? \d+\.\d+\.\d+/);
});
