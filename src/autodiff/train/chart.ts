/**
 * A hand-made SVG line chart (no dependencies, deterministic text for the same input): panels stacked
 * vertically, each with a frame, grid, tick labels, axis titles, a legend and one polyline per series
 * (markers for sparse series).
 */

export interface ChartSeries {
  name: string;
  points: ReadonlyArray<readonly [number, number]>;
  color: string;
  /** Circles at the points (for sparse series such as evaluations). */
  markers?: boolean;
  /** Line width (default 1.5). */
  width?: number;
}

export interface ChartPanel {
  title: string;
  xLabel: string;
  yLabel: string;
  series: ChartSeries[];
  /** Force the y range to include these values (e.g. 0). */
  yInclude?: number[];
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** About `count` round tick values spanning [lo, hi]. */
export function ticks(lo: number, hi: number, count = 5): number[] {
  if (!(Number.isFinite(lo) && Number.isFinite(hi))) return [];
  if (hi <= lo) {
    const pad = lo === 0 ? 1 : Math.abs(lo) / 10;
    lo -= pad;
    hi += pad;
  }
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 5, 10].find((m) => m * mag >= raw) ?? 10) * mag;
  const out: number[] = [];
  for (let v = Math.floor(lo / step) * step; v <= hi + step / 2; v += step) out.push(Number(v.toPrecision(10)));
  if (out.length > 1 && out[1] <= lo) out.shift();
  return out;
}

function label(v: number): string {
  const a = Math.abs(v);
  if (a >= 10000) return `${Number((v / 1000).toPrecision(3))}k`;
  if (a >= 1 || v === 0) return String(Number(v.toPrecision(4)));
  return String(Number(v.toPrecision(2)));
}

function panel(p: ChartPanel, top: number, width: number, height: number): string {
  const m = { l: 62, r: 14, t: 30, b: 42 };
  const w = width - m.l - m.r;
  const h = height - m.t - m.b;
  const parts = [`<g transform="translate(0 ${top})">`, `<text x="${width / 2}" y="19" text-anchor="middle" font-size="14" font-weight="bold">${esc(p.title)}</text>`];
  const pts = p.series.flatMap((s) => s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)));
  if (pts.length === 0) {
    parts.push(`<text x="${width / 2}" y="${m.t + h / 2}" text-anchor="middle" font-size="12" fill="#777">no data</text></g>`);
    return parts.join('\n');
  }
  const xs = pts.map((q) => q[0]);
  const ys = [...pts.map((q) => q[1]), ...(p.yInclude ?? [])];
  const xt = ticks(Math.min(...xs), Math.max(...xs));
  const yt = ticks(Math.min(...ys), Math.max(...ys));
  const x0 = Math.min(xt[0], ...xs);
  const x1 = Math.max(xt[xt.length - 1], ...xs);
  const y0 = Math.min(yt[0], ...ys);
  const y1 = Math.max(yt[yt.length - 1], ...ys);
  const sx = (x: number) => (m.l + (x1 > x0 ? ((x - x0) / (x1 - x0)) * w : w / 2)).toFixed(1);
  const sy = (y: number) => (m.t + (y1 > y0 ? h - ((y - y0) / (y1 - y0)) * h : h / 2)).toFixed(1);
  parts.push(`<rect x="${m.l}" y="${m.t}" width="${w}" height="${h}" fill="none" stroke="#999"/>`);
  for (const v of xt) {
    parts.push(`<line x1="${sx(v)}" y1="${m.t}" x2="${sx(v)}" y2="${m.t + h}" stroke="#eee"/>`);
    parts.push(`<text x="${sx(v)}" y="${m.t + h + 15}" text-anchor="middle" font-size="11">${label(v)}</text>`);
  }
  for (const v of yt) {
    parts.push(`<line x1="${m.l}" y1="${sy(v)}" x2="${m.l + w}" y2="${sy(v)}" stroke="#eee"/>`);
    parts.push(`<text x="${m.l - 6}" y="${sy(v)}" text-anchor="end" dominant-baseline="middle" font-size="11">${label(v)}</text>`);
  }
  parts.push(`<text x="${m.l + w / 2}" y="${m.t + h + 34}" text-anchor="middle" font-size="12">${esc(p.xLabel)}</text>`);
  parts.push(`<text x="15" y="${m.t + h / 2}" text-anchor="middle" font-size="12" transform="rotate(-90 15 ${m.t + h / 2})">${esc(p.yLabel)}</text>`);
  p.series.forEach((s, i) => {
    const sp = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
    if (sp.length > 1) {
      parts.push(
        `<polyline fill="none" stroke="${s.color}" stroke-width="${s.width ?? 1.5}" points="${sp.map(([x, y]) => `${sx(x)},${sy(y)}`).join(' ')}"/>`,
      );
    }
    if (s.markers || sp.length === 1) for (const [x, y] of sp) parts.push(`<circle cx="${sx(x)}" cy="${sy(y)}" r="3" fill="${s.color}"/>`);
    const ly = m.t + 12 + i * 16;
    parts.push(`<line x1="${m.l + w - 170}" y1="${ly}" x2="${m.l + w - 150}" y2="${ly}" stroke="${s.color}" stroke-width="2"/>`);
    parts.push(`<text x="${m.l + w - 145}" y="${ly}" dominant-baseline="middle" font-size="11">${esc(s.name)}</text>`);
  });
  parts.push('</g>');
  return parts.join('\n');
}

/** An SVG document with the panels one under the other. */
export function chartSvg(panels: readonly ChartPanel[], opts: { width?: number; panelHeight?: number; caption?: string } = {}): string {
  const width = opts.width ?? 760;
  const ph = opts.panelHeight ?? 270;
  const cap = opts.caption ? 22 : 0;
  const height = ph * panels.length + cap;
  const body = panels.map((p, i) => panel(p, i * ph, width, ph)).join('\n');
  const caption = opts.caption
    ? `\n<text x="${width / 2}" y="${height - 7}" text-anchor="middle" font-size="11" fill="#555">${esc(opts.caption)}</text>`
    : '';
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">\n` +
    `<rect width="100%" height="100%" fill="white"/>\n${body}${caption}\n</svg>\n`
  );
}
