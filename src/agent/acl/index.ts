export {
  Acl,
  type AclOptions,
  AGENT_TOKEN_NAMES,
  type AgentTokenKind,
  ANONYMOUS_SECRET,
  aclRowProblem,
  GLOBAL_MANAGEMENT_ID,
  GLOBAL_MANAGEMENT_NAME,
  hashSecret,
  type PolicyInput,
  type PolicyRecord,
  REDACTED_SECRET,
  type RoleInput,
  type RoleRecord,
  type TokenInput,
  type TokenRecord,
} from './acl.ts';
export {
  AllowAll,
  ANONYMOUS_ACCESSOR,
  type Authorizer,
  type Need,
  permissionDenied,
  type Resource,
} from './authorizer.ts';
export { parseRules, type Rules, RulesError } from './rules.ts';
