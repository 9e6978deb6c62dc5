export { type AgentCheckOptions, agentUrl, checkAgent } from './agent-check.ts';
export { type CheckOptions, type CheckReport, checkPorts, checkRules } from './check.ts';
export { unifiedDiff } from './diff.ts';
export { problemsTable, table } from './format.ts';
export {
  annotateListeners,
  type InUseEntry,
  type Listener,
  listListeners,
  parseProcNetTcp,
} from './in-use.ts';
export {
  type Allocation,
  describeAllocation,
  type LoadResult,
  loadPorts,
  type PortsModel,
  type PortsProblem,
  type ProblemRule,
  parsePorts,
  type ResolvedTarget,
} from './model.ts';
export { type NextPortOptions, nextFreePort } from './next.ts';
export { type PortsFile, portsFileSchema, portsJsonSchema, type TargetSpec } from './schema.ts';
export {
  type FileChange,
  planSync,
  problemsError,
  type SyncOptions,
  type SyncPlan,
  type SyncResult,
  syncPorts,
} from './sync.ts';
