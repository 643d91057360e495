// agentburn from Node.js: register an agent, track what it spends, flush, print the stats.
//
// AGENTBURN_ENDPOINT: the server (unset: offline, the events wait on disk for a later run);
// AGENTBURN_API_KEY: its key; AGENTBURN_BUFFER_DIR: the buffer root (unset: the default).
// From a checkout: npm ci in bindings/node, then node examples/quickstart.mjs; in a project
// of your own: npm install agentburn, and import from 'agentburn'.
import { AgentBurn } from '../bindings/node/index.mjs';

const ab = new AgentBurn({
  baseUrl: process.env.AGENTBURN_ENDPOINT || undefined, // undefined: offline
  apiKey: process.env.AGENTBURN_API_KEY || undefined,
});
try {
  // Offline (or with the server down) the id is a provisional "ab-local-..." one.
  ab.agentId = await ab.registerAgent('Support Bot', { projectId: 'onboarding', tags: ['support'] });
  console.log(`agent ${ab.agentId}`);

  const costs = [
    ['anthropic', 0.0855, { operation: 'llm_call', model: 'claude-3.5-sonnet', inputTokens: 12500, outputTokens: 3200, taskId: 'ticket-CTMS-5109' }],
    ['github', 0.0004, { operation: 'tool_call', taskId: 'ticket-CTMS-5109' }],
    ['e2b', 0.0021, { operation: 'compute', taskId: 'ticket-CTMS-5110' }],
    ['serpapi', 0.005, { operation: 'api_call', taskId: 'ticket-CTMS-5110' }],
  ];
  for (const [provider, costUsd, fields] of costs) {
    // Durable on disk when it returns (synchronously); throws an AgentBurnError if refused.
    const key = ab.track(provider, costUsd, { ...fields, workflowId: 'sprint-42' });
    console.log(`tracked ${fields.operation.padEnd(9)} ${provider.padEnd(9)} $${costUsd.toFixed(4)}  ${key}`);
  }

  // false is not a failure: what was not delivered stays on disk.
  const delivered = await ab.flush(2000);
  console.log('flush:', delivered ? 'all delivered' : 'not all delivered; the rest waits on disk');
  console.log('stats:', JSON.stringify(ab.stats()));
} finally {
  await ab.close();
}
