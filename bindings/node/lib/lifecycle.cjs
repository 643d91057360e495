'use strict';
// The loggers, and closing the clients at exit.
//
// Logging: koffi runs the JavaScript log callback on the main thread's event loop and holds
// the library thread that logs until it ran. So every call that may wait on a library thread
// (flush, close, registerAgent, the dead-letter calls) runs on a pool thread and returns a
// Promise: the event loop stays free to take the messages.
//
// Exit: when the event loop runs dry ('beforeExit', the normal end of a program), every open
// client is closed as close() does, with its close timeout, while the event loop still runs.
// When the process ends through process.exit() ('exit', where the event loop runs no more),
// the clients opened with `logger: null` are shut down there, synchronously, with their close
// timeout; a client with a logger is left as it is (its library threads could be waiting for
// the main thread to log): its events are on disk already and go at the next start.

const { fn, koffi, LogFn } = require('./native.cjs');

const LEVEL_NAMES = ['debug', 'info', 'warning', 'error'];

// --- Loggers -------------------------------------------------------------------------------
const loggers = new Map(); // user_data id -> logger
let nextLoggerId = 1;

function dispatch(level, message, userData) {
  const logger = loggers.get(Number(userData));
  if (!logger) return;
  try {
    logger(LEVEL_NAMES[level] || 'error', message);
  } catch {
    // Nothing may unwind into the library.
  }
}

// One callback for every client, alive as long as the process.
let callback = null;

// (callback, user_data) for ab_options_set_log, and the id to release later.
function addLogger(logger) {
  if (!callback) callback = koffi.register(dispatch, koffi.pointer(LogFn));
  const id = nextLoggerId++;
  loggers.set(id, logger);
  return { callback, id };
}

function removeLogger(id) {
  loggers.delete(id);
}

// --- Exit ---------------------------------------------------------------------------------
const open = new Set(); // clients whose close() has not begun

process.on('beforeExit', () => {
  for (const client of [...open]) client.close().catch(() => {});
});
process.on('exit', () => {
  for (const client of [...open]) client._shutdownAtExit();
});

module.exports = { addLogger, removeLogger, open, fn };
