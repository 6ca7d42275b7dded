/**
 * Highlight colours for entity types on the web page: people red, places cyan, organisations yellow
 * (the reference look), every other type a distinct neon colour. Pure: same types in, same colours out.
 */

/** The three reserved colours and the type names (case-insensitive) that claim them, in priority order. */
export const RESERVED_COLORS: ReadonlyArray<{ color: string; names: readonly string[] }> = [
  { color: '#ff2e63', names: ['PER', 'PERSON', 'PEOPLE', 'NR', 'NAME'] },
  { color: '#08f7fe', names: ['LOC', 'LOCATION', 'GPE', 'NS', 'ADDRESS', 'PLACE'] },
  { color: '#fef200', names: ['ORG', 'ORGANIZATION', 'ORGANISATION', 'NT', 'COMPANY'] },
];

/** Colours for the other types, in order (neon magenta, green, orange, violet, blue, pink, mint, ...). */
export const PALETTE: readonly string[] = [
  '#ff00ff',
  '#39ff14',
  '#ff9f1c',
  '#b967ff',
  '#3d7bff',
  '#ff77c8',
  '#00ffa3',
  '#c6ff00',
  '#ff5e00',
  '#7df9ff',
  '#e0aaff',
  '#ffd6a5',
];

/**
 * A colour per type: each reserved colour goes to the type matching its highest-priority name (the first
 * such type in `types` order); the other types take PALETTE colours in `types` order, then golden-angle
 * hues once the palette runs out. No two types share a colour.
 */
export function typeColors(types: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  const taken = new Set<string>();
  for (const { color, names } of RESERVED_COLORS) {
    for (const name of names) {
      const t = types.find((x) => x.toUpperCase() === name && out[x] === undefined);
      if (t !== undefined) {
        out[t] = color;
        taken.add(color);
        break;
      }
    }
  }
  let p = 0;
  let extra = 0;
  for (const t of types) {
    if (out[t] !== undefined) continue;
    let c: string;
    if (p < PALETTE.length) c = PALETTE[p++];
    else {
      do c = hslHex((extra++ * 137.508) % 360, 100, 62);
      while (taken.has(c));
    }
    out[t] = c;
    taken.add(c);
  }
  return out;
}

/** `#rrggbb` for an HSL colour (h in degrees, s and l in percent). */
export function hslHex(h: number, s: number, l: number): string {
  const S = s / 100;
  const L = l / 100;
  const k = (n: number): number => (n + h / 30) % 12;
  const a = S * Math.min(L, 1 - L);
  const f = (n: number): number => L - a * Math.max(-1, Math.min(k(n) - 3, Math.min(9 - k(n), 1)));
  const hex = (x: number): string => Math.round(x * 255).toString(16).padStart(2, '0');
  return `#${hex(f(0))}${hex(f(8))}${hex(f(4))}`;
}
