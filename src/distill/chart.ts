/**
 * A small hand-made SVG line chart (no dependencies): panels stacked vertically, each with axes, ticks,
 * a legend and one polyline (plus point markers) per series. Deterministic output for the same input.
 */

export interface Series {
  name: string;
  points: Array<[number, number]>;
  color?: string;
  /** Draw a marker at every point (for sparse series such as dev evaluations). */
  markers?: boolean;
}

export interface Panel {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  /** Logarithmic y axis (values ≤ 0 are dropped). */
  yLog?: boolean;
}

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b'];

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** "Nice" tick values (steps of 1, 2, 2.5 or 5 × 10ⁿ) from at or below `lo` to at or above `hi`. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [];
  if (hi === lo) {
    const d = Math.abs(lo) > 0 ? Math.abs(lo) * 0.1 : 1;
    lo -= d;
    hi += d;
  }
  const raw = (hi - lo) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  const first = Math.floor(lo / step + 1e-9);
  const last = Math.ceil(hi / step - 1e-9);
  for (let k = first; k <= last; k++) out.push(Number((k * step).toPrecision(12)));
  return out;
}

function fmtTick(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e4) return `${(v / 1000).toFixed(0)}k`;
  if (a >= 100 || Number.isInteger(v)) return v.toFixed(0);
  if (a >= 1) return v.toFixed(1).replace(/\.0$/, '');
  return v.toPrecision(2);
}

/** Log-axis ticks: 1, 2, 5 × 10ⁿ inside [lo, hi] (values, not logs), at least the two ends' decades. */
export function logTicks(lo: number, hi: number): number[] {
  const out: number[] = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
    for (const m of [1, 2, 5]) {
      const v = Number((m * 10 ** e).toPrecision(12));
      if (v >= lo * 0.999 && v <= hi * 1.001) out.push(v);
    }
  }
  return out;
}

function panelSvg(p: Panel, top: number, width: number, height: number): string {
  const m = { left: 64, right: 16, top: 28 + 16 * Math.ceil(p.series.length / 3), bottom: 40 };
  const w = width - m.left - m.right;
  const h = height - m.top - m.bottom;
  const ok = ([x, y]: [number, number]) => Number.isFinite(x) && Number.isFinite(y) && (!p.yLog || y > 0);
  const fy = (y: number) => (p.yLog ? Math.log10(y) : y);
  const pts = p.series.flatMap((s) => s.points).filter(ok).map(([x, y]) => [x, fy(y)] as [number, number]);
  const out: string[] = [`<g transform="translate(0,${top})">`];
  out.push(`<text x="${width / 2}" y="18" text-anchor="middle" font-size="14" font-weight="bold">${esc(p.title)}</text>`);
  if (pts.length === 0) {
    out.push(`<text x="${width / 2}" y="${m.top + h / 2}" text-anchor="middle" font-size="12" fill="#666">no data</text></g>`);
    return out.join('\n');
  }
  let [x0, x1] = [Math.min(...pts.map((q) => q[0])), Math.max(...pts.map((q) => q[0]))];
  let [y0, y1] = [Math.min(...pts.map((q) => q[1])), Math.max(...pts.map((q) => q[1]))];
  const xt = niceTicks(x0, x1);
  const yt = p.yLog ? logTicks(10 ** y0, 10 ** y1).map(Math.log10) : niceTicks(y0, y1);
  x0 = Math.min(x0, xt[0]);
  x1 = Math.max(x1, xt[xt.length - 1]);
  if (!p.yLog) {
    y0 = Math.min(y0, yt[0]);
    y1 = Math.max(y1, yt[yt.length - 1]);
  }
  const sx = (x: number) => m.left + (x1 === x0 ? w / 2 : ((x - x0) / (x1 - x0)) * w);
  const sy = (y: number) => m.top + (y1 === y0 ? h / 2 : h - ((y - y0) / (y1 - y0)) * h);
  out.push(`<rect x="${m.left}" y="${m.top}" width="${w}" height="${h}" fill="none" stroke="#999"/>`);
  for (const t of xt) {
    const x = sx(t).toFixed(1);
    out.push(`<line x1="${x}" y1="${m.top}" x2="${x}" y2="${m.top + h}" stroke="#eee"/>`);
    out.push(`<text x="${x}" y="${m.top + h + 14}" text-anchor="middle" font-size="11">${fmtTick(t)}</text>`);
  }
  for (const t of yt) {
    const y = sy(t).toFixed(1);
    out.push(`<line x1="${m.left}" y1="${y}" x2="${m.left + w}" y2="${y}" stroke="#eee"/>`);
    out.push(`<text x="${m.left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle" font-size="11">${fmtTick(p.yLog ? 10 ** t : t)}</text>`);
  }
  out.push(`<text x="${m.left + w / 2}" y="${m.top + h + 32}" text-anchor="middle" font-size="12">${esc(p.xLabel)}</text>`);
  out.push(
    `<text x="16" y="${m.top + h / 2}" text-anchor="middle" font-size="12" transform="rotate(-90 16 ${m.top + h / 2})">${esc(p.yLabel)}</text>`,
  );
  p.series.forEach((s, i) => {
    const color = s.color ?? PALETTE[i % PALETTE.length];
    const sp = s.points.filter(ok).map(([x, y]) => [x, fy(y)] as [number, number]);
    if (sp.length > 1) {
      const d = sp.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ');
      out.push(`<polyline fill="none" stroke="${color}" stroke-width="1.5" points="${d}"/>`);
    }
    if (s.markers || sp.length === 1) {
      for (const [x, y] of sp) out.push(`<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="3" fill="${color}"/>`);
    }
    // legend: under the title, three entries a row
    const lx = m.left + (i % 3) * Math.floor(w / 3);
    const ly = 34 + 16 * Math.floor(i / 3);
    out.push(`<line x1="${lx}" y1="${ly}" x2="${lx + 20}" y2="${ly}" stroke="${color}" stroke-width="2"/>`);
    out.push(`<text x="${lx + 25}" y="${ly}" dominant-baseline="middle" font-size="11">${esc(s.name)}</text>`);
  });
  out.push('</g>');
  return out.join('\n');
}

/** An SVG document with the panels stacked vertically. */
export function lineChartSvg(panels: Panel[], opts: { width?: number; panelHeight?: number } = {}): string {
  const width = opts.width ?? 720;
  const ph = opts.panelHeight ?? 280;
  const body = panels.map((p, i) => panelSvg(p, i * ph, width, ph)).join('\n');
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${ph * panels.length}" ` +
    `viewBox="0 0 ${width} ${ph * panels.length}" font-family="sans-serif">\n` +
    `<rect width="100%" height="100%" fill="white"/>\n${body}\n</svg>\n`
  );
}
