// A child process for the tests: tracks events on a client of its own and reports their keys.
// argv: JSON {options, count, taskId, end: "natural" | "exit" | "flush"}.
import { AgentBurn } from '../../index.mjs';

const { options, count, taskId, end } = JSON.parse(process.argv[2]);
const ab = new AgentBurn(options);
const keys = [];
for (let i = 0; i < count; i += 1) keys.push(ab.track('openai', 0.001, { operation: 'llm_call', taskId }));
if (end === 'flush') {
  const delivered = await ab.flush(30000);
  await ab.close();
  process.send({ keys, delivered });
} else {
  // Neither flushed nor closed: the close at exit delivers them.
  if (process.send) process.send({ keys });
  if (end === 'exit') process.exit(0);
}
