'use strict';
// agentburn: know what your AI agents cost, without ever slowing them down.

const native = require('./native.cjs');
const errors = require('./errors.cjs');
const { AgentBurn, Reservation } = require('./client.cjs');
const { instrument, withAgentBurn, currentContext } = require('./instrument.cjs');


module.exports = {
  AgentBurn,
  Reservation,
  instrument,
  withAgentBurn,
  currentContext,
  ABI_VERSION: native.ABI_VERSION,
  libraryPath: native.libraryPath,
  libraryVersion: native.version,
  AgentBurnError: errors.AgentBurnError,
  InvalidEventError: errors.InvalidEventError,
  InvalidOptionError: errors.InvalidOptionError,
  OutOfMemoryError: errors.OutOfMemoryError,
  StorageError: errors.StorageError,
  BufferFullError: errors.BufferFullError,
  BufferLockedError: errors.BufferLockedError,
  NetworkError: errors.NetworkError,
  HttpError: errors.HttpError,
  AuthError: errors.AuthError,
  DeadlineError: errors.DeadlineError,
  ClosedError: errors.ClosedError,
  InternalError: errors.InternalError,
  BudgetExceededError: errors.BudgetExceededError,
};
