'use strict';
const { AsyncLocalStorage } = require('node:async_hooks');
const storage = new AsyncLocalStorage();
function withAgentBurn(context, fn) { return storage.run({ ...(storage.getStore() || {}), ...context }, fn); }
function currentContext() { return storage.getStore() || {}; }
function instrument() { throw new Error('todo'); }
module.exports = { instrument, withAgentBurn, currentContext };
