/** Physical CPU cores (Linux /proc/cpuinfo: distinct physical id + core id), else the logical count. */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

export function physicalCores(): number {
  try {
    const info = readFileSync('/proc/cpuinfo', 'utf8');
    const seen = new Set<string>();
    for (const block of info.split(/\n\s*\n/)) {
      const phys = /^physical id\s*:\s*(\d+)/m.exec(block)?.[1];
      const core = /^core id\s*:\s*(\d+)/m.exec(block)?.[1];
      if (phys !== undefined && core !== undefined) seen.add(`${phys}:${core}`);
    }
    if (seen.size > 0) return Math.min(seen.size, availableParallelism());
  } catch {
    // not Linux
  }
  return availableParallelism();
}
