/**
 * Node labels and label selectors: one grammar for every place that reads or writes them
 * (`postern ls`, `postern ssh`, `postern nodes`, the proxy's `GET /webapi/nodes`, auth's
 * node registry and access decision).
 *
 *   labels    = "" | pair *( "," pair )        whitespace around a pair or its "=" is ignored
 *   pair      = name "=" value
 *   name      = 1 to 63 of  A-Z a-z 0-9 . _ / -   starting with a letter or digit
 *   value     = 1 to 63 of  A-Z a-z 0-9 . _ : / @ + -
 *
 * So a name or value never holds "=" or "," (there is no quoting), nor a space or a "*".
 * A selector is the same text: a node matches when it has every label of the selector
 * with the same value. A name given twice with two values is an error (nothing could
 * match); the same pair twice is the pair once.
 */
import { ValidationError } from '../core/errors.ts';
import { escapeControl } from '../core/text.ts';

/** Labels of a node, or a selector: name to value. */
export type Labels = Record<string, string>;

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$/;
const VALUE_RE = /^[A-Za-z0-9._:/@+-]{1,63}$/;

const NAME_HINT = 'A label name is 1 to 63 letters, digits or ".", "_", "/", "-", starting with a letter or digit, e.g. env or team';
const VALUE_HINT = 'A label value is 1 to 63 letters, digits or ".", "_", ":", "/", "@", "+", "-" (no "*", "=", "," or spaces)';
const SYNTAX_HINT = 'Labels are NAME=VALUE[,NAME=VALUE…], e.g. env=prod or env=prod,team=web; a value may not contain "=" or ","';

/** What is being read, for messages: node labels or a selector. */
export type LabelsKind = 'labels' | 'label selector';

/** True when `name` is a label name of the grammar (a role's node_labels use the same names). */
export function isLabelName(name: string): boolean {
  return NAME_RE.test(name);
}

/** Why a name is not a label name, or undefined when it is one. */
function nameProblem(name: string): string | undefined {
  return isLabelName(name) ? undefined : `invalid label name "${escapeControl(name.slice(0, 80))}"`;
}

/** Why a value is not a label value, or undefined when it is one. */
function valueProblem(name: string, value: string): string | undefined {
  if (VALUE_RE.test(value)) return undefined;
  const why = value === '' ? ' (it is empty)' : /[=,]/.test(value) ? ' (a value may not contain "=" or ",")' : '';
  return `invalid value "${escapeControl(value.slice(0, 80))}" of label "${escapeControl(name)}"${why}`;
}

/**
 * Checks labels that arrived as an object (an API body): every name and value must be
 * in the grammar above. Returns a plain copy; a ValidationError names the bad one.
 */
export function checkLabels(labels: unknown): Labels {
  if (typeof labels !== 'object' || labels === null || Array.isArray(labels)) throw new ValidationError('labels must be an object of NAME: VALUE');
  const out: Labels = {};
  for (const [k, v] of Object.entries(labels)) {
    const bad = nameProblem(k);
    if (bad) throw new ValidationError(bad, { hint: NAME_HINT });
    const badValue = valueProblem(k, typeof v === 'string' ? v : String(v));
    if (typeof v !== 'string' || badValue) throw new ValidationError(badValue ?? `invalid value of label "${k}"`, { hint: VALUE_HINT });
    out[k] = v;
  }
  return out;
}

/**
 * Parses `NAME=VALUE[,NAME=VALUE…]` (the empty text is no labels). A ValidationError
 * (code ERR_POSTERN_INVALID) says what is wrong, quoting the text: `invalid label
 * selector "zone=a=1": invalid value "a=1" of label "zone" (a value may not contain …)`.
 */
export function parseLabels(text: string, kind: LabelsKind = 'labels'): Labels {
  const fail = (problem: string, hint = SYNTAX_HINT): never => {
    throw new ValidationError(`invalid ${kind} "${escapeControl(text.slice(0, 200))}": ${problem}`, { hint });
  };
  const out: Labels = {};
  if (text.trim() === '') return out;
  for (const raw of text.split(',')) {
    const part = raw.trim();
    if (part === '') fail('an empty item between commas');
    const eq = part.indexOf('=');
    if (eq < 0) fail(`"${escapeControl(part)}" is not NAME=VALUE`);
    const name = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (name === '') fail(`"${escapeControl(part)}" has no label name before "="`);
    const badName = nameProblem(name);
    if (badName) fail(badName, NAME_HINT);
    const badValue = valueProblem(name, value);
    if (badValue) fail(badValue, value.includes('=') ? SYNTAX_HINT : VALUE_HINT);
    if (Object.hasOwn(out, name) && out[name] !== value) fail(`label "${escapeControl(name)}" is given twice, with different values`);
    out[name] = value;
  }
  return out;
}

/** Parses a label selector (see parseLabels); the messages call it a selector. */
export function parseSelector(text: string): Labels {
  return parseLabels(text, 'label selector');
}

/** True when a target names nodes by label (`env=prod`) rather than a node or host: it has an "=". */
export function isSelector(target: string): boolean {
  return target.includes('=');
}

/** Labels as text in the grammar: `NAME=VALUE` pairs sorted by name, comma-joined ('' for none). */
export function formatLabels(labels: Labels): string {
  return Object.keys(labels).sort().map((k) => `${k}=${labels[k]}`).join(',');
}

/** True when `labels` has every label of `selector`, with the same value (the empty selector matches all). */
export function selectorMatches(selector: Labels, labels: Labels): boolean {
  return Object.entries(selector).every(([k, v]) => Object.hasOwn(labels, k) && labels[k] === v);
}
