/**
 * `phare/config`: layered YAML config (`default.yaml` < `{env}.yaml` < `local.yaml` < environment
 * variables) validated by a zod schema, with provenance and secret redaction.
 */
// Checks the Node.js version before anything else loads (see node-check.ts).
import '../node-check.ts';

export {
  type ConfigInfo,
  type ConfigSource,
  configInfo,
  configSource,
  type DeepReadonly,
  describeSource,
  type LoadConfigOptions,
  loadConfig,
} from './load.ts';
export { printConfig, REDACTED, redactConfig, redactUrlPassword } from './print.ts';
export { type ConfigMeta, secret } from './schema.ts';
export { isPhareUrl, PHARE_SCHEME, type PhareServiceRef, parsePhareUrl, serviceUrl } from './service-url.ts';
