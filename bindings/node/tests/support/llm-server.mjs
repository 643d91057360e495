// A local HTTP server that answers as the OpenAI (Chat Completions, Responses) and Anthropic
// (Messages) APIs document, streamed (server-sent events) and not, so that the real openai and
// @anthropic-ai/sdk packages can be pointed at it. Each request's JSON body is kept in
// `requests`. The header x-test-answer chooses an answer other than success:
//   "error-400", "error-429": the API's error body with that status;
//   "cut": a stream whose connection ends after its first events, mid-body;
// and the model asked for is echoed back, as the APIs do.
import http from 'node:http';

export const USAGE = {
  chat: { prompt_tokens: 1200, completion_tokens: 300, total_tokens: 1500, prompt_tokens_details: { cached_tokens: 200 }, completion_tokens_details: { reasoning_tokens: 0 } },
  responses: { input_tokens: 2000, output_tokens: 500, total_tokens: 2500, input_tokens_details: { cached_tokens: 0 }, output_tokens_details: { reasoning_tokens: 100 } },
  messages: { input_tokens: 900, output_tokens: 400, cache_creation_input_tokens: 100, cache_read_input_tokens: 1000 },
};

function sse(res, events) {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  for (const [name, data] of events) {
    res.write(`${name ? `event: ${name}\n` : ''}data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);
  }
}

// The connection ends after what was written, in the middle of the chunked body: the client
// reads the events sent so far, then a broken stream. (An SSE comment line carries the end.)
function cut(res) {
  res.write(': cut\n\n', () => res.socket.end());
}

function json(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json', 'x-request-id': 'req_test' });
  res.end(JSON.stringify(body));
}

function chat(body, res, cutIt) {
  const model = body.model;
  if (!body.stream) {
    return json(res, 200, {
      id: 'chatcmpl-1', object: 'chat.completion', created: 1767225600, model,
      choices: [{ index: 0, message: { role: 'assistant', content: 'Hello.' }, finish_reason: 'stop', logprobs: null }],
      usage: USAGE.chat,
    });
  }
  const chunk = (delta, finish) => ({ id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1767225600, model, choices: [{ index: 0, delta, finish_reason: finish, logprobs: null }] });
  sse(res, [[null, chunk({ role: 'assistant', content: '' }, null)], [null, chunk({ content: 'Hel' }, null)]]);
  if (cutIt) return cut(res);
  const rest = [[null, chunk({ content: 'lo.' }, null)], [null, chunk({}, 'stop')]];
  if (body.stream_options && body.stream_options.include_usage) {
    rest.push([null, { id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1767225600, model, choices: [], usage: USAGE.chat }]);
  }
  rest.push([null, '[DONE]']);
  for (const [, data] of rest) res.write(`data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);
  return res.end();
}

function responseObject(model, status, usage) {
  return {
    id: 'resp_1', object: 'response', created_at: 1767225600, status, model, error: null, incomplete_details: null,
    output: status === 'completed' ? [{ type: 'message', id: 'msg_1', status: 'completed', role: 'assistant', content: [{ type: 'output_text', text: 'Hello.', annotations: [] }] }] : [],
    usage,
  };
}

function responses(body, res, cutIt) {
  const model = body.model;
  if (!body.stream) return json(res, 200, responseObject(model, 'completed', USAGE.responses));
  sse(res, [
    ['response.created', { type: 'response.created', sequence_number: 0, response: responseObject(model, 'in_progress', null) }],
    ['response.output_text.delta', { type: 'response.output_text.delta', sequence_number: 1, item_id: 'msg_1', output_index: 0, content_index: 0, delta: 'Hello.' }],
  ]);
  if (cutIt) return cut(res);
  res.write(`event: response.completed\ndata: ${JSON.stringify({ type: 'response.completed', sequence_number: 2, response: responseObject(model, 'completed', USAGE.responses) })}\n\n`);
  return res.end();
}

function messages(body, res, cutIt) {
  const model = body.model;
  const { output_tokens: output, ...input } = USAGE.messages;
  if (!body.stream) {
    return json(res, 200, {
      id: 'msg_1', type: 'message', role: 'assistant', model, content: [{ type: 'text', text: 'Hello.' }],
      stop_reason: 'end_turn', stop_sequence: null, usage: USAGE.messages,
    });
  }
  sse(res, [
    ['message_start', { type: 'message_start', message: { id: 'msg_1', type: 'message', role: 'assistant', model, content: [], stop_reason: null, stop_sequence: null, usage: { ...input, output_tokens: 1 } } }],
    ['content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }],
    ['content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Hello.' } }],
  ]);
  if (cutIt) return cut(res);
  for (const [name, data] of [
    ['content_block_stop', { type: 'content_block_stop', index: 0 }],
    ['message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: output } }],
    ['message_stop', { type: 'message_stop' }],
  ]) res.write(`event: ${name}\ndata: ${JSON.stringify(data)}\n\n`);
  return res.end();
}

const ROUTES = { '/v1/chat/completions': chat, '/v1/responses': responses, '/v1/messages': messages };

function error(res, path, status) {
  if (path === '/v1/messages') {
    return json(res, status, { type: 'error', error: { type: status === 429 ? 'rate_limit_error' : 'invalid_request_error', message: `test error ${status}` } });
  }
  return json(res, status, { error: { message: `test error ${status}`, type: status === 429 ? 'rate_limit_exceeded' : 'invalid_request_error', param: null, code: null } });
}

export async function startLlmServer(t) {
  const requests = [];
  const server = http.createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => { raw += chunk; });
    req.on('end', () => {
      const route = ROUTES[req.url.split('?')[0]];
      if (!route || req.method !== 'POST') return json(res, 404, { error: { message: 'not found' } });
      const body = JSON.parse(raw);
      requests.push({ path: req.url, body });
      const answer = req.headers['x-test-answer'] || '';
      if (answer.startsWith('error-')) return error(res, req.url, Number(answer.slice(6)));
      return route(body, res, answer === 'cut');
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); }));
  return { url: `http://127.0.0.1:${server.address().port}`, requests };
}
