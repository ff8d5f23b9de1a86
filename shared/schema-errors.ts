/**
 * Turns zod's issues into the contract's 400 messages, which name the field
 * the way a reader writes it (`branches[0].ops[1].amount`) and say what was
 * expected and what came: "Expected `timeoutMs` to be an integer, got string
 * "soon"." Clients and tests match on these sentences, so they stay stable
 * whatever words zod itself uses.
 *
 * A message is built in two steps. zod calls `issueText` for each issue,
 * nested ones too, with a path that is relative to the nearest union; it
 * answers an encoded `Said` (what kind of sentence, and its predicate).
 * `sentenceOf` then joins the full path in. A union's issue picks the option
 * the input meant (by its tag) and carries that option's issue up, with the
 * option's path kept in `sub`.
 */
import type { z } from 'zod';

type Key = PropertyKey;

/** A sentence without its subject: the path is joined in last, when it is known in full. */
interface Said {
  readonly kind: 'expected' | 'missing' | 'unknown';
  /** For `expected`: the predicate ("to be a string, got number 5"). For `unknown`: the allowed fields. */
  readonly text: string;
  /** For `unknown`: the field that was not expected. */
  readonly key?: string;
  /** Path below the issue's own, from an option of a union. */
  readonly sub?: readonly Key[];
}

const SAID_MARK = '\u0000said:';

/** What a JSON value is, for "got ..." in a message: short, and never the whole of a large value. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  const shown = JSON.stringify(value);
  return `${typeof value} ${shown.length > 80 ? `${shown.slice(0, 77)}...` : shown}`;
}

/** `branches[0].ops[1].amount`; the empty path is the body itself. */
export function pathText(path: readonly Key[], root = 'body'): string {
  let out = '';
  for (const k of path) out += typeof k === 'number' ? `[${k}]` : out === '' ? String(k) : `.${String(k)}`;
  return out === '' ? root : out;
}

const encode = (said: Said): string => SAID_MARK + JSON.stringify(said);

/** A message zod did not build through `issueText` (a check's own message) is a predicate. */
function decode(message: string): Said {
  if (message.startsWith(SAID_MARK)) return JSON.parse(message.slice(SAID_MARK.length)) as Said;
  return { kind: 'expected', text: message };
}

const EXPECTED_TEXT: Readonly<Record<string, string>> = {
  string: 'a string',
  number: 'a finite number',
  int: 'an integer',
  object: 'an object',
  array: 'an array',
  boolean: 'a boolean',
};

const quoted = (values: readonly unknown[]): string => values.map((v) => JSON.stringify(v)).join(', ');

type Issue = z.core.$ZodRawIssue;

function sizeText(iss: Issue & { code: 'too_big' | 'too_small' }): string {
  const big = iss.code === 'too_big';
  const bound = Number(big ? iss.maximum : iss.minimum);
  const origin = String(iss.origin);
  if (origin === 'string') return `to be ${big ? 'at most' : 'at least'} ${bound} characters`;
  if (origin === 'array' || origin === 'set') {
    const got = Array.isArray(iss.input) ? `, got ${iss.input.length}` : '';
    return `to have ${big ? 'at most' : 'at least'} ${bound} items${big ? got : ''}`;
  }
  const inclusive = iss.inclusive !== false;
  return `to be ${big ? (inclusive ? '<=' : '<') : inclusive ? '>=' : '>'} ${bound}`;
}

/** The option of a union the input meant: the one whose tag value it carries, else the one that takes any tag. */
function chosenOption(iss: Issue & { code: 'invalid_union' }): number | undefined {
  const options = (iss.inst?._zod.def as { options?: readonly z.core.$ZodType[] } | undefined)?.options ?? [];
  const input = iss.input;
  const tagged = typeof input === 'object' && input !== null ? (input as Record<string, unknown>) : undefined;
  let catchAll: number | undefined;
  for (const [i, option] of options.entries()) {
    const values = option._zod.propValues;
    const keys = values === undefined ? [] : Object.keys(values);
    if (keys.length === 0) catchAll ??= i;
    if (tagged !== undefined && keys.some((k) => values?.[k]?.has(tagged[k] as never) === true)) return i;
  }
  return catchAll;
}

function unionSaid(iss: Issue & { code: 'invalid_union' }): Said {
  if (iss.note === 'No matching discriminator' || iss.errors.length === 0) {
    const tag = iss.discriminator === undefined || typeof iss.input !== 'object' || iss.input === null ? undefined : (iss.input as Record<string, unknown>)[iss.discriminator];
    return { kind: 'expected', text: `to be one of ${quoted((iss.options ?? []) as readonly unknown[])}, got ${describeValue(tag)}` };
  }
  const chosen = chosenOption(iss);
  const first = chosen === undefined ? undefined : iss.errors[chosen]?.[0];
  if (first === undefined) return { kind: 'expected', text: 'to match one of its allowed shapes' };
  const said = decode(first.message);
  return { ...said, sub: [...first.path, ...(said.sub ?? [])] };
}

function saidOf(iss: Issue): Said {
  switch (iss.code) {
    case 'invalid_type': {
      const path = iss.path ?? [];
      if (iss.input === undefined && path.length > 0) return { kind: 'missing', text: '' };
      const expected = EXPECTED_TEXT[iss.expected] ?? iss.expected;
      return { kind: 'expected', text: `to be ${expected}, got ${describeValue(iss.input)}` };
    }
    case 'too_big':
    case 'too_small':
      return { kind: 'expected', text: sizeText(iss) };
    case 'invalid_format':
      return { kind: 'expected', text: iss.format === 'regex' && iss.pattern !== undefined ? `to match ${iss.pattern}` : `to be a valid ${iss.format}` };
    case 'invalid_value':
      return { kind: 'expected', text: `to be one of ${quoted(iss.values)}, got ${describeValue(iss.input)}` };
    case 'unrecognized_keys': {
      const shape = (iss.inst?._zod.def as { shape?: Record<string, unknown> } | undefined)?.shape ?? {};
      return { kind: 'unknown', key: String(iss.keys[0]), text: Object.keys(shape).join(', ') };
    }
    case 'invalid_union':
      return unionSaid(iss);
    default:
      return { kind: 'expected', text: iss.message ?? 'to be valid' };
  }
}

/** zod's error map for every parse of request data: see the file's comment. */
export const issueText = (iss: Issue): string => encode(saidOf(iss));

/** The contract's sentence for a finished issue. */
export function sentenceOf(issue: z.core.$ZodIssue, root = 'body'): string {
  const said = decode(issue.message);
  const path = [...issue.path, ...(said.sub ?? [])];
  switch (said.kind) {
    case 'missing':
      return `Missing field \`${pathText(path, root)}\`.`;
    case 'unknown':
      return `Unknown field \`${pathText([...path, said.key ?? ''], root)}\` (allowed: ${said.text}).`;
    default:
      return `Expected \`${pathText(path, root)}\` ${said.text}.`;
  }
}
