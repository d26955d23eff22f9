// Runs litefs or litestream to the end: its output, or an error with what it said.
import { spawn } from 'node:child_process';
import process from 'node:process';
import { tool } from './backup-settings.ts';

export function runTool(name: 'litefs' | 'litestream', args: string[], env: NodeJS.ProcessEnv = process.env): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(tool(name), args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    child.on('error', reject);
    child.on('close', (status) => {
      if (status === 0) resolve(output);
      else reject(new Error(`${name} ${args[0]} failed (exit ${status}): ${output.trim().split('\n').slice(-3).join(' | ')}`));
    });
  });
}
