/**
 * Aligned plain-text tables for the terminal, CJK-aware: columns are padded by display width, where
 * East Asian Wide (W) and Fullwidth (F) characters take two cells, combining marks, format and control
 * characters none, and everything else one (string-width's rules, ambiguous-width characters narrow).
 */

/**
 * Code point ranges [first, last] of East_Asian_Width W or F (Unicode 14 EastAsianWidth.txt, from
 * Python's unicodedata; runs of unassigned code points inside a range are merged into it, and the
 * unassigned planes 2 and 3 are wide by default as EastAsianWidth.txt specifies).
 */
const WIDE: readonly number[] = [
  0x1100, 0x115f, 0x231a, 0x231b, 0x2329, 0x232a, 0x23e9, 0x23ec, 0x23f0, 0x23f0, 0x23f3, 0x23f3, 0x25fd, 0x25fe,
  0x2614, 0x2615, 0x2648, 0x2653, 0x267f, 0x267f, 0x2693, 0x2693, 0x26a1, 0x26a1, 0x26aa, 0x26ab, 0x26bd, 0x26be,
  0x26c4, 0x26c5, 0x26ce, 0x26ce, 0x26d4, 0x26d4, 0x26ea, 0x26ea, 0x26f2, 0x26f3, 0x26f5, 0x26f5, 0x26fa, 0x26fa,
  0x26fd, 0x26fd, 0x2705, 0x2705, 0x270a, 0x270b, 0x2728, 0x2728, 0x274c, 0x274c, 0x274e, 0x274e, 0x2753, 0x2755,
  0x2757, 0x2757, 0x2795, 0x2797, 0x27b0, 0x27b0, 0x27bf, 0x27bf, 0x2b1b, 0x2b1c, 0x2b50, 0x2b50, 0x2b55, 0x2b55,
  0x2e80, 0x303e, 0x3041, 0x3247, 0x3250, 0x4dbf, 0x4e00, 0xa4c6, 0xa960, 0xa97c, 0xac00, 0xd7a3, 0xf900, 0xfad9,
  0xfe10, 0xfe19, 0xfe30, 0xfe6b, 0xff01, 0xff60, 0xffe0, 0xffe6, 0x16fe0, 0x1b2fb, 0x1f004, 0x1f004, 0x1f0cf,
  0x1f0cf, 0x1f18e, 0x1f18e, 0x1f191, 0x1f19a, 0x1f200, 0x1f320, 0x1f32d, 0x1f335, 0x1f337, 0x1f37c, 0x1f37e,
  0x1f393, 0x1f3a0, 0x1f3ca, 0x1f3cf, 0x1f3d3, 0x1f3e0, 0x1f3f0, 0x1f3f4, 0x1f3f4, 0x1f3f8, 0x1f43e, 0x1f440,
  0x1f440, 0x1f442, 0x1f4fc, 0x1f4ff, 0x1f53d, 0x1f54b, 0x1f54e, 0x1f550, 0x1f567, 0x1f57a, 0x1f57a, 0x1f595,
  0x1f596, 0x1f5a4, 0x1f5a4, 0x1f5fb, 0x1f64f, 0x1f680, 0x1f6c5, 0x1f6cc, 0x1f6cc, 0x1f6d0, 0x1f6d2, 0x1f6d5,
  0x1f6df, 0x1f6eb, 0x1f6ec, 0x1f6f4, 0x1f6fc, 0x1f7e0, 0x1f7f0, 0x1f90c, 0x1f93a, 0x1f93c, 0x1f945, 0x1f947,
  0x1f9ff, 0x1fa70, 0x1faf6, 0x20000, 0x3fffd,
];

/** Whether a code point is East Asian Wide or Fullwidth (binary search over WIDE). */
export function isWide(cp: number): boolean {
  let lo = 0;
  let hi = WIDE.length / 2 - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (cp < WIDE[2 * mid]) hi = mid - 1;
    else if (cp > WIDE[2 * mid + 1]) lo = mid + 1;
    else return true;
  }
  return false;
}

const ANSI = /[\u001b\u009b][[\]()#;?]*(?:(?:(?:[a-zA-Z\d]*(?:;[-a-zA-Z\d/#&.:=?%@~_]*)*)?\u0007)|(?:(?:\d{1,4}(?:;\d{0,4})*)?[\dA-PR-TZcf-ntqry=><~]))/g;
const ZERO = /^[\p{Cc}\p{Cf}\p{Mn}\p{Me}\p{Cs}]$/u;

/** Remove ANSI escape sequences (colours, cursor moves). */
export function stripAnsi(s: string): string {
  return s.replace(ANSI, '');
}

/** Terminal display width of a string (ANSI escapes ignored). */
export function stringWidth(s: string): number {
  let w = 0;
  for (const ch of stripAnsi(s)) {
    const cp = ch.codePointAt(0)!;
    if (cp >= 0x20 && cp < 0x7f) w += 1;
    else if (ZERO.test(ch)) continue;
    else w += isWide(cp) ? 2 : 1;
  }
  return w;
}

export type Align = 'left' | 'right';

export interface TableOptions {
  /** Per-column alignment (default: left). */
  align?: Align[];
  /** Spaces between columns (default 2). */
  gap?: number;
  /** Draw a dashed rule under the header (default true). */
  rule?: boolean;
  /** Left indent (default ''). */
  indent?: string;
}

/** Pad to a display width. */
export function padCell(s: string, width: number, align: Align): string {
  const fill = ' '.repeat(Math.max(0, width - stringWidth(s)));
  return align === 'right' ? fill + s : s + fill;
}

/** Render rows under a header as aligned columns; lines end with '\n', no trailing spaces. */
export function renderTable(header: string[], rows: string[][], opts: TableOptions = {}): string {
  const cols = Math.max(header.length, ...rows.map((r) => r.length));
  const widths = new Array<number>(cols).fill(0);
  for (const r of [header, ...rows]) {
    for (let c = 0; c < cols; c++) widths[c] = Math.max(widths[c], stringWidth(r[c] ?? ''));
  }
  const gap = ' '.repeat(opts.gap ?? 2);
  const indent = opts.indent ?? '';
  const line = (r: string[]) =>
    indent +
    widths
      .map((w, c) => padCell(r[c] ?? '', w, opts.align?.[c] ?? 'left'))
      .join(gap)
      .replace(/\s+$/, '');
  const out = [line(header)];
  if (opts.rule ?? true) out.push(indent + widths.map((w) => '-'.repeat(w)).join(gap));
  for (const r of rows) out.push(line(r));
  return `${out.join('\n')}\n`;
}

/** Format helpers shared by tables and Markdown. */
export const fmt = {
  /** A ratio as a percentage with 2 decimals ("91.23"). */
  pct(x: number): string {
    return (x * 100).toFixed(2);
  },
  /** Milliseconds with 2 decimals below 100, else 1. */
  ms(x: number): string {
    return x < 100 ? x.toFixed(2) : x.toFixed(1);
  },
  /** Integer with thousands separators. */
  int(n: number): string {
    return Math.round(n).toLocaleString('en-US');
  },
  /** Bytes in B / KiB / MiB / GiB. */
  bytes(n: number): string {
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let v = n;
    let u = 0;
    while (Math.abs(v) >= 1024 && u < units.length - 1) {
      v /= 1024;
      u++;
    }
    return u === 0 ? `${n} B` : `${v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2)} ${units[u]}`;
  },
  /** Rate with 1 decimal and separators. */
  rate(x: number): string {
    return x >= 100 ? fmt.int(x) : x.toFixed(1);
  },
};
