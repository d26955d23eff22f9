// The TIME operand of the restore commands: ISO 8601, or undefined for the latest. A module, not a command.
import { refuse } from './cli.ts';

export function parseTime(file: string, text: string | undefined): Date | undefined {
  if (text === undefined) return undefined;
  const time = new Date(text);
  if (!/^\d{4}-\d\d-\d\dT/.test(text) || Number.isNaN(time.getTime())) refuse(file, `'${text}' is not an ISO 8601 time (e.g. 2026-12-03T09:58:00Z)`);
  return time;
}
