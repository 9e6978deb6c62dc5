/**
 * Consul's `?filter=` expression language (the go-bexpr subset Consul documents at
 * https://developer.hashicorp.com/consul/api-docs/features/filtering), compiled once into a plain predicate
 * over the JSON wire objects the agent returns.
 *
 * Grammar (precedence `not` > `and` > `or`):
 * ```
 * Or      := And ("or" And)*
 * And     := Not ("and" Not)*
 * Not     := "not" Not | "(" Or ")" | Match
 * Match   := Sel ("==" | "!=") Value | Sel "is" ["not"] "empty"
 *          | Sel ["not"] ("contains" | "matches") Value | Value ["not"] "in" Sel
 * Sel     := Ident ("." (Ident | Digits) | "[" String "]")*
 * Value   := "double" | `raw` | bare word (numbers and identifiers, taken as text)
 * ```
 * Evaluation follows go-bexpr's evaluator as Consul used it: a selector that walks through an array tries
 * every element and matches if ANY element matches (with the operator as written, so `!=` means "some element
 * differs"); a missing map key makes `==`, `in`, `contains`, `matches` and `is not empty` false and their
 * negations true. Unlike Consul, unknown selectors are not rejected (Phare has no per-endpoint field schema):
 * they behave like missing keys.
 */
import { phareError } from '../../api/index.ts';

/** A compiled `?filter=` expression: call it on a wire object to know whether the object passes. */
export interface CompiledFilter {
  (item: unknown): boolean;
  /** The expression text it was compiled from. */
  readonly expression: string;
}

type Pred = (item: unknown) => boolean;

type MatchOp = '==' | '!=' | 'empty' | 'not empty' | 'in' | 'not in' | 'matches' | 'not matches';

/** A literal on the right of an operator, pre-converted once for every field type it may meet. */
interface Literal {
  readonly text: string;
  /** The literal as a number, when its text is one (`8080`, `"8080"`), for numeric fields. */
  readonly num: number | undefined;
  /** The literal as a boolean (Go's strconv.ParseBool spellings), for boolean fields. */
  readonly bool: boolean | undefined;
}

/** One selector step: a map key or field name; `index` is set when the step is all digits (array index). */
interface Segment {
  readonly key: string;
  readonly index: number | undefined;
}

const PREFIX = 'Failed to create boolean expression evaluator: ';
/** Parentheses and `not` recurse; a cap keeps a hostile `((((…` a syntax error instead of a stack overflow. */
const MAX_NESTING = 256;
const NUMBER_RE = /^-?\d+(\.\d+)?([eE][+-]?\d+)?$/;
const TRUE_WORDS = new Set(['1', 't', 'T', 'TRUE', 'true', 'True']);
const FALSE_WORDS = new Set(['0', 'f', 'F', 'FALSE', 'false', 'False']);
const OPERATORS_HINT =
  '"==", "!=", "is empty", "is not empty", "contains", "not contains", "matches", "not matches", "in" or "not in"';

function isIdentStart(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95; // A-Z a-z _
}

function isIdentChar(c: number): boolean {
  // go-bexpr identifiers also allow "/" after the first character.
  return isIdentStart(c) || (c >= 48 && c <= 57) || c === 47;
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

/** Characters of an unquoted value: identifiers, numbers, and the `.-:/` found in versions and addresses. */
function isBareChar(c: number): boolean {
  return isIdentChar(c) || c === 46 || c === 45 || c === 58; // . - :
}

function isSpace(c: number): boolean {
  return c === 32 || c === 9 || c === 10 || c === 13;
}

function literal(text: string): Literal {
  return {
    text,
    num: NUMBER_RE.test(text) ? Number(text) : undefined,
    bool: TRUE_WORDS.has(text) ? true : FALSE_WORDS.has(text) ? false : undefined,
  };
}

class Parser {
  private readonly src: string;
  private pos = 0;
  private depth = 0;

  constructor(src: string) {
    this.src = src;
  }

  parse(): Pred {
    this.skipSpace();
    if (this.pos >= this.src.length) {
      this.fail(this.pos, 'empty expression, expected a selector, a value, "not" or "("');
    }
    const pred = this.parseOr();
    this.skipSpace();
    if (this.pos < this.src.length) {
      this.fail(this.pos, `unexpected ${this.found(this.pos)}, expected "and", "or" or end of input`);
    }
    return pred;
  }

  private parseOr(): Pred {
    const parts = [this.parseAnd()];
    while (this.keywordAhead('or')) {
      this.pos += 2;
      parts.push(this.parseAnd('"or"'));
    }
    return parts.length === 1 ? parts[0]! : anyOf(parts);
  }

  private parseAnd(after?: string): Pred {
    const parts = [this.parseNot(after)];
    while (this.keywordAhead('and')) {
      this.pos += 3;
      parts.push(this.parseNot('"and"'));
    }
    return parts.length === 1 ? parts[0]! : allOf(parts);
  }

  private parseNot(after?: string): Pred {
    this.skipSpace();
    const start = this.pos;
    if (this.atKeyword('not')) {
      this.pos += 3;
      this.enter(start);
      const inner = this.parseNot('"not"');
      this.depth--;
      return (item) => !inner(item);
    }
    if (this.src.charCodeAt(this.pos) === 40 /* ( */) {
      this.pos++;
      this.enter(start);
      const inner = this.parseOr();
      this.skipSpace();
      if (this.src.charCodeAt(this.pos) !== 41 /* ) */) {
        this.fail(
          this.pos,
          `expected "and", "or" or ")" to close the "(" at ${this.where(start)}, found ${this.found(this.pos)}`,
        );
      }
      this.pos++;
      this.depth--;
      return inner;
    }
    return this.parseMatch(after);
  }

  private parseMatch(after?: string): Pred {
    const start = this.pos;
    const c = this.src.charCodeAt(start);
    if (c === 34 /* " */ || c === 96 /* ` */) {
      const value = this.parseString();
      return this.parseInTail(value, start);
    }
    if (this.atKeyword('and') || this.atKeyword('or')) {
      // `a == 1 or or b == 2`: reading "or" as a selector would only give a more confusing error later.
      this.fail(this.pos, `expected a selector, a value, "not" or "(", found ${this.found(this.pos)}`);
    }
    if (isBareChar(c)) {
      // A bare word followed by `in`/`not in` is a value (`passing in Checks.Status`, `v1-beta in Tags`);
      // anything else starting with a letter is a selector.
      const wordEnd = this.scanBare(start);
      const save = this.pos;
      this.pos = wordEnd;
      if (this.inOperatorAhead()) return this.parseInTail(literal(this.src.slice(start, wordEnd)), start);
      this.pos = save;
      if (isIdentStart(c)) return this.parseSelectorMatch();
      this.pos = wordEnd;
      this.skipSpace();
      this.fail(
        this.pos,
        `expected "in" or "not in" after the value ${JSON.stringify(this.src.slice(start, wordEnd))}, found ${this.found(this.pos)}`,
      );
    }
    const what = this.pos >= this.src.length && after ? ` after ${after}` : '';
    return this.fail(
      this.pos,
      `expected a selector, a value, "not" or "("${what}, found ${this.found(this.pos)}`,
    );
  }

  /** `Value in Sel` / `Value not in Sel`, with the value already read. */
  private parseInTail(value: Literal, valueStart: number): Pred {
    this.skipSpace();
    let negate = false;
    if (this.atKeyword('not')) {
      const save = this.pos;
      this.pos += 3;
      this.skipSpace();
      if (!this.atKeyword('in')) {
        this.fail(save, `expected "in" or "not in" after a value, found ${this.found(save)}`);
      }
      negate = true;
    } else if (!this.atKeyword('in')) {
      this.fail(
        this.pos,
        `expected "in" or "not in" after the value ${JSON.stringify(value.text)} at ${this.where(valueStart)}, found ${this.found(this.pos)}`,
      );
    }
    this.pos += 2;
    this.skipSpace();
    if (!isIdentStart(this.src.charCodeAt(this.pos))) {
      this.fail(
        this.pos,
        `expected a selector after "${negate ? 'not in' : 'in'}", found ${this.found(this.pos)}`,
      );
    }
    const path = this.parseSelector();
    return matcher(path, negate ? 'not in' : 'in', value, undefined);
  }

  /** `Sel op Value` / `Sel is [not] empty` / `Sel [not] in …` (a selector-shaped value). */
  private parseSelectorMatch(): Pred {
    const selStart = this.pos;
    const path = this.parseSelector();
    const selText = this.src.slice(selStart, this.pos);
    this.skipSpace();
    const opStart = this.pos;
    const src = this.src;
    if (src.startsWith('==', opStart) || src.startsWith('!=', opStart)) {
      const op = src.startsWith('==', opStart) ? '==' : '!=';
      this.pos += 2;
      return matcher(path, op, this.parseValue(op), undefined);
    }
    if (this.atKeyword('is')) {
      this.pos += 2;
      this.skipSpace();
      if (this.atKeyword('empty')) {
        this.pos += 5;
        return matcher(path, 'empty', undefined, undefined);
      }
      if (this.atKeyword('not')) {
        this.pos += 3;
        this.skipSpace();
        if (this.atKeyword('empty')) {
          this.pos += 5;
          return matcher(path, 'not empty', undefined, undefined);
        }
        this.fail(this.pos, `expected "empty" after "is not", found ${this.found(this.pos)}`);
      }
      this.fail(this.pos, `expected "empty" or "not empty" after "is", found ${this.found(this.pos)}`);
    }
    let negate = false;
    if (this.atKeyword('not')) {
      this.pos += 3;
      this.skipSpace();
      negate = true;
      if (!this.atKeyword('contains') && !this.atKeyword('matches') && !this.atKeyword('in')) {
        this.fail(
          this.pos,
          `expected "contains", "matches" or "in" after "not", found ${this.found(this.pos)}`,
        );
      }
    }
    if (this.atKeyword('contains')) {
      this.pos += 8;
      const op = negate ? 'not contains' : 'contains';
      return matcher(path, negate ? 'not in' : 'in', this.parseValue(op), undefined);
    }
    if (this.atKeyword('matches')) {
      this.pos += 7;
      const op = negate ? 'not matches' : 'matches';
      const valueStart = this.skipSpaceAndGet();
      const value = this.parseValue(op);
      return matcher(path, op, value, this.compileRegex(value.text, valueStart));
    }
    if (this.atKeyword('in')) {
      // The selector was really a value: `Service.Tags in …` compares the text "Service.Tags", as in go-bexpr.
      this.pos = opStart;
      return this.parseInTail(literal(selText), selStart);
    }
    return this.fail(
      opStart,
      `expected an operator after the selector ${JSON.stringify(selText)} (one of ${OPERATORS_HINT}), found ${this.found(opStart)}`,
    );
  }

  private parseSelector(): Segment[] {
    const src = this.src;
    const first = this.pos;
    while (this.pos < src.length && isIdentChar(src.charCodeAt(this.pos))) this.pos++;
    const path: Segment[] = [{ key: src.slice(first, this.pos), index: undefined }];
    for (;;) {
      const c = src.charCodeAt(this.pos);
      if (c === 46 /* . */) {
        const segStart = ++this.pos;
        const d = src.charCodeAt(segStart);
        if (isIdentStart(d)) {
          while (this.pos < src.length && isIdentChar(src.charCodeAt(this.pos))) this.pos++;
          path.push({ key: src.slice(segStart, this.pos), index: undefined });
        } else if (isDigit(d)) {
          while (isDigit(src.charCodeAt(this.pos))) this.pos++;
          const key = src.slice(segStart, this.pos);
          path.push({ key, index: Number(key) });
        } else {
          this.fail(segStart, `expected a field name after ".", found ${this.found(segStart)}`);
        }
      } else if (c === 91 /* [ */) {
        const open = this.pos++;
        this.skipSpace();
        const q = src.charCodeAt(this.pos);
        if (q !== 34 && q !== 96) {
          this.fail(this.pos, `expected a quoted map key after "[", found ${this.found(this.pos)}`);
        }
        const key = this.parseString().text;
        this.skipSpace();
        if (src.charCodeAt(this.pos) !== 93 /* ] */) {
          this.fail(
            this.pos,
            `expected "]" to close the "[" at ${this.where(open)}, found ${this.found(this.pos)}`,
          );
        }
        this.pos++;
        path.push({ key, index: undefined });
      } else {
        return path;
      }
    }
  }

  private parseValue(op: string): Literal {
    this.skipSpace();
    const c = this.src.charCodeAt(this.pos);
    if (c === 34 || c === 96) return this.parseString();
    if (isBareChar(c)) {
      const start = this.pos;
      this.pos = this.scanBare(start);
      return literal(this.src.slice(start, this.pos));
    }
    return this.fail(this.pos, `expected a value after "${op}", found ${this.found(this.pos)}`);
  }

  /** A `"double"` (Go escapes) or `` `raw` `` string literal at pos. */
  private parseString(): Literal {
    const src = this.src;
    const start = this.pos;
    const quote = src.charCodeAt(start);
    if (quote === 96) {
      const end = src.indexOf('`', start + 1);
      if (end < 0) this.fail(start, 'unterminated string literal, expected a closing "`"');
      this.pos = end + 1;
      return literal(src.slice(start + 1, end));
    }
    let out = '';
    let i = start + 1;
    for (;;) {
      if (i >= src.length) this.fail(start, "unterminated string literal, expected a closing '\"'");
      const ch = src[i]!;
      if (ch === '"') break;
      if (ch !== '\\') {
        out += ch;
        i++;
        continue;
      }
      const [text, len] = this.escape(i);
      out += text;
      i += len;
    }
    this.pos = i + 1;
    return literal(out);
  }

  /** Decodes the Go escape sequence at `at` (a backslash); returns the text and how many chars it spans. */
  private escape(at: number): [string, number] {
    const src = this.src;
    const e = src[at + 1];
    const simple: Record<string, string> = {
      a: '\x07',
      b: '\b',
      f: '\f',
      n: '\n',
      r: '\r',
      t: '\t',
      v: '\v',
      '\\': '\\',
      '"': '"',
    };
    if (e !== undefined && Object.hasOwn(simple, e)) return [simple[e]!, 2];
    const hexLen = e === 'x' ? 2 : e === 'u' ? 4 : e === 'U' ? 8 : 0;
    if (hexLen > 0) {
      const hex = src.slice(at + 2, at + 2 + hexLen);
      if (/^[0-9a-fA-F]+$/.test(hex) && hex.length === hexLen) {
        const code = Number.parseInt(hex, 16);
        if (code <= 0x10ffff) return [String.fromCodePoint(code), 2 + hexLen];
      }
    } else if (e !== undefined && /^[0-7]{3}$/.test(src.slice(at + 1, at + 4))) {
      const code = Number.parseInt(src.slice(at + 1, at + 4), 8);
      if (code <= 255) return [String.fromCharCode(code), 4];
    }
    if (at + 1 >= src.length) this.fail(at, "unterminated string literal, expected a closing '\"'");
    return this.fail(
      at,
      `invalid escape sequence ${JSON.stringify(src.slice(at, at + 2))} in string literal (use \\\\ for a backslash)`,
    );
  }

  /** Go RE2 writes flags as a leading `(?i)`; JavaScript takes them as RegExp flags. */
  private compileRegex(pattern: string, at: number): RegExp {
    let body = pattern;
    let flags = '';
    const lead = /^\(\?([ims]+)\)/.exec(pattern);
    if (lead) {
      body = pattern.slice(lead[0].length);
      flags = [...new Set(lead[1]!)].join('');
    }
    try {
      return new RegExp(body, flags);
    } catch (err) {
      // V8 repeats the pattern in its message ("Invalid regular expression: /(/: Unterminated group").
      const why = (err instanceof Error ? err.message : String(err)).replace(
        /^Invalid regular expression: .*: /s,
        '',
      );
      return this.fail(at, `invalid regular expression ${JSON.stringify(pattern)}: ${why}`);
    }
  }

  private scanBare(from: number): number {
    let i = from;
    while (i < this.src.length && isBareChar(this.src.charCodeAt(i))) i++;
    return i;
  }

  /** After whitespace, is the next word `in`, or `not` then `in`? Leaves pos unchanged. */
  private inOperatorAhead(): boolean {
    const save = this.pos;
    this.skipSpace();
    let yes = this.atKeyword('in');
    if (!yes && this.atKeyword('not')) {
      this.pos += 3;
      this.skipSpace();
      yes = this.atKeyword('in');
    }
    this.pos = save;
    return yes;
  }

  /** After whitespace, is `word` next? Consumes the whitespace only when it is. */
  private keywordAhead(word: string): boolean {
    const save = this.pos;
    this.skipSpace();
    if (this.atKeyword(word)) return true;
    this.pos = save;
    return false;
  }

  /** Is `word` at pos as a whole word (keywords are case-sensitive, as in go-bexpr)? */
  private atKeyword(word: string): boolean {
    return this.src.startsWith(word, this.pos) && !isIdentChar(this.src.charCodeAt(this.pos + word.length));
  }

  private skipSpace(): void {
    while (this.pos < this.src.length && isSpace(this.src.charCodeAt(this.pos))) this.pos++;
  }

  private skipSpaceAndGet(): number {
    this.skipSpace();
    return this.pos;
  }

  private enter(at: number): void {
    if (++this.depth > MAX_NESTING) {
      this.fail(at, `expression nests more than ${MAX_NESTING} levels of "(" and "not"`);
    }
  }

  /** `line:column` (1-based) of a character offset. */
  private where(offset: number): string {
    let line = 1;
    let lineStart = 0;
    for (let i = 0; i < offset; i++) {
      if (this.src.charCodeAt(i) === 10) {
        line++;
        lineStart = i + 1;
      }
    }
    return `${line}:${offset - lineStart + 1}`;
  }

  /** What sits at offset, for "found …": the next word or symbol run, or "end of input". */
  private found(offset: number): string {
    if (offset >= this.src.length) return 'end of input';
    let end = offset + 1;
    const first = this.src.charCodeAt(offset);
    if (first === 34 || first === 96) {
      const close = this.src.indexOf(this.src[offset]!, offset + 1);
      end = close < 0 || close - offset > 16 ? Math.min(this.src.length, offset + 16) : close + 1;
      return JSON.stringify(this.src.slice(offset, end));
    }
    const sameClass = (c: number) => (isBareChar(first) ? isBareChar(c) : !isBareChar(c) && !isSpace(c));
    while (end < this.src.length && end - offset < 16 && sameClass(this.src.charCodeAt(end))) end++;
    return JSON.stringify(this.src.slice(offset, end));
  }

  private fail(offset: number, message: string): never {
    throw phareError('PHARE_ERR_FILTER_SYNTAX', `${PREFIX}${this.where(offset)} (${offset}): ${message}`);
  }
}

function anyOf(parts: Pred[]): Pred {
  return (item) => {
    for (const p of parts) if (p(item)) return true;
    return false;
  };
}

function allOf(parts: Pred[]): Pred {
  return (item) => {
    for (const p of parts) if (!p(item)) return false;
    return true;
  };
}

/** Scalar equality the way go-bexpr coerces the literal to the field's type. */
function equals(value: unknown, lit: Literal): boolean {
  switch (typeof value) {
    case 'string':
      return value === lit.text;
    case 'number':
      return value === lit.num;
    case 'boolean':
      return value === lit.bool;
    default:
      return false;
  }
}

function isEmpty(value: unknown): boolean {
  if (value === null || value === undefined) return true;
  if (typeof value === 'string' || Array.isArray(value)) return value.length === 0;
  if (typeof value === 'object') {
    for (const key in value) if (Object.hasOwn(value, key)) return false;
    return true;
  }
  return false;
}

/** `in`/`contains`: element equality on arrays, key presence on maps, substring on strings. */
function contains(value: unknown, lit: Literal): boolean {
  if (typeof value === 'string') return value.includes(lit.text);
  if (Array.isArray(value)) {
    for (const element of value) if (equals(element, lit)) return true;
    return false;
  }
  if (value !== null && typeof value === 'object') return Object.hasOwn(value, lit.text);
  return false;
}

function leafTest(op: MatchOp, lit: Literal | undefined, re: RegExp | undefined): Pred {
  switch (op) {
    case '==':
      return (v) => equals(v, lit!);
    case '!=':
      return (v) => !equals(v, lit!);
    case 'empty':
      return isEmpty;
    case 'not empty':
      return (v) => !isEmpty(v);
    case 'in':
      return (v) => contains(v, lit!);
    case 'not in':
      return (v) => !contains(v, lit!);
    case 'matches':
      return (v) => testRegex(re!, v);
    case 'not matches':
      return (v) => !testRegex(re!, v);
  }
}

function testRegex(re: RegExp, value: unknown): boolean {
  if (typeof value === 'string') return re.test(value);
  if (typeof value === 'number' || typeof value === 'boolean') return re.test(String(value));
  return false;
}

/**
 * Walks the selector path. Arrays met before the end of the path fan out (ANY element); a digit-only step
 * indexes an array instead. A missing key or a non-object in the way is evaluated as an absent (undefined)
 * value, which gives go-bexpr's missing-map-key results: `==` false, `!=` true, `is empty` true.
 */
function matcher(path: Segment[], op: MatchOp, lit: Literal | undefined, re: RegExp | undefined): Pred {
  const leaf = leafTest(op, lit, re);
  const n = path.length;
  const walk = (value: unknown, depth: number): boolean => {
    if (depth === n) return leaf(value);
    const seg = path[depth]!;
    if (Array.isArray(value)) {
      if (seg.index !== undefined) return walk(value[seg.index], depth + 1);
      for (const element of value) if (walk(element, depth)) return true;
      return false;
    }
    if (value !== null && typeof value === 'object' && Object.hasOwn(value, seg.key)) {
      return walk((value as Record<string, unknown>)[seg.key], depth + 1);
    }
    return leaf(undefined);
  };
  return (item) => walk(item, 0);
}

/**
 * Compiles a Consul `?filter=` expression into a predicate over JSON wire objects. Parse once, evaluate
 * many times; the predicate never throws.
 *
 * @throws PhareError `PHARE_ERR_FILTER_SYNTAX` (400) naming the line:column (offset) and what was expected,
 *   e.g. `Failed to create boolean expression evaluator: 1:14 (13): expected a value after "==", found end of input`.
 * @example
 * const passing = compileFilter('Service.Tags contains "v2" and Checks.Status != critical');
 * const entries = healthEntries.filter(passing);
 */
export function compileFilter(expression: string): CompiledFilter {
  const pred = new Parser(String(expression)).parse();
  const fn = (item: unknown): boolean => pred(item);
  Object.defineProperty(fn, 'expression', { value: expression, enumerable: true });
  return fn as CompiledFilter;
}
