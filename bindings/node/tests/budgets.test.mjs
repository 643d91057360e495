// Budgets: reserve, settle through track, release, check, budgets, the alert, and instrument's
// reserve, which stops a call before its request is sent.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AgentBurn, BudgetExceededError, InvalidEventError, InvalidOptionError, Reservation } from '../index.mjs';
import { startLlmServer } from './support/llm-server.mjs';
import { tempDir } from './support/server.mjs';

const close = (a, b) => Math.abs(a - b) < 1e-9;

test('reserve, refuse past the limit, release, settle through track; check, budgets and the alert', (t) => {
  const alerts = [];
  const ab = new AgentBurn({
    agentId: 'a', bufferDir: tempDir(t), logger: null,
    budgets: [{ name: 'per-task', taskId: '*', limitUsd: 0.01, period: 'daily', alertAt: [0.5] }],
    budgetAlert: (alert) => alerts.push(alert),
  });
  t.after(() => ab.close(0));
  const held = ab.reserve({ taskId: 't1', estimateUsd: 0.006 });
  assert.ok(held instanceof Reservation);
  assert.match(held.id, /\S/);
  assert.ok(close(ab.check({ taskId: 't1' })[0].heldUsd, 0.006));

  const refused = (() => { try { ab.reserve({ taskId: 't1', estimateUsd: 0.006 }); } catch (e) { return e; } })();
  assert.ok(refused instanceof BudgetExceededError, `got ${refused}`);
  assert.equal(refused.code, -12);
  assert.equal(refused.budget, 'per-task');
  assert.equal(refused.scope, 'taskId=t1');
  assert.equal(refused.period, 'daily');
  assert.ok(close(refused.limit, 0.01));
  assert.ok(close(refused.held, 0.006));
  assert.ok(close(refused.spent, 0));
  assert.ok(close(refused.estimate, 0.006));
  assert.match(refused.resetsAt, /^\d{4}-\d\d-\d\dT/);
  assert.match(refused.message, /per-task/);
  assert.ok(ab.reserve({ taskId: 't2', estimateUsd: 0.006 }), 'another task has a window of its own');

  held.release();
  assert.equal(held.settled, true);
  assert.ok(close(ab.check({ taskId: 't1' })[0].heldUsd, 0));
  assert.throws(() => ab.release(held), InvalidEventError, 'a released reservation is no longer open');

  const settling = ab.reserve({ taskId: 't1', estimateUsd: 0.009 });
  assert.match(ab.track('openai', 0.004, { operation: 'llm_call', taskId: 't1', reservation: settling }), /^[0-9a-f-]{36}$/);
  assert.equal(settling.settled, true);
  let window = ab.check({ taskId: 't1' })[0];
  assert.ok(close(window.spentUsd, 0.004));
  assert.ok(close(window.heldUsd, 0));
  assert.deepEqual(alerts, []);
  ab.track('openai', 0.002, { operation: 'llm_call', taskId: 't1' });
  assert.equal(alerts.length, 1, 'crossing half of the limit alerts once');
  assert.equal(alerts[0].threshold, 0.5);
  assert.equal(alerts[0].name, 'per-task');
  window = ab.budgets().find((w) => w.scope === 'taskId=t1');
  assert.ok(close(window.spentUsd, 0.006));
  assert.ok(close(window.remainingUsd, 0.004));
});

// The SDKs support Node.js 20 and newer: on an older Node.js the instrumented test is skipped.
const SDK_SKIP = Number(process.versions.node.split('.')[0]) < 20 &&
  `the openai package needs Node.js 20 or newer (this is ${process.version})`;

test('instrument with reserve: a call past the budget is refused before its request is sent', { skip: SDK_SKIP }, async (t) => {
  const OpenAI = (await import('openai')).default;
  const llm = await startLlmServer(t);
  const ab = new AgentBurn({
    agentId: 'a', bufferDir: tempDir(t), logger: null,
    budgets: [{ name: 'run', taskId: 'inst', limitUsd: 0.015 }],
  });
  t.after(() => ab.close(0));
  const client = ab.instrument(new OpenAI({ apiKey: 'sk-test', baseURL: `${llm.url}/v1`, maxRetries: 0 }), { taskId: 'inst', reserve: true });
  const request = { model: 'gpt-4o', max_tokens: 1000, messages: [{ role: 'user', content: 'Hi' }] };
  // The estimate: about 1000 x $10/M of output, $0.01; the answer costs $0.00575.
  await client.chat.completions.create(request);
  let window = ab.check({ taskId: 'inst' })[0];
  assert.ok(close(window.spentUsd, 0.00575), `spent ${window.spentUsd}`);
  assert.ok(close(window.heldUsd, 0), 'the call settled its reservation');
  const sent = llm.requests.length;
  const refused = await client.chat.completions.create(request).then(() => null, (e) => e);
  assert.ok(refused instanceof BudgetExceededError, `got ${refused}`);
  assert.equal(refused.budget, 'run');
  assert.equal(llm.requests.length, sent, 'no request was sent');
  // A failed request gives its hold back.
  const failed = await client.chat.completions.create({ ...request, max_tokens: 10 }, { headers: { 'x-test-answer': 'error-400' } }).catch((e) => e);
  assert.ok(failed instanceof OpenAI.BadRequestError);
  window = ab.check({ taskId: 'inst' })[0];
  for (let i = 0; i < 100 && window.heldUsd > 0; i += 1) {
    await new Promise((resolve) => setImmediate(resolve));
    window = ab.check({ taskId: 'inst' })[0];
  }
  assert.ok(close(window.heldUsd, 0), `held ${window.heldUsd}`);
});

test('bad input to the budget calls names what was wrong', (t) => {
  const ab = new AgentBurn({ agentId: 'a', bufferDir: tempDir(t), logger: null, budgets: { name: 'all', limitUsd: 1 } });
  t.after(() => ab.close(0));
  assert.throws(() => ab.reserve('0.5'), { name: 'InvalidEventError', message: /^reserve: the argument must be an object/ });
  assert.throws(() => ab.reserve({ estimate: 1 }), { message: /^estimate: unknown reserve field; known fields are/ });
  assert.throws(() => ab.reserve({ estimateUsd: NaN }), { message: /^estimateUsd: must be a finite number/ });
  assert.throws(() => ab.reserve({}), InvalidEventError, 'no estimate');
  assert.throws(() => ab.release(''), { message: /^reservation: must be a Reservation from reserve\(\)/ });
  assert.throws(() => ab.release('no-such-reservation'), InvalidEventError);
  assert.throws(() => ab.track('openai', 1, { operation: 'llm_call', reservation: 5 }), { message: /^reservation: must be a Reservation/ });
  assert.throws(() => ab.check(5), { message: /^check: the argument must be an object/ });
  assert.throws(() => ab.check({ estimateUsd: 1 }), { message: /^estimateUsd: unknown check field/ });
  assert.throws(() => new AgentBurn({ bufferDir: tempDir(t), budgets: 5 }), InvalidOptionError);
  assert.throws(() => new AgentBurn({ bufferDir: tempDir(t), budgets: [{ limitUsd: 1 }] }), { name: 'InvalidOptionError', option: 'budgets', message: /^budgets\[0\]: name is required/ });
  assert.throws(() => new AgentBurn({ bufferDir: tempDir(t), budgetAlert: 'log' }), { message: /^budgetAlert: must be a function/ });
  assert.throws(() => new AgentBurn({ bufferDir: tempDir(t), reservationTtlMs: -1 }), { message: /^reservationTtlMs: / });
  assert.throws(() => new AgentBurn({ bufferDir: tempDir(t), budgetStore: 'redis://:s3cret@[::1' }),
    (e) => e.name === 'InvalidOptionError' && e.option === 'budgetStore' && /^budgetStore: /.test(e.message) && !e.message.includes('s3cret'));
  assert.throws(() => new AgentBurn({ bufferDir: tempDir(t), budgetStoreUnavailable: 'maybe' }), { message: /^budgetStoreUnavailable: / });
  const openaiShaped = { chat: { completions: { create: () => null } } };
  assert.throws(() => ab.instrument(openaiShaped, { reserve: 'yes' }), { message: /^reserve: must be a boolean/ });
});
