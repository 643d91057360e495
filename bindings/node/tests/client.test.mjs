// The whole API against the real library and the real agentburn-server.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import * as agentburn from '../index.mjs';
import { startServer, tempDir, waitFor } from './support/server.mjs';

const { AgentBurn, ClosedError, InvalidEventError, AgentBurnError } = agentburn;

const LLM = { operation: 'llm_call', model: 'claude-3.5-sonnet', inputTokens: 12500, outputTokens: 3200 };

test('both constructor shapes deliver to the server, with every field', async (t) => {
  const server = await startServer(t);
  const bufferDir = tempDir(t);
  const positional = new AgentBurn(server.url, server.key, 'placeholder', { bufferDir, logger: null });
  const agentId = await positional.registerAgent('Node Bot', { projectId: 'node', tags: ['support'] });
  assert.match(agentId, /^agt_/);
  positional.agentId = agentId;
  const key1 = positional.track('anthropic', 0.0855, { ...LLM, taskId: 'ticket-1', workflowId: 'sprint-42', metadata: { run: { n: 1 } } });
  assert.match(key1, /^[0-9a-f-]{36}$/);

  const named = new AgentBurn({ baseUrl: server.url, apiKey: server.key, agentId, bufferDir, logger: null, flushIntervalMs: 10 });
  const when = new Date('2026-01-02T03:04:05.678Z');
  const key2 = named.track('openai', { operation: 'llm_call', model: 'gpt-4o', inputTokens: 1000, outputTokens: 100, timestamp: when, idempotencyKey: 'node-key-2' });
  assert.equal(key2, 'node-key-2');

  assert.equal(await positional.flush(30000), true);
  assert.equal(await named.flush(30000), true);
  const events = await server.waitEvents(2, { agentId });
  const first = events.find((e) => e.idempotency_key === key1);
  assert.equal(first.costUsd, 0.0855);
  assert.equal(first.taskId, 'ticket-1');
  assert.equal(first.workflowId, 'sprint-42');
  assert.equal(first.inputTokens, 12500);
  assert.deepEqual(first.metadata, { run: { n: 1 } });
  const second = events.find((e) => e.idempotency_key === 'node-key-2');
  assert.equal(second.timestamp, '2026-01-02T03:04:05.678Z');
  assert.equal(second.costSource, 'computed');
  assert.ok(Math.abs(second.costUsd - 0.0035) < 1e-12, `gpt-4o 1000 in / 100 out costs 0.0035, got ${second.costUsd}`);
  const stats = named.stats();
  assert.equal(stats.pending, 0);
  assert.equal(stats.delivered >= 1, true);
  assert.equal(await positional.close(), true);
  assert.equal(await named.close(5000), true);
});

test('trackResponse, price and lookupPrice read and price provider answers', async (t) => {
  const ab = new AgentBurn({ agentId: 'a', bufferDir: tempDir(t), logger: null });
  t.after(() => ab.close(0));
  const response = {
    id: 'chatcmpl-1', object: 'chat.completion', model: 'gpt-4o-2024-11-20',
    choices: [{ index: 0, message: { role: 'assistant', content: 'hi' }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 1000, completion_tokens: 100, total_tokens: 1100 },
  };
  const key = ab.trackResponse(response, { provider: 'openai', taskId: 't-1' });
  assert.match(key, /^[0-9a-f-]{36}$/);
  assert.match(ab.trackResponse(JSON.stringify(response)), /^[0-9a-f-]{36}$/);
  assert.match(ab.trackResponse(Buffer.from(JSON.stringify(response)), {}), /^[0-9a-f-]{36}$/);
  assert.equal(ab.stats().pending, 3);

  const price = ab.price('gpt-4o', { provider: 'openai', inputTokens: 1000, outputTokens: 100 });
  assert.equal(price.costSource, 'computed');
  assert.equal(price.priceKey, 'gpt-4o');
  assert.ok(Math.abs(price.costUsd - 0.0035) < 1e-12);
  assert.ok(Math.abs(price.breakdown.input - 0.0025) < 1e-12);
  const entry = ab.lookupPrice('gpt-4o', 'openai');
  assert.equal(entry.priceKey, 'gpt-4o');
  assert.equal(entry.usdPerMillion.input, 2.5);
  assert.equal(ab.stats().pending, 3, 'price and lookupPrice store nothing');
});

test('dead letters: listed, requeued and purged', async (t) => {
  const server = await startServer(t);
  const ab = new AgentBurn({ baseUrl: server.url, apiKey: server.key, agentId: 'agt_never_registered', bufferDir: tempDir(t), logger: null, flushIntervalMs: 10 });
  t.after(() => ab.close(0));
  const key = ab.track('openai', 0.01, { operation: 'llm_call' });
  assert.equal(await ab.flush(30000), true, 'a refused event is set aside, which ends the flush');
  const letters = await ab.deadLetters();
  assert.equal(letters.length, 1);
  assert.equal(letters[0].event.idempotency_key, key);
  assert.match(letters[0].reason, /agent/i);
  assert.deepEqual(await ab.deadLetters(0), []);
  await ab.requeueDeadLetters();
  await waitFor(async () => (await ab.deadLetters()).length === 1 && ab.stats().pending === 0, 'the requeued event set aside again');
  await ab.purgeDeadLetters();
  assert.deepEqual(await ab.deadLetters(), []);
  assert.equal(ab.stats().dead_letters, 0);
});

test('flush answers false offline and at its timeout; close answers whether all was delivered', async (t) => {
  const bufferDir = tempDir(t);
  const ab = new AgentBurn({ agentId: 'a', bufferDir, logger: null });
  ab.track('e2b', 0.002, { operation: 'compute' });
  assert.equal(await ab.flush(0), false);
  assert.equal(await ab.flush(50), false);
  assert.equal(ab.closed, false);
  const closing = ab.close(0);
  assert.equal(ab.closed, true);
  assert.equal(ab.close(5), closing, 'closing again answers the first close');
  assert.equal(await closing, false, 'offline, the event stays on disk');
  assert.throws(() => ab.track('e2b', 0.002, { operation: 'compute' }), ClosedError);
  assert.throws(() => ab.stats(), ClosedError);
  await assert.rejects(ab.flush(), ClosedError);
  await assert.rejects(ab.registerAgent('x'), ClosedError);
  await assert.rejects(ab.deadLetters(), ClosedError);

});

test('flush and registerAgent wait on a pool thread: the event loop runs meanwhile', async (t) => {
  // A server that accepts connections and never answers.
  const sockets = new Set();
  const silent = net.createServer((socket) => sockets.add(socket));
  await new Promise((resolve) => silent.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    for (const socket of sockets) socket.destroy();
    return new Promise((resolve) => silent.close(resolve));
  });
  const ab = new AgentBurn({ baseUrl: `http://127.0.0.1:${silent.address().port}`, agentId: 'a', bufferDir: tempDir(t), logger: null, registerTimeoutMs: 30000 });
  t.after(() => ab.close(0));
  ab.track('openai', 0.01, { operation: 'llm_call' });
  const turn = () => new Promise((resolve) => setImmediate(() => resolve('event loop')));
  const flushing = ab.flush(30000);
  assert.equal(await Promise.race([flushing.then(() => 'flush'), turn()]), 'event loop');
  const registering = ab.registerAgent('Waiting Bot');
  assert.equal(await Promise.race([registering.then(() => 'registerAgent'), turn()]), 'event loop');
  assert.equal(await ab.close(0), false, 'closing ends the waits');
  await assert.rejects(flushing, ClosedError);
  await registering.then(() => {}, () => {});
});

test('Symbol.asyncDispose closes the client', async (t) => {
  const ab = new AgentBurn({ agentId: 'a', bufferDir: tempDir(t), logger: null });
  const dispose = Symbol.asyncDispose || Symbol.for('nodejs.asyncDispose');
  assert.equal(typeof ab[dispose], 'function');
  await ab[dispose]();
  assert.equal(ab.closed, true);
});

test('registerAgent offline answers a provisional id, the same on every call', async (t) => {
  const ab = new AgentBurn({ bufferDir: tempDir(t), logger: null });
  t.after(() => ab.close(0));
  const id = await ab.registerAgent({ name: 'Offline Bot', projectId: 'p', description: 'd', tags: ['a', 'b'] });
  assert.match(id, /^ab-local-/);
  assert.equal(await ab.registerAgent('Offline Bot', { projectId: 'p' }), id);
  assert.match(ab.track('openai', 0.01, { operation: 'llm_call', agentId: id }), /^[0-9a-f-]{36}$/);
});

test('registerAgent: a refused key is an AuthError', async (t) => {
  const server = await startServer(t, ['--strict-auth']);
  const ab = new AgentBurn({ baseUrl: server.url, apiKey: 'wrong', bufferDir: tempDir(t), logger: null });
  t.after(() => ab.close(0));
  const err = await ab.registerAgent('Bot').then(() => null, (e) => e);
  assert.ok(err instanceof agentburn.AuthError, `got ${err}`);
  assert.equal(err.code, -8);
  assert.match(err.message, /API key/);
});

test('the logger receives the library messages; the default logger is console.warn', async (t) => {
  const seen = [];
  const ab = new AgentBurn({ agentId: 'a', bufferDir: tempDir(t), logger: (level, message) => seen.push([level, message]) });
  t.after(() => ab.close(0));
  ab.track('zzz', { operation: 'llm_call', model: 'no-such-model-anywhere', inputTokens: 5 });
  await waitFor(() => seen.length > 0, 'a log message');
  assert.equal(seen[0][0], 'warning');
  assert.match(seen[0][1], /no price known for model "no-such-model-anywhere"/);

  const warned = [];
  const original = console.warn;
  console.warn = (...args) => warned.push(args.join(' '));
  try {
    const quiet = new AgentBurn({ agentId: 'a', bufferDir: tempDir(t) });
    quiet.track('zzz', { operation: 'llm_call', model: 'another-unknown-model', inputTokens: 5 });
    await waitFor(() => warned.length > 0, 'a console.warn line');
    await quiet.close(0);
  } finally {
    console.warn = original;
  }
  assert.match(warned[0], /^agentburn: warning: .*another-unknown-model/);
});

test('errors are AgentBurnError subclasses with the code and the library message', (t) => {
  const ab = new AgentBurn({ agentId: 'a', bufferDir: tempDir(t), logger: null });
  t.after(() => ab.close(0));
  const err = (() => { try { ab.track('openai', 1, { operation: 'llm_call', inputToken: 3 }); } catch (e) { return e; } })();
  assert.ok(err instanceof InvalidEventError);
  assert.ok(err instanceof AgentBurnError);
  assert.ok(err instanceof Error);
  assert.equal(err.name, 'InvalidEventError');
  assert.equal(err.code, -1);
  assert.match(err.message, /inputToken: unknown field "inputToken"; did you mean "inputTokens"\?/);
});

test('index.d.ts declares every export', () => {
  const declarations = readFileSync(new URL('../index.d.ts', import.meta.url), 'utf8');
  const declared = new Set([...declarations.matchAll(/^export declare (?:const|function|class) (\w+)/gm)].map((m) => m[1]));
  const exported = Object.keys(agentburn).filter((name) => name !== 'default');
  assert.deepEqual([...declared].sort(), exported.sort());
  assert.match(declarations, /^export default agentburn;$/m);
});

test('the CommonJS entry gives the same objects as the ES module', () => {
  const require = createRequire(import.meta.url);
  const cjs = require('../index.cjs');
  assert.equal(cjs.AgentBurn, AgentBurn);
  assert.equal(cjs.ABI_VERSION, 1);
  assert.match(agentburn.libraryVersion(), /^\d+\.\d+\.\d+$/);
  assert.ok(agentburn.libraryPath.length > 0);
  for (const name of Object.keys(cjs)) assert.equal(agentburn[name], cjs[name], name);
});
