export {
  Acl,
  type AclOptions,
  ANONYMOUS_SECRET,
  aclRowProblem,
  GLOBAL_MANAGEMENT_ID,
  GLOBAL_MANAGEMENT_NAME,
  hashSecret,
  type PolicyInput,
  type PolicyRecord,
  REDACTED_SECRET,
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
