'use strict';
// The loggers and budget alerts, and closing the clients at exit.
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

const { koffi, LogFn, BudgetAlertFn } = require('./native.cjs');

const LEVEL_NAMES = ['debug', 'info', 'warning', 'error'];

// --- Loggers and budget alerts ---------------------------------------------------------------
// user_data of both callbacks is the client's id here.
const loggers = new Map(); // id -> logger
const alerts = new Map(); // id -> {alert, logger}
let nextId = 1;

function dispatch(level, message, userData) {
  const logger = loggers.get(Number(userData));
  if (logger) dispatchTo(logger, LEVEL_NAMES[level] || 'error', message);
}

// Called on the thread that tracked (the main thread: track is synchronous). An alert
// function that throws is logged, never unwound into the library.
function dispatchAlert(json, userData) {
  const entry = alerts.get(Number(userData));
  if (!entry) return;
  try {
    entry.alert(JSON.parse(json));
  } catch (e) {
    if (entry.logger) dispatchTo(entry.logger, 'error', `budgetAlert threw: ${e && e.message}`);
  }
}

function dispatchTo(logger, level, message) {
  try {
    logger(level, message);
  } catch {
    // Nothing may unwind into the library.
  }
}

// One callback of each kind for every client, alive as long as the process.
let logCallback = null;
let alertCallback = null;

// The id (user_data) of a client's callbacks, and the callbacks to give the library.
function addCallbacks(logger, alert) {
  const id = nextId++;
  if (logger) {
    if (!logCallback) logCallback = koffi.register(dispatch, koffi.pointer(LogFn));
    loggers.set(id, logger);
  }
  if (alert) {
    if (!alertCallback) alertCallback = koffi.register(dispatchAlert, koffi.pointer(BudgetAlertFn));
    alerts.set(id, { alert, logger });
  }
  return { id, logCallback, alertCallback };
}

function removeCallbacks(id) {
  loggers.delete(id);
  alerts.delete(id);
}

// --- Exit ---------------------------------------------------------------------------------
const open = new Set(); // clients whose close() has not begun

process.on('beforeExit', () => {
  for (const client of [...open]) client.close().catch(() => {});
});
process.on('exit', () => {
  for (const client of [...open]) client._shutdownAtExit();
});

module.exports = { addCallbacks, removeCallbacks, open };
