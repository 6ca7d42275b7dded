/**
 * The head-importance heat map (layers × heads) as a hand-written SVG: one cell per head coloured
 * by its normalised importance (viridis-like ramp, dark = unimportant), its value printed in the
 * cell, removed heads framed in red with the round that removed them. Deterministic text output.
 */

export interface HeatmapInput {
  /** Scores per layer (rows may differ in length); null = not measured. */
  scores: ReadonlyArray<ReadonlyArray<number | null>>;
  /** Per layer and head: the pruning round (1-based) that removed it, or 0 / undefined when kept. */
  removedIn?: ReadonlyArray<ReadonlyArray<number | undefined>>;
  title: string;
  /** Legend caption (what the colour means). */
  caption?: string;
}

/** Viridis sampled at 5 points (matplotlib's colormap data), interpolated linearly. */
const STOPS: Array<[number, number, number]> = [
  [68, 1, 84],
  [59, 82, 139],
  [33, 145, 140],
  [94, 201, 98],
  [253, 231, 37],
];

/** `#rrggbb` for a value in [0, 1] (clamped; NaN → grey). */
export function rampColor(v: number): string {
  if (!Number.isFinite(v)) return '#bbbbbb';
  const x = Math.min(1, Math.max(0, v)) * (STOPS.length - 1);
  const i = Math.min(STOPS.length - 2, Math.floor(x));
  const f = x - i;
  const c = STOPS[i].map((a, k) => Math.round(a + (STOPS[i + 1][k] - a) * f));
  return `#${c.map((n) => n.toString(16).padStart(2, '0')).join('')}`;
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function fmt(v: number): string {
  return v.toFixed(2);
}

/** The heat map as an SVG document. Colours are scaled to the largest score shown. */
export function heatmapSvg(input: HeatmapInput): string {
  const rows = input.scores;
  const layers = rows.length;
  const heads = Math.max(1, ...rows.map((r) => r.length));
  const cell = heads > 24 ? 18 : 36;
  const showValues = cell >= 36;
  const left = 70;
  const top = 60;
  const legendH = 46;
  const caption = `${input.caption ?? 'importance (normalised per layer)'}; red frame = removed (rN: round N)`;
  // sans-serif at 11-13 px: about 7 px per character is enough room
  const width = Math.ceil(Math.max(left + heads * cell + 20, 20 + input.title.length * 7.5, left + caption.length * 6.2));
  const height = top + layers * cell + 24 + legendH;
  let max = 0;
  for (const r of rows) for (const v of r) if (v !== null && Number.isFinite(v) && v > max) max = v;
  const scale = max > 0 ? max : 1;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<title>${esc(input.title)}</title>`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="10" y="20" font-size="13" font-weight="bold">${esc(input.title)}</text>`,
  );
  for (let h = 0; h < heads; h++) {
    out.push(`<text x="${left + h * cell + cell / 2}" y="${top - 6}" text-anchor="middle">${h}</text>`);
  }
  out.push(`<text x="${left + (heads * cell) / 2}" y="${top - 22}" text-anchor="middle" fill="#555555">head</text>`);
  rows.forEach((r, l) => {
    const y = top + l * cell;
    out.push(`<text x="${left - 8}" y="${y + cell / 2 + 4}" text-anchor="end">layer ${l}</text>`);
    for (let h = 0; h < r.length; h++) {
      const v = r[h];
      const x = left + h * cell;
      const t = v === null ? NaN : v / scale;
      const fill = rampColor(t);
      const round = input.removedIn?.[l]?.[h] ?? 0;
      const label = `layer ${l} head ${h}: ${v === null ? 'n/a' : fmt(v)}${round ? `, removed in round ${round}` : ''}`;
      out.push(`<rect x="${x}" y="${y}" width="${cell}" height="${cell}" fill="${fill}" stroke="#ffffff"><title>${esc(label)}</title></rect>`);
      const ink = Number.isFinite(t) && t > 0.6 ? '#000000' : '#ffffff';
      if (showValues && v !== null) {
        out.push(`<text x="${x + cell / 2}" y="${y + cell / 2 + 4}" text-anchor="middle" fill="${ink}" font-size="10">${fmt(v)}</text>`);
      }
      if (round) {
        out.push(`<rect x="${x + 1.5}" y="${y + 1.5}" width="${cell - 3}" height="${cell - 3}" fill="none" stroke="#e8202a" stroke-width="3"/>`);
        if (showValues) out.push(`<text x="${x + cell - 4}" y="${y + 11}" text-anchor="end" fill="#ffffff" stroke="#e8202a" stroke-width="0.4" font-size="8" font-weight="bold">r${round}</text>`);
      }
    }
  });
  // legend
  const ly = top + layers * cell + 18;
  const lw = Math.min(200, heads * cell);
  out.push('<defs><linearGradient id="ramp">');
  STOPS.forEach((_, i) => out.push(`<stop offset="${(i / (STOPS.length - 1)).toFixed(2)}" stop-color="${rampColor(i / (STOPS.length - 1))}"/>`));
  out.push('</linearGradient></defs>');
  out.push(`<rect x="${left}" y="${ly}" width="${lw}" height="10" fill="url(#ramp)"/>`);
  out.push(`<text x="${left}" y="${ly + 22}">0</text>`);
  out.push(`<text x="${left + lw}" y="${ly + 22}" text-anchor="end">${fmt(max)}</text>`);
  out.push(
    `<text x="${left}" y="${ly + 36}" fill="#555555">${esc(caption)}</text>`,
  );
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
