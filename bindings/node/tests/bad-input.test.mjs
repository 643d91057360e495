// Bad input for every function: a clear error naming what was wrong, and the client usable
// after it with nothing stored by the refused call.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AgentBurn, InvalidEventError, InvalidOptionError } from '../index.mjs';
import { tempDir } from './support/server.mjs';

function refuses(fn, pattern, Class = InvalidEventError) {
  let caught;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof Class, `expected ${Class.name}, got ${caught}`);
  assert.equal(caught.code, -1);
  assert.match(caught.message, pattern);
  return caught;
}

async function rejects(promise, pattern) {
  const caught = await promise.then(() => null, (e) => e);
  assert.ok(caught instanceof InvalidEventError, `expected InvalidEventError, got ${caught}`);
  assert.match(caught.message, pattern);
}

test('the constructor names the option at fault', (t) => {
  const bufferDir = tempDir(t);
  const cases = [
    [{ bufferDir, colour: 'red' }, /^colour: unknown option "colour"; valid options: .*bufferDir/, 'colour'],
    [{ bufferDir, durability: 'eventually' }, /^durability: must be one of "buffered", "process", "system", got "eventually"/, 'durability'],
    [{ bufferDir, flushIntervalMs: 1.5 }, /^flushIntervalMs: must be an integer, got 1.5/, 'flushIntervalMs'],
    [{ bufferDir, flushIntervalMs: -1 }, /^flushIntervalMs: must be in \[0, 2147483647\], got -1/, 'flushIntervalMs'],
    [{ bufferDir, batchMaxEvents: 5000 }, /^batchMaxEvents: .*1000/, 'batchMaxEvents'],
    [{ bufferDir, gzip: 'yes' }, /^gzip: must be a boolean, got "yes"/, 'gzip'],
    [{ bufferDir, fullPolicy: 'drop' }, /^fullPolicy: must be one of/, 'fullPolicy'],
    [{ bufferDir, retryInitialMs: 5000, retryMaxMs: 1000 }, /retry/, undefined],
    [{ bufferDir, baseUrl: 'ftp://example.com' }, /^baseUrl: /, 'baseUrl'],
    [{ bufferDir, baseUrl: 'http://example.com' }, /^baseUrl: .*http/, 'baseUrl'],
    [{ bufferDir, apiKey: 'bad\nkey' }, /^apiKey: /, 'apiKey'],
    [{ bufferDir, apiKey: 42 }, /^apiKey: must be a string, got number/, 'apiKey'],
    [{ bufferDir: '' }, /^bufferDir: must not be empty/, 'bufferDir'],
    [{ bufferDir, agentId: 7 }, /^agentId: must be a string, got 7/, 'agentId'],
    [{ bufferDir, logger: 'console' }, /^logger: must be a function/, 'logger'],
    [{ bufferDir, logLevel: 'loud' }, /^logLevel: must be one of/, 'logLevel'],
    [{ bufferDir, priceOverrides: { 'my-ft': { input: 'cheap' } } }, /priceOverrides|my-ft/, undefined],
    [{ bufferDir, priceOverrides: [1] }, /^priceOverrides: must be an object/, 'priceOverrides'],
  ];
  for (const [options, pattern, option] of cases) {
    const e = refuses(() => new AgentBurn(options), pattern, InvalidOptionError);
    if (option) assert.equal(e.option, option, JSON.stringify(options));
    assert.ok(!e.message.includes('bad\nkey'), 'the key is never repeated');
  }
  refuses(() => new AgentBurn('http://127.0.0.1:1', 'k', 'a', 'not options'), /^options: must be an object/);
  refuses(() => new AgentBurn({ bufferDir }, 'extra'), /with an options object, pass no other argument/);
  refuses(() => new AgentBurn('http://127.0.0.1:1', null, null, { baseUrl: 'http://127.0.0.1:2', bufferDir }), /^baseUrl: given both/);
});

test('track, trackResponse, price and lookupPrice name the field at fault and store nothing', async (t) => {
  const ab = new AgentBurn({ agentId: 'a', bufferDir: tempDir(t), logger: null });
  t.after(() => ab.close(0));
  const llm = { operation: 'llm_call' };
  refuses(() => ab.track(undefined, 1, llm), /provider/);
  refuses(() => ab.track(5, 1, llm), /provider/);
  refuses(() => ab.track('openai', 'cheap', llm), /^costUsd: must be a number, got "cheap"/);
  refuses(() => ab.track('openai', NaN, llm), /costUsd/);
  refuses(() => ab.track('openai', -1, llm), /costUsd/);
  refuses(() => ab.track('openai', 1, 'llm_call'), /^fields: must be an object of event fields, got "llm_call"/);
  refuses(() => ab.track('openai', 1, {}), /operation/);
  refuses(() => ab.track('openai', 1, { operation: 'thinking' }), /operation/);
  refuses(() => ab.track('openai', 1, { ...llm, inputTokens: -3 }), /inputTokens/);
  refuses(() => ab.track('openai', 1, { ...llm, inputTokens: Infinity }), /^inputTokens: must be a finite number, got Infinity/);
  refuses(() => ab.track('openai', 1, { ...llm, inputTokens: 2n ** 60n }), /^inputTokens: the BigInt .*\(2\^53\)/);
  refuses(() => ab.track('openai', 1, { ...llm, outputTokens: 1.5 }), /outputTokens/);
  refuses(() => ab.track('openai', 1, { ...llm, inputToken: 3 }), /inputToken: unknown field "inputToken"; did you mean "inputTokens"\?/);
  refuses(() => ab.track('openai', 1, { ...llm, costUsd: 2 }), /^costUsd: given twice/);
  refuses(() => ab.track('openai', 1, { ...llm, idempotencyKey: 'a', idempotency_key: 'b' }), /^idempotency_key: given twice/);
  refuses(() => ab.track('openai', 1, { ...llm, timestamp: new Date('nope') }), /^timestamp: is an invalid Date/);
  refuses(() => ab.track('openai', 1, { ...llm, timestamp: 'yesterday' }), /timestamp/);
  refuses(() => ab.track('openai', 1, { ...llm, metadata: 'text' }), /metadata/);
  refuses(() => ab.track('openai', 1, { ...llm, metadata: { run: { at: NaN } } }), /^metadata\.run\.at: must be a finite number/);
  refuses(() => ab.track('openai', 1, { ...llm, metadata: { f: () => 1 } }), /^metadata\.f: a value of type function cannot be encoded as JSON/);
  const cycle = {};
  cycle.self = cycle;
  refuses(() => ab.track('openai', 1, { ...llm, metadata: cycle }), /^metadata\.self: refers back to itself/);
  refuses(() => ab.track('openai', 1, { ...llm, metadata: { big: 'x'.repeat(20000) } }), /metadata/);
  refuses(() => ab.track('openai', 1, { ...llm, taskId: 'x'.repeat(300) }), /taskId/);
  refuses(() => ab.track('openai', 1, { ...llm, agentId: '' }), /agentId/);

  refuses(() => ab.trackResponse(42), /^response: expected a provider's response object/);
  refuses(() => ab.trackResponse(null), /^response: expected/);
  refuses(() => ab.trackResponse('{"not": "a response"}'), /./);
  refuses(() => ab.trackResponse('data: {"id":"chatcmpl-1","object":"chat.completion.chunk","model":"gpt-4o","choices":[]}\n\n', { provider: 'openai' }), /./);
  refuses(() => ab.trackResponse({ model: 'gpt-4o' }, 'openai'), /^trackResponse: the second argument must be an object/);
  refuses(() => ab.trackResponse({ model: 'gpt-4o' }, { provider: 3 }), /^provider: must be a string, got 3/);

  refuses(() => ab.price(), /^model: must be a string, got undefined/);
  refuses(() => ab.price('gpt-4o'), /^provider: is required/);
  refuses(() => ab.price('gpt-4o', 'openai'), /^price: the second argument must be an object of token counts/);
  refuses(() => ab.price('gpt-4o', { provider: 'openai', inputTokens: -1 }), /inputTokens/);
  refuses(() => ab.lookupPrice(5), /^model: must be a string, got 5/);
  refuses(() => ab.lookupPrice('gpt-4o', 5), /^provider: must be a string, got 5/);
  refuses(() => ab.lookupPrice('no-such-model-at-all', 'openai'), /nearest|no-such-model-at-all/);

  await rejects(ab.registerAgent(''), /^name: is required/);
  await rejects(ab.registerAgent(7), /^name: must be a string, got 7/);
  await rejects(ab.registerAgent('Bot', { tags: 'support' }), /^tags: must be an array of strings, got "support"/);
  await rejects(ab.registerAgent('Bot', { tags: ['ok', 3] }), /^tags\[1\]: must be a string, got 3/);
  await rejects(ab.registerAgent('Bot', { projectId: 'a\u0001b' }), /^projectId: must not contain control characters/);
  await rejects(ab.registerAgent('Bot', { owner: 'me' }), /^owner: unknown agent field/);
  await rejects(ab.registerAgent('x'.repeat(300)), /^name: is 300 bytes; the limit is 256/);
  await rejects(ab.registerAgent('Bot', 'description'), /^registerAgent: the second argument must be an object/);

  await rejects(ab.flush(-1), /^timeoutMs: must be an integer number of milliseconds/);
  await rejects(ab.flush(1.5), /^timeoutMs: /);
  await rejects(ab.flush('5'), /^timeoutMs: .*got "5"/);
  await rejects(ab.deadLetters(-1), /^limit: must be an integer >= 0, got -1/);
  await rejects(ab.deadLetters('all'), /^limit: /);
  await rejects(ab.close(-5), /^timeoutMs: /);
  assert.equal(ab.closed, false, 'a refused close leaves the client open');

  assert.equal(ab.stats().pending, 0, 'nothing was stored by the refused calls');
  assert.match(ab.track('openai', 1, llm), /^[0-9a-f-]{36}$/, 'the client is still usable');
  assert.equal(ab.stats().pending, 1);
});
