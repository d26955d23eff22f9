// Input checks that either return a well-typed value or throw a 422 problem naming the field.
import { USERNAME } from './limits.ts';
import { unprocessable } from './problem.ts';

// The body must be a JSON object with every required field and nothing it does not know.
export function fields(body: unknown, required: readonly string[], optional: readonly string[] = []): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw unprocessable('the body must be a JSON object');
  }
  const record = body as Record<string, unknown>;
  const unknown = Object.keys(record).filter((key) => !required.includes(key) && !optional.includes(key));
  if (unknown.length) throw unprocessable(`unknown field(s): ${unknown.join(', ')}`);
  const missing = required.filter((key) => record[key] === undefined);
  if (missing.length) throw unprocessable(`missing field(s): ${missing.join(', ')}`);
  return record;
}

// `trim` checks (and returns) the text without surrounding white space, as it will be stored.
export function string(value: unknown, name: string, rules: { min?: number; max?: number; pattern?: RegExp; hint?: string; trim?: boolean } = {}): string {
  if (typeof value !== 'string') throw unprocessable(`${name} must be a string`);
  const { min = 1, max = 200, pattern, hint, trim } = rules;
  const text = trim ? value.trim() : value;
  if (text.length < min || text.length > max) throw unprocessable(`${name} must be ${min} to ${max} characters long${trim ? ' (white space around it aside)' : ''}`);
  if (pattern && !pattern.test(text)) throw unprocessable(`${name} ${hint ?? `must match ${pattern}`}`);
  return text;
}

const usernamePattern = new RegExp(USERNAME.pattern);

// Usernames are kept lower-case, so "Alice" and "alice" are one account in both services.
export function validUsername(value: unknown, name = 'username'): string {
  const { minLength: min, maxLength: max, hint } = USERNAME;
  return string(typeof value === 'string' ? value.toLowerCase() : value, name, { min, max, pattern: usernamePattern, hint });
}

export function integer(value: unknown, name: string, rules: { min?: number; max?: number } = {}): number {
  const { min = 1, max = Number.MAX_SAFE_INTEGER } = rules;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw unprocessable(`${name} must be a whole number from ${min} to ${max}`);
  }
  return value;
}

export function boolean(value: unknown, name: string): boolean {
  if (typeof value !== 'boolean') throw unprocessable(`${name} must be true or false`);
  return value;
}

// A path parameter such as /sections/:id, which arrives as text.
export function idParam(value: string | undefined, name: string): number {
  const id = Number(value);
  if (!value || !/^[1-9][0-9]{0,15}$/.test(value) || !Number.isSafeInteger(id)) {
    throw unprocessable(`${name} must be a positive whole number`);
  }
  return id;
}

export function oneOrMoreOf<T extends string>(value: unknown, name: string, allowed: readonly T[]): T[] {
  if (!Array.isArray(value) || value.length === 0) throw unprocessable(`${name} must be a non-empty list`);
  for (const item of value) {
    if (!allowed.includes(item as T)) throw unprocessable(`${name} may hold only ${allowed.join(', ')}; got ${JSON.stringify(item)}`);
  }
  return [...new Set(value as T[])];
}
