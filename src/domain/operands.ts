import { invalidArgument } from '../shared/errors.js';

/**
 * Plain decimal numbers only: an optional minus (or plus), digits with an optional fraction
 * (or a leading-dot fraction), and an optional exponent. No hex, no `Infinity`, no `NaN`,
 * no whitespace, no thousands separators: `Number()` alone would accept most of those.
 */
const DECIMAL = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;
const MAX_OPERAND_CHARS = 400;

/** Parses one operand from a URL path segment; throws INVALID_ARGUMENT naming it otherwise. */
export function parseOperand(raw: string, name: string): number {
  if (raw.length === 0) throw invalidArgument(`${name} is empty; expected a finite decimal number`);
  if (raw.length > MAX_OPERAND_CHARS || !DECIMAL.test(raw)) {
    throw invalidArgument(`${name} is not a finite decimal number: ${JSON.stringify(truncate(raw))}`);
  }
  const value = Number(raw);
  if (!Number.isFinite(value)) throw invalidArgument(`${name} is out of range: ${JSON.stringify(truncate(raw))}`);
  return value;
}

const truncate = (raw: string) => (raw.length > 40 ? `${raw.slice(0, 40)}…` : raw);
