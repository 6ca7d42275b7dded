/**
 * Transfer-set augmentation from labelled sentences (cf. TextBrewer's data augmentation for NER
 * distillation): new sentences whose gold spans are exact by construction, so the teacher labels them
 * like any transfer text and the hard term still has gold. Pure and seeded.
 *
 * - substitution: one entity of a sentence is replaced by the surface text of another entity of the
 *   same type taken from a different sentence; later spans shift by the length difference.
 * - mixing (span-preserving): the prefix of one sentence up to a cut point and the suffix of another
 *   from a cut point, each cut outside every entity, so no span is broken; spans are carried over.
 */
import type { Example, Span } from '../ner/types.js';

export interface AugmentCounts {
  substitution: number;
  mixing: number;
}

/** Cut points of `ex` (0 … text.length) that fall inside no entity. */
function cutPoints(ex: Example): number[] {
  const inside = new Uint8Array(ex.text.length + 1);
  for (const e of ex.entities) for (let i = e.start + 1; i < e.end; i++) inside[i] = 1;
  const out: number[] = [];
  for (let i = 0; i <= ex.text.length; i++) if (!inside[i]) out.push(i);
  return out;
}

/** Replace entity `k` of `ex` by `surface` (same type). */
export function substituteEntity(ex: Example, k: number, surface: string): Example {
  const sorted = [...ex.entities].sort((a, b) => a.start - b.start);
  const e = sorted[k];
  const delta = surface.length - (e.end - e.start);
  const entities: Span[] = sorted.map((s, i) =>
    i === k ? { start: s.start, end: s.start + surface.length, type: s.type } : s.start >= e.end ? { ...s, start: s.start + delta, end: s.end + delta } : { ...s },
  );
  return { text: ex.text.slice(0, e.start) + surface + ex.text.slice(e.end), entities };
}

/** `a` up to character `cutA` followed by `b` from character `cutB` (both cuts outside entities). */
export function mixSentences(a: Example, cutA: number, b: Example, cutB: number): Example {
  const entities: Span[] = [
    ...a.entities.filter((e) => e.end <= cutA).map((e) => ({ ...e })),
    ...b.entities.filter((e) => e.start >= cutB).map((e) => ({ start: e.start - cutB + cutA, end: e.end - cutB + cutA, type: e.type })),
  ].sort((x, y) => x.start - y.start);
  return { text: a.text.slice(0, cutA) + b.text.slice(cutB), entities };
}

/**
 * About `perSentence` × |examples| new sentences, half by substitution and half by mixing (a kind that
 * cannot be made — no entity, no other mention of the type — is skipped), at most `maxChars` long.
 * Deterministic for a given `rand`.
 */
export function augmentExamples(
  examples: readonly Example[],
  perSentence: number,
  rand: () => number,
  maxChars = 200,
): { examples: Example[]; counts: AugmentCounts } {
  const out: Example[] = [];
  const counts: AugmentCounts = { substitution: 0, mixing: 0 };
  const n = examples.length;
  if (n < 2 || !(perSentence > 0)) return { examples: out, counts };
  // mentions by type, with the sentence they come from
  const byType = new Map<string, Array<{ text: string; from: number }>>();
  examples.forEach((ex, i) => {
    for (const e of ex.entities) {
      const list = byType.get(e.type) ?? [];
      list.push({ text: ex.text.slice(e.start, e.end), from: i });
      byType.set(e.type, list);
    }
  });
  const target = Math.round(perSentence * n);
  const pick = (k: number) => Math.floor(rand() * k);
  for (let made = 0, tries = 0; made < target && tries < 4 * target; tries++) {
    const a = examples[pick(n)];
    if (tries % 2 === 0) {
      if (a.entities.length === 0) continue;
      const k = pick(a.entities.length);
      const e = [...a.entities].sort((x, y) => x.start - y.start)[k];
      const pool = byType.get(e.type)!.filter((m) => examples[m.from] !== a && m.text !== a.text.slice(e.start, e.end));
      if (pool.length === 0) continue;
      const aug = substituteEntity(a, k, pool[pick(pool.length)].text);
      if (aug.text.length > maxChars) continue;
      out.push(aug);
      counts.substitution++;
    } else {
      const b = examples[pick(n)];
      if (b === a) continue;
      const ca = cutPoints(a).filter((c) => c > 0);
      const cb = cutPoints(b).filter((c) => c < b.text.length);
      if (ca.length === 0 || cb.length === 0) continue;
      const aug = mixSentences(a, ca[pick(ca.length)], b, cb[pick(cb.length)]);
      if (aug.text.length === 0 || aug.text.length > maxChars) continue;
      out.push(aug);
      counts.mixing++;
    }
    made++;
  }
  return { examples: out, counts };
}
