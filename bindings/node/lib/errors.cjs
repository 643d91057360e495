'use strict';
// The errors of agentburn: one class per result code of the C ABI, in a table keyed by code.

const { codes, strerror, lastRefusal } = require('./native.cjs');

class AgentBurnError extends Error {
  // code: the C ABI's result code (AB_E*, negative); message: what went wrong, naming the
  // field, option or resource and the reason.
  constructor(code, message) {
    super(message || strerror(code));
    this.name = new.target.name;
    this.code = code;
  }
}

class InvalidEventError extends AgentBurnError {}

// A bad option of the constructor: `option` names it, and the message starts with it.
class InvalidOptionError extends InvalidEventError {
  constructor(code, message, option) {
    super(code, message);
    this.option = option;
  }
}

class OutOfMemoryError extends AgentBurnError {}
class StorageError extends AgentBurnError {}
class BufferFullError extends AgentBurnError {}
class BufferLockedError extends AgentBurnError {}
class NetworkError extends AgentBurnError {}
class HttpError extends AgentBurnError {}
class AuthError extends AgentBurnError {}
// AB_ETIMEOUT from a call that has no true/false answer for it (flush and close answer false).
class DeadlineError extends AgentBurnError {}
class ClosedError extends AgentBurnError {}
class InternalError extends AgentBurnError {}

// AB_EBUDGET: a reservation would take a block budget past its limit. budget (its name),
// scope (the "*" fields' values of its window, or ""), spent, held, limit and estimate (USD),
// period and resetsAt (ISO 8601, or null for a window that never resets); detail: the
// library's whole answer.
class BudgetExceededError extends AgentBurnError {
  constructor(code, message, detail = {}) {
    super(code, message);
    this.detail = detail;
    this.budget = detail.name;
    this.scope = detail.scope === undefined ? '' : detail.scope;
    this.spent = detail.spentUsd;
    this.held = detail.heldUsd;
    this.limit = detail.limitUsd;
    this.estimate = detail.estimateUsd;
    this.period = detail.period;
    this.resetsAt = detail.resetsAt;
  }
}

const BY_CODE = new Map([
  [codes.AB_EINVALID, InvalidEventError],
  [codes.AB_ENOMEM, OutOfMemoryError],
  [codes.AB_ESTORAGE, StorageError],
  [codes.AB_EFULL, BufferFullError],
  [codes.AB_ELOCKED, BufferLockedError],
  [codes.AB_ENETWORK, NetworkError],
  [codes.AB_EHTTP, HttpError],
  [codes.AB_EAUTH, AuthError],
  [codes.AB_ETIMEOUT, DeadlineError],
  [codes.AB_ECLOSED, ClosedError],
  [codes.AB_EINTERNAL, InternalError],
  [codes.AB_EBUDGET, BudgetExceededError],
]);

// The error for a result code (AgentBurnError itself for a code this package does not know,
// such as one a newer library appended). On the thread of the failed call, right after it:
// a budget refusal reads its detail there.
function errorFor(code, message) {
  if (code === codes.AB_EBUDGET) return new BudgetExceededError(code, message, lastRefusal());
  const Class = BY_CODE.get(code) || AgentBurnError;
  return new Class(code, message);
}

function invalid(message) {
  return new InvalidEventError(codes.AB_EINVALID, message);
}

function closed() {
  return new ClosedError(codes.AB_ECLOSED, 'the client is closed');
}

module.exports = {
  AgentBurnError, InvalidEventError, InvalidOptionError, OutOfMemoryError, StorageError,
  BufferFullError, BufferLockedError, NetworkError, HttpError, AuthError, DeadlineError,
  ClosedError, InternalError, BudgetExceededError, BY_CODE, errorFor, invalid, closed,
};
