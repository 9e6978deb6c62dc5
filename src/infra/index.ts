/**
 * Per-component test infrastructure: components (phare.yaml or npm workspaces), their compose files, the
 * `phare test` runner, `phare infra` stacks, the reaper and `phare infra split`.
 */
export {
  type AffectedResult,
  affectedComponents,
  COMPOSE_FILES,
  type Component,
  type InfraEnv,
  loadMonorepo,
  type Monorepo,
  selectComponents,
  withDependents,
} from './components.ts';
export {
  type ComposeFile,
  derivedEnv,
  endpoints,
  interpolate,
  LABELS,
  prepareCompose,
  readComposeFile,
  type ServiceEndpoint,
  servicePorts,
} from './compose.ts';
export { createEngine, type Engine, type EngineOptions, projectContainers } from './engine.ts';
export { processStartTime, type ReapResult, reap, runnerAlive } from './reaper.ts';
export {
  junitXml,
  type RunTestsOptions,
  type RunTestsReport,
  runTests,
  summaryTable,
  type TestResult,
} from './runner.ts';
export {
  CATEGORIES,
  type Category,
  loadPhareFile,
  type PhareFile,
  parsePhareFile,
  phareFileSchema,
} from './schema.ts';
export { componentFile, type Placement, placeServices, type SplitReport, splitCompose } from './split.ts';
export {
  type InfraSource,
  infraSource,
  type Stack,
  type StackOptions,
  shortId,
  startStack,
} from './stack.ts';
