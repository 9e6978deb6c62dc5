import type { ResolvedTarget } from '../model.ts';
import { dotenvEditor } from './dotenv.ts';
import type { TargetEditor } from './editor.ts';
import { jsonEditor } from './json.ts';
import { composeEnvEditor, composePortEditor, yamlEditor } from './yaml.ts';

export type { TargetEditor } from './editor.ts';

/** One editor per target type. */
export const EDITORS: Record<ResolvedTarget['type'], TargetEditor> = {
  yaml: yamlEditor,
  json: jsonEditor,
  dotenv: dotenvEditor,
  'compose-port': composePortEditor,
  'compose-env': composeEnvEditor,
};
