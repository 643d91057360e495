// The ES module entry: import { AgentBurn } from 'agentburn'. The same objects as
// require('agentburn'), so that both module systems in one process share one library.
import agentburn from './lib/index.cjs';

export const {
  AgentBurn, Reservation, instrument, withAgentBurn, currentContext, ABI_VERSION, libraryPath, libraryVersion,
  AgentBurnError, InvalidEventError, InvalidOptionError, OutOfMemoryError, StorageError,
  BufferFullError, BufferLockedError, NetworkError, HttpError, AuthError, DeadlineError,
  ClosedError, InternalError, BudgetExceededError,
} = agentburn;
export default agentburn;
