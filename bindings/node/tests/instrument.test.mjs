// Instrumentation against the real openai and @anthropic-ai/sdk packages, pointed at a local
// server that answers as those APIs document; the tracked events are read back from the real
// agentburn-server.
import assert from 'node:assert/strict';
import { before, after, test as nodeTest } from 'node:test';
import { AgentBurn, InvalidEventError, withAgentBurn, currentContext, instrument } from '../index.mjs';
import { startLlmServer } from './support/llm-server.mjs';
import { startServer, tempDir } from './support/server.mjs';

// The SDKs support Node.js 20 and newer: on an older Node.js these tests are skipped, saying so.
const SDK_SKIP = Number(process.versions.node.split('.')[0]) < 20 &&
  `the openai and @anthropic-ai/sdk packages need Node.js 20 or newer (this is ${process.version})`;
const test = (name, fn) => nodeTest(name, { skip: SDK_SKIP }, fn);
let OpenAI;
let Anthropic;

// One server, one LLM server and one client for the file; each test tracks under a task id of
// its own and reads back only its events.
const suite = { cleanups: [] };
const fileScope = { after: (fn) => suite.cleanups.push(fn) };
let ab;
let server;
let llm;
const logged = [];

before(async () => {
  if (SDK_SKIP) return;
  OpenAI = (await import('openai')).default;
  Anthropic = (await import('@anthropic-ai/sdk')).default;
  server = await startServer(fileScope);
  llm = await startLlmServer(fileScope);
  ab = new AgentBurn({ baseUrl: server.url, apiKey: server.key, bufferDir: tempDir(fileScope), flushIntervalMs: 10, logger: (level, message) => logged.push([level, message]) });
  ab.agentId = await ab.registerAgent('Instrumented Bot', { projectId: 'node-instrument' });
});

after(async () => {
  if (ab) await ab.close(0);
  for (const fn of suite.cleanups.reverse()) await fn();
});

const openai = () => new OpenAI({ apiKey: 'sk-test', baseURL: `${llm.url}/v1`, maxRetries: 0 });
const anthropic = () => new Anthropic({ apiKey: 'sk-ant-test', baseURL: llm.url, maxRetries: 0 });
const close = (a, b) => Math.abs(a - b) < 1e-12;

async function trackedEvents(taskId, count) {
  assert.equal(await ab.flush(30000), true);
  const events = await server.waitEvents(count, { taskId });
  assert.equal(events.length, count, `exactly ${count} events for ${taskId}`);
  return events;
}

function assertChatEvent(e) {
  assert.equal(e.provider, 'openai');
  assert.equal(e.model, 'gpt-4o');
  assert.equal(e.operation, 'llm_call');
  assert.equal(e.inputTokens, 1200);
  assert.equal(e.outputTokens, 300);
  assert.equal(e.cachedInputTokens, 200);
  assert.equal(e.costSource, 'computed');
  // 1000 uncached x $2.50/M + 200 cached x $1.25/M + 300 out x $10/M
  assert.ok(close(e.costUsd, 0.00575), `cost ${e.costUsd}`);
  assert.ok(close(e.costUsd, ab.price('gpt-4o', { provider: 'openai', inputTokens: 1200, cachedInputTokens: 200, outputTokens: 300 }).costUsd));
}

test('openai chat.completions.create: the same answer, tracked with usage and price', async () => {
  const plain = await openai().chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'Hi' }] });
  const client = ab.instrument(openai(), { taskId: 'chat-plain', workflowId: 'wf-1' });
  assert.ok(client instanceof OpenAI);
  const answer = await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'Hi' }] });
  assert.deepEqual(JSON.parse(JSON.stringify(answer)), JSON.parse(JSON.stringify(plain)));
  const { data, response, request_id: requestId } = await client.chat.completions
    .create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'Hi' }] }).withResponse();
  assert.equal(response.status, 200);
  assert.equal(requestId, 'req_test');
  assert.equal(data.choices[0].message.content, 'Hello.');
  const events = await trackedEvents('chat-plain', 2);
  for (const e of events) {
    assertChatEvent(e);
    assert.equal(e.workflowId, 'wf-1');
    assert.equal(e.agentId, ab.agentId);
  }
});

test('openai chat stream: include_usage is added, the chunks pass unchanged, the usage is tracked', async () => {
  const client = ab.instrument(openai(), { taskId: 'chat-stream' });
  const seen = llm.requests.length;
  const stream = await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'Hi' }], stream: true });
  let text = '';
  let chunks = 0;
  for await (const chunk of stream) {
    chunks += 1;
    text += chunk.choices[0]?.delta?.content || '';
  }
  assert.equal(text, 'Hello.');
  assert.equal(chunks, 5, 'four content chunks and the usage chunk');
  assert.deepEqual(llm.requests[seen].body.stream_options, { include_usage: true });
  assertChatEvent((await trackedEvents('chat-stream', 1))[0]);
});

test('openai chat stream with includeUsage off: the request is left alone, the event is unpriced', async () => {
  const client = ab.instrument(openai(), { taskId: 'chat-no-usage', includeUsage: false });
  const seen = llm.requests.length;
  const stream = await client.chat.completions.create({ model: 'gpt-4o', messages: [], stream: true });
  for await (const chunk of stream) assert.ok(chunk);
  assert.equal(llm.requests[seen].body.stream_options, undefined);
  const [e] = await trackedEvents('chat-no-usage', 1);
  assert.equal(e.costSource, 'unpriced');
  assert.equal(e.costUsd, 0);
  assert.equal(e.model, 'gpt-4o');
  assert.equal(e.metadata.agentburn.stream, 'ended without usage');
});

test('openai responses.create, streamed and not', async () => {
  const client = ab.instrument(openai(), { taskId: 'responses' });
  const answer = await client.responses.create({ model: 'gpt-4o', input: 'Hi' });
  assert.equal(answer.output_text, 'Hello.');
  const stream = await client.responses.create({ model: 'gpt-4o', input: 'Hi', stream: true });
  const types = [];
  for await (const event of stream) types.push(event.type);
  assert.deepEqual(types, ['response.created', 'response.output_text.delta', 'response.completed']);
  const events = await trackedEvents('responses', 2);
  for (const e of events) {
    assert.equal(e.inputTokens, 2000);
    assert.equal(e.outputTokens, 500);
    assert.equal(e.reasoningTokens, 100);
    // 2000 in x $2.50/M + 400 out x $10/M + 100 reasoning x $10/M
    assert.ok(close(e.costUsd, 0.01), `cost ${e.costUsd}`);
  }
});

function assertMessagesEvent(e) {
  assert.equal(e.provider, 'anthropic');
  assert.equal(e.model, 'claude-sonnet-4-5');
  assert.equal(e.inputTokens, 2000, 'all input: uncached, cache reads and cache writes');
  assert.equal(e.cachedInputTokens, 1000);
  assert.equal(e.cacheWriteInputTokens, 100);
  assert.equal(e.outputTokens, 400);
  // 900 x $3/M + 1000 cache reads x $0.30/M + 100 cache writes x $3.75/M + 400 x $15/M
  assert.ok(close(e.costUsd, 0.009375), `cost ${e.costUsd}`);
}

test('anthropic messages.create, streamed and not', async () => {
  const client = ab.instrument(anthropic(), { taskId: 'messages' });
  assert.ok(client instanceof Anthropic);
  const answer = await client.messages.create({ model: 'claude-sonnet-4-5', max_tokens: 100, messages: [{ role: 'user', content: 'Hi' }] });
  assert.equal(answer.content[0].text, 'Hello.');
  const stream = await client.messages.create({ model: 'claude-sonnet-4-5', max_tokens: 100, messages: [{ role: 'user', content: 'Hi' }], stream: true });
  const types = [];
  for await (const event of stream) types.push(event.type);
  assert.deepEqual(types, ['message_start', 'content_block_start', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop']);
  for (const e of await trackedEvents('messages', 2)) assertMessagesEvent(e);
});

test('errors pass through unchanged and nothing is tracked', async () => {
  const client = ab.instrument(openai(), { taskId: 'errors' });
  const plainError = await openai().chat.completions.create({ model: 'gpt-4o', messages: [] }, { headers: { 'x-test-answer': 'error-400' } }).catch((e) => e);
  const error = await client.chat.completions.create({ model: 'gpt-4o', messages: [] }, { headers: { 'x-test-answer': 'error-400' } }).catch((e) => e);
  assert.ok(error instanceof OpenAI.BadRequestError);
  assert.equal(error.constructor, plainError.constructor);
  assert.equal(error.message, plainError.message);
  const limited = await ab.instrument(anthropic(), { taskId: 'errors' }).messages
    .create({ model: 'claude-sonnet-4-5', max_tokens: 10, messages: [] }, { headers: { 'x-test-answer': 'error-429' } }).catch((e) => e);
  assert.ok(limited instanceof Anthropic.RateLimitError);
  // A marker call after the failures: once it is at the server, nothing else was tracked.
  await client.chat.completions.create({ model: 'gpt-4o', messages: [] });
  assert.equal((await trackedEvents('errors', 1))[0].inputTokens, 1200);
});

test('a cut stream throws as it would, and is tracked unpriced with what is known', async () => {
  const chat = ab.instrument(openai(), { taskId: 'cut' });
  const stream = await chat.chat.completions.create({ model: 'gpt-4o', messages: [], stream: true }, { headers: { 'x-test-answer': 'cut' } });
  const failure = await (async () => { for await (const chunk of stream) assert.ok(chunk); })().then(() => null, (e) => e);
  assert.ok(failure instanceof Error, 'the cut reaches the caller');
  const messages = ab.instrument(anthropic(), { taskId: 'cut' });
  const stream2 = await messages.messages.create({ model: 'claude-sonnet-4-5', max_tokens: 10, messages: [], stream: true }, { headers: { 'x-test-answer': 'cut' } });
  const failure2 = await (async () => { for await (const event of stream2) assert.ok(event); })().then(() => null, (e) => e);
  assert.ok(failure2 instanceof Error);
  const events = await trackedEvents('cut', 2);
  for (const e of events) {
    assert.equal(e.costSource, 'unpriced');
    assert.equal(e.metadata.agentburn.stream, 'failed before its usage');
  }
  const anthropicEvent = events.find((e) => e.provider === 'anthropic');
  assert.equal(anthropicEvent.model, 'claude-sonnet-4-5');
  assert.equal(anthropicEvent.metadata.agentburn.usage.input_tokens, 900, 'message_start told the input');
  assert.equal(events.find((e) => e.provider === 'openai').model, 'gpt-4o');
});

test('a stream abandoned before its usage is tracked unpriced', async () => {
  const client = ab.instrument(openai(), { taskId: 'abandoned' });
  const stream = await client.chat.completions.create({ model: 'gpt-4o', messages: [], stream: true });
  for await (const chunk of stream) {
    assert.ok(chunk);
    break;
  }
  const [e] = await trackedEvents('abandoned', 1);
  assert.equal(e.costSource, 'unpriced');
  assert.equal(e.metadata.agentburn.stream, 'abandoned before its usage');
});

test('withAgentBurn sets the fields of the calls inside it, across awaits', async () => {
  const client = ab.instrument(openai(), { taskId: 'outer-default', workflowId: 'wf-default' });
  assert.deepEqual(currentContext(), {});
  await Promise.all(['ctx-a', 'ctx-b'].map((taskId) => withAgentBurn({ taskId }, async () => {
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(currentContext().taskId, taskId);
    await withAgentBurn({ workflowId: `wf-${taskId}` }, () => client.chat.completions.create({ model: 'gpt-4o', messages: [] }));
  })));
  for (const taskId of ['ctx-a', 'ctx-b']) {
    const [e] = await trackedEvents(taskId, 1);
    assert.equal(e.workflowId, `wf-${taskId}`);
  }
});

test('the exported instrument(ab, client) is ab.instrument(client); the rest of the client is untouched', async () => {
  const real = openai();
  const client = instrument(ab, real, { taskId: 'export' });
  assert.equal(client.baseURL, real.baseURL);
  assert.equal(client.apiKey, 'sk-test');
  assert.equal(typeof client.models.list, 'function');
  await client.chat.completions.create({ model: 'gpt-4o', messages: [] });
  assertChatEvent((await trackedEvents('export', 1))[0]);
});

test('bad input to instrument and withAgentBurn is refused, naming what was wrong', () => {
  assert.throws(() => ab.instrument({}), { name: 'InvalidEventError', message: /client: expected an openai client/ });
  assert.throws(() => ab.instrument(null), InvalidEventError);
  assert.throws(() => ab.instrument(openai(), { taskid: 'x' }), { message: /taskid: unknown instrument option/ });
  assert.throws(() => ab.instrument(openai(), { taskId: 5 }), { message: /taskId: must be a string, got 5/ });
  assert.throws(() => ab.instrument(openai(), { includeUsage: 'no' }), { message: /includeUsage: must be a boolean/ });
  assert.throws(() => withAgentBurn('task', () => {}), { message: /withAgentBurn: must be an object/ });
  assert.throws(() => withAgentBurn({ taskId: 't' }), { message: /withAgentBurn: the second argument must be a function/ });
  assert.throws(() => withAgentBurn({ budget: 't' }, () => {}), { message: /budget: unknown withAgentBurn option/ });
  assert.deepEqual(logged.filter(([, message]) => /not tracked/.test(message)), [], 'every call above was tracked');
});
