// The command line of the TypeScript commands in bin/, as bin/cli.sh is for the bash ones: a
// command's header comment (its leading // lines) is its usage. A module, not a command.
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import path from 'node:path';
import process from 'node:process';
import { parseArgs } from 'node:util';

export function usageOf(file: string): string {
  const lines = readFileSync(file, 'utf8').split('\n');
  return lines
    .slice(0, lines.findIndex((line) => !line.startsWith('//')))
    .map((line) => line.replace(/^\/\/ ?/, ''))
    .join('\n');
}

// What is wrong and the usage on stderr, and exit 2 (a usage error).
export function refuse(file: string, message: string): never {
  console.error(`${path.basename(file)}: ${message}\n${usageOf(file)}`);
  process.exit(2);
}

// Reads process.argv for the command in `file` (import.meta.filename), before it does anything:
// -h/--help prints the usage on stdout and exits 0; an option not in `flags` (all are boolean), or
// fewer than `min` or more than `max` other arguments, is refused (exit 2).
export function commandLine<const Flag extends string>(
  file: string,
  { flags = [], min = 0, max = 0 }: { flags?: Flag[]; min?: number; max?: number },
): { flags: Record<Flag, boolean>; operands: string[] } {
  const options = Object.fromEntries(flags.map((flag) => [flag, { type: 'boolean' as const }]));
  let parsed: { values: Record<string, unknown>; positionals: string[] };
  try {
    parsed = parseArgs({ args: process.argv.slice(2), options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true });
  } catch (error) {
    refuse(file, (error as Error).message.replace(/\. To specify.*/s, ''));
  }
  if (parsed.values.help) {
    console.log(usageOf(file));
    process.exit(0);
  }
  const operands = parsed.positionals;
  if (operands.length < min || operands.length > max) refuse(file, `wrong number of arguments (${operands.length})`);
  return { flags: Object.fromEntries(flags.map((flag) => [flag, parsed.values[flag] === true])) as Record<Flag, boolean>, operands };
}

// Whether something accepts connections on 127.0.0.1:port (a running instance of the formation).
export function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}

// For commands whose options take values: parses them with node's parseArgs (`options` is its
// config); -h/--help prints `usage` and exits 0; a parse error is refused with it (exit 2).
export function options(options: Record<string, { type: 'string' | 'boolean'; default?: string | boolean }>, usage: string): Record<string, string> {
  let values: Record<string, unknown>;
  try {
    values = parseArgs({ args: process.argv.slice(2), options: { ...options, help: { type: 'boolean', short: 'h' } } }).values;
  } catch (error) {
    console.error(`${(error as Error).message.replace(/\. To specify.*/s, '')}\n\n${usage}`);
    process.exit(2);
  }
  if (values.help) {
    console.log(usage);
    process.exit(0);
  }
  return values as Record<string, string>;
}
