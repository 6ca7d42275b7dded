/** CPU feature detection from /proc/cpuinfo: a copy of this project's build machine's first core entry (AMD EPYC, Zen 4/5 class: AVX-512 VNNI and AVX-VNNI). */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { cpuFeatures, parseCpuFlags } from '../../src/runtime/cpu.js';

const EPYC = readFileSync(new URL('./fixtures/cpuinfo/amd-epyc-vnni.txt', import.meta.url), 'utf8');

describe('parseCpuFlags', () => {
  it('reads VNNI, AVX-512 and AVX2 from a real /proc/cpuinfo entry', () => {
    const f = parseCpuFlags(EPYC);
    expect(f).toEqual({ avx2: true, avx512f: true, avx512Vnni: true, avxVnni: true, vnni: true, flags: ['avx2', 'avx512f', 'avx512_vnni', 'avx_vnni'] });
  });

  it('an AVX2-only CPU (Intel Haswell flags) has no VNNI', () => {
    const haswell = 'processor\t: 0\nflags\t\t: fpu vme sse sse2 ssse3 fma sse4_1 sse4_2 popcnt avx f16c bmi1 avx2 bmi2\n';
    const f = parseCpuFlags(haswell);
    expect([f.avx2, f.avx512f, f.vnni]).toEqual([true, false, false]);
    // "avx512_vnni" must match as a whole word, not inside another flag
    expect(parseCpuFlags('flags : avx512_vnnix').vnni).toBe(false);
  });

  it('no flags line, or no file: nothing detected', () => {
    expect(parseCpuFlags('processor : 0\n').flags).toEqual([]);
    expect(cpuFeatures('/nonexistent/cpuinfo')).toBeUndefined();
  });
});
