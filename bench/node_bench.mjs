#!/usr/bin/env node
// Node.js side of the benchmarks: the agentburn package's track() per event next to what a
// JavaScript user writes by hand, measured in the same run, moments apart:
//
//   - an awaited fetch POST per event to agentburn-server's /api/ingest (the baseline the
//     package must beat by at least 100x);
//   - JSON.stringify of the event and a push onto an array (track must stay within 3x).
//
// Usage: node bench/node_bench.mjs [--server PATH] [--library PATH] [--json FILE]
// Defaults: build/tools/server/agentburn-server and the package's own library search
// (AGENTBURN_LIBRARY, the install prefix, build/). Needs npm ci in bindings/node.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const flag = (name, fallback) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
if (flag('--library')) process.env.AGENTBURN_LIBRARY = flag('--library');
const { AgentBurn } = await import(path.join(ROOT, 'bindings', 'node', 'index.mjs'));

const FETCH_EVENTS = 2000;
const TRACK_EVENTS = 50000;
const WARM_UP = 1000;
const STRINGIFY_EVENTS = 200000;

// The seed SDK's usage call: what every timed loop records.
const FIELDS = { model: 'claude-3.5-sonnet', operation: 'llm_call', inputTokens: 12500, outputTokens: 3200 };

async function startServer(binary, dir) {
  const key = 'bench-key';
  const proc = spawn(binary, ['--listen', '127.0.0.1:0', '--data', path.join(dir, 'server'), '--enable-fault-injection'], {
    env: { ...process.env, AGENTBURN_API_KEY: key }, stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise((resolve, reject) => {
    let seen = '';
    proc.stdout.on('data', (chunk) => {
      seen += chunk;
      const found = /listening on (\S+)\r?\n/.exec(seen);
      if (found) resolve(found[1]);
    });
    proc.once('exit', (code) => reject(new Error(`agentburn-server exited (${code})`)));
  });
  proc.stdout.resume();
  return { proc, url, key };
}

async function api(server, method, route, body) {
  const response = await fetch(server.url + route, {
    method, headers: { 'x-api-key': server.key, 'content-type': 'application/json' }, body: body && JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`${method} ${route}: ${response.status} ${await response.text()}`);
  return response.json();
}

const perEventUs = (start, count) => Number(process.hrtime.bigint() - start) / 1000 / count;

// The median of each call timed alone (the mean of a loop counts the preemptions of a busy
// machine; the median shows the call itself). The timer's own cost is in both sides.
function medianUs(count, call) {
  const times = new Float64Array(count);
  for (let i = 0; i < count; i += 1) {
    const start = process.hrtime.bigint();
    call();
    times[i] = Number(process.hrtime.bigint() - start) / 1000;
  }
  times.sort();
  return times[count >> 1];
}

// What a user writes by hand: one awaited POST per event.
async function fetchPerEvent(server, agentId, count) {
  const before = (await api(server, 'GET', '/api/_stats')).events_stored;
  const start = process.hrtime.bigint();
  for (let i = 0; i < count; i += 1) {
    const response = await fetch(`${server.url}/api/ingest`, {
      method: 'POST', headers: { 'x-api-key': server.key, 'content-type': 'application/json' },
      body: JSON.stringify({ agentId, provider: 'anthropic', costUsd: 0.085, ...FIELDS }),
    });
    await response.arrayBuffer();
  }
  const us = perEventUs(start, count);
  const stored = (await api(server, 'GET', '/api/_stats')).events_stored - before;
  if (stored !== count) throw new Error(`the fetch baseline stored ${stored} of ${count} events`);
  return us;
}

function stringifyAndPush(agentId, count) {
  const kept = [];
  const start = process.hrtime.bigint();
  for (let i = 0; i < count; i += 1) kept.push(JSON.stringify({ agentId, provider: 'anthropic', costUsd: 0.085, ...FIELDS }));
  const us = perEventUs(start, count);
  if (kept.length !== count) throw new Error('lost a string');
  return us;
}

function trackLoop(ab, count) {
  for (let i = 0; i < WARM_UP; i += 1) ab.track('anthropic', 0.085, FIELDS);
  const start = process.hrtime.bigint();
  for (let i = 0; i < count; i += 1) ab.track('anthropic', 0.085, FIELDS);
  const mean = perEventUs(start, count);
  return { mean, p50: medianUs(count / 5, () => ab.track('anthropic', 0.085, FIELDS)) };
}

async function trackPerEvent(server, agentId, dir, options) {
  const ab = new AgentBurn({ baseUrl: server && server.url, apiKey: server && server.key, agentId, bufferDir: path.join(dir, `buffer-${Math.random().toString(36).slice(2)}`), ...options });
  const us = trackLoop(ab, TRACK_EVENTS);
  if (server) {
    if (!(await ab.flush(120000))) throw new Error('the package did not deliver every event');
  }
  await ab.close(server ? 30000 : 0);
  return us;
}

const dir = mkdtempSync(path.join(tmpdir(), 'agentburn-node-bench-'));
const server = await startServer(flag('--server', path.join(ROOT, 'build', 'tools', 'server', 'agentburn-server')), dir);
try {
  const agentId = (await api(server, 'POST', '/api/agents', { name: 'node-bench' })).id;
  await fetchPerEvent(server, agentId, 50); // warm-up: connections, JIT
  const fetchUs = await fetchPerEvent(server, agentId, FETCH_EVENTS);
  const stringifyUs = Math.min(stringifyAndPush(agentId, STRINGIFY_EVENTS), stringifyAndPush(agentId, STRINGIFY_EVENTS));
  const withServer = await trackPerEvent(server, agentId, dir, {});
  const offline = await trackPerEvent(null, agentId, dir, {});
  const buffered = await trackPerEvent(null, agentId, dir, { durability: 'buffered' });
  const stringifyAfter = stringifyAndPush(agentId, STRINGIFY_EVENTS);
  const kept = [];
  const stringifyP50 = medianUs(STRINGIFY_EVENTS / 5, () => kept.push(JSON.stringify({ agentId, provider: 'anthropic', costUsd: 0.085, ...FIELDS })));
  const rows = [
    ['Node `track` per event, process durability, delivering to the server', withServer.mean, 'awaited fetch POST per event', fetchUs, fetchUs / withServer.mean, '>= 100x faster', fetchUs / withServer.mean >= 100],
    ['Node `track` per event, process durability, offline', offline.mean, 'JSON.stringify + array push', stringifyUs, offline.mean / stringifyUs, '<= 3x', offline.mean / stringifyUs <= 3],
    ['Node `track` per event, buffered durability, offline', buffered.mean, 'JSON.stringify + array push', stringifyUs, buffered.mean / stringifyUs, '<= 3x', buffered.mean / stringifyUs <= 3],
  ];
  const fmt = (us) => (us >= 100 ? `${us.toFixed(0)} us` : `${us.toFixed(2)} us`);
  console.log('| figure | measured | baseline (same run) | ratio | target | met? |');
  console.log('|---|---|---|---|---|---|');
  for (const [figure, us, baseline, baseUs, ratio, target, met] of rows) {
    console.log(`| ${figure} | ${fmt(us)} | ${baseline} ${fmt(baseUs)} | ${ratio.toFixed(ratio >= 10 ? 0 : 2)}x | ${target} | ${met ? 'yes' : '**no**'} |`);
  }
  console.log(`JSON.stringify + push measured again after the track loops: ${fmt(stringifyAfter)}`);
  console.log(`medians of single calls: JSON.stringify + push ${fmt(stringifyP50)}; track with the server ${fmt(withServer.p50)} (the fetch mean is ${(fetchUs / withServer.p50).toFixed(0)}x it), offline ${fmt(offline.p50)} (${(offline.p50 / stringifyP50).toFixed(2)}x the stringify median), buffered ${fmt(buffered.p50)} (${(buffered.p50 / stringifyP50).toFixed(2)}x)`);
  console.log(`node ${process.version}; ${TRACK_EVENTS} tracked events per loop after ${WARM_UP} warm-up; ${FETCH_EVENTS} fetch POSTs after 50 warm-up`);
  if (flag('--json')) writeFileSync(flag('--json'), JSON.stringify({ fetchUs, stringifyUs, stringifyAfter, stringifyP50, withServer, offline, buffered }, null, 2));
} finally {
  server.proc.kill('SIGTERM');
  await new Promise((resolve) => server.proc.once('exit', resolve));
  rmSync(dir, { recursive: true, force: true });
}
