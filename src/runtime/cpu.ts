/**
 * The CPU features that decide how fast onnxruntime's int8 kernels run: VNNI (avx512_vnni / avx_vnni: one
 * instruction per u8×s8 dot product), AVX-512 and AVX2 (without VNNI, u8×s8 products saturate in 16 bits,
 * which is why quantizers offer `reduce_range`: 7-bit weights). Read from /proc/cpuinfo on Linux.
 */
import { readFileSync } from 'node:fs';

export interface CpuFeatures {
  avx2: boolean;
  avx512f: boolean;
  avx512Vnni: boolean;
  avxVnni: boolean;
  /** Either VNNI flavour. */
  vnni: boolean;
  /** The int8-relevant flags present, in this order: avx2, avx512f, avx512_vnni, avx_vnni. */
  flags: string[];
}

const RELEVANT = ['avx2', 'avx512f', 'avx512_vnni', 'avx_vnni'] as const;

/** Features from /proc/cpuinfo text (the first `flags` line; x86 layout). */
export function parseCpuFlags(cpuinfo: string): CpuFeatures {
  const line = cpuinfo.split('\n').find((l) => /^flags\s*:/.test(l)) ?? '';
  const have = new Set(line.replace(/^flags\s*:/, '').trim().split(/\s+/));
  const flags = RELEVANT.filter((f) => have.has(f));
  const avx512Vnni = have.has('avx512_vnni');
  const avxVnni = have.has('avx_vnni');
  return { avx2: have.has('avx2'), avx512f: have.has('avx512f'), avx512Vnni, avxVnni, vnni: avx512Vnni || avxVnni, flags };
}

/** This machine's features, or undefined where /proc/cpuinfo cannot be read (not Linux). */
export function cpuFeatures(path = '/proc/cpuinfo'): CpuFeatures | undefined {
  try {
    return parseCpuFlags(readFileSync(path, 'utf8'));
  } catch {
    return undefined;
  }
}
