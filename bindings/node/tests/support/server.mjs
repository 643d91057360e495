// The real agentburn-server for the tests: started on 127.0.0.1 on a port it picks, with a
// fresh data folder, stopped after the test. AGENTBURN_SERVER names the binary (ctest sets it).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export const START_DEADLINE_MS = 30000;
export const DELIVERY_DEADLINE_MS = 60000;

// Polls `condition` until it returns a truthy value; throws past the deadline.
export async function waitFor(condition, what, deadlineMs = DELIVERY_DEADLINE_MS) {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const value = await condition();
    if (value) return value;
    if (Date.now() > end) throw new Error(`${what}: not reached within ${deadlineMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 25)); // the poll period
  }
}

export function tempDir(t, name = 'agentburn-node-') {
  const dir = mkdtempSync(path.join(tmpdir(), name));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export function serverBinary() {
  return process.env.AGENTBURN_SERVER || '';
}

export class Server {
  constructor(proc, url, key) {
    this.proc = proc;
    this.url = url;
    this.key = key;
  }

  async request(method, route, body) {
    const response = await fetch(this.url + route, {
      method,
      headers: { 'x-api-key': this.key, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`${method} ${route}: ${response.status} ${text}`);
    return JSON.parse(text);
  }

  events(query = {}) {
    const params = new URLSearchParams({ limit: '10000', ...query });
    return this.request('GET', `/api/events?${params}`);
  }

  async waitEvents(count, query = {}) {
    return waitFor(async () => {
      const events = await this.events(query);
      return events.length >= count ? events : null;
    }, `${count} events at the server (${JSON.stringify(query)})`);
  }

  stop() {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      const kill = setTimeout(() => this.proc.kill('SIGKILL'), 15000);
      this.proc.once('exit', () => { clearTimeout(kill); resolve(); });
      this.proc.kill('SIGTERM');
    });
  }
}

// Starts a server for test `t` (stopped and its data removed after the test).
export async function startServer(t, flags = []) {
  const binary = serverBinary();
  if (!binary) throw new Error('needs agentburn-server: set AGENTBURN_SERVER to the binary (ctest sets it)');
  const data = tempDir(t, 'agentburn-server-');
  const key = `key-${randomBytes(8).toString('hex')}`;
  const proc = spawn(binary, ['--listen', '127.0.0.1:0', '--data', path.join(data, 'db'), ...flags], {
    env: { ...process.env, AGENTBURN_API_KEY: key },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  proc.stderr.on('data', (chunk) => { stderr += chunk; });
  const url = await new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`agentburn-server did not listen within ${START_DEADLINE_MS} ms: ${stderr}`)), START_DEADLINE_MS);
    proc.stdout.on('data', (chunk) => {
      seen += chunk;
      const found = /listening on (\S+)\r?\n/.exec(seen);
      if (found) { clearTimeout(timer); resolve(found[1]); }
    });
    proc.once('exit', (code) => { clearTimeout(timer); reject(new Error(`agentburn-server exited (${code}) before listening: ${stderr}`)); });
  });
  proc.stdout.resume();
  const server = new Server(proc, url, key);
  t.after(() => server.stop());
  return server;
}
