import { describe, expect, it } from 'vitest';
import { fmt, isWide, renderTable, stringWidth, stripAnsi } from '../../src/report/table.js';

/** [char, East_Asian_Width] from Python 3.11 unicodedata.east_asian_width (Unicode 14). */
const EAW: Array<[string, string]> = [
  ['a', 'Na'], ['Z', 'Na'], ['9', 'Na'], [' ', 'Na'], ['~', 'Na'], ['中', 'W'], ['国', 'W'], ['马', 'W'], ['云', 'W'],
  ['杭', 'W'], ['州', 'W'], ['阿', 'W'], ['里', 'W'], ['巴', 'W'], ['Ａ', 'F'], ['Ｂ', 'F'], ['１', 'F'], ['２', 'F'],
  ['。', 'W'], ['，', 'F'], ['、', 'W'], ['《', 'W'], ['》', 'W'], ['「', 'W'], ['」', 'W'], ['！', 'F'], ['ｶ', 'H'],
  ['ﾞ', 'H'], ['한', 'W'], ['글', 'W'], ['あ', 'W'], ['ア', 'W'], ['가', 'W'], ['ー', 'W'], ['€', 'A'], ['é', 'A'],
  ['É', 'N'], ['©', 'N'], ['°', 'A'], ['±', 'A'], ['×', 'A'], ['α', 'A'], ['Ж', 'A'], ['→', 'A'], ['★', 'A'],
  ['☆', 'A'], ['♪', 'A'], ['✓', 'N'], ['✔', 'N'], ['⌚', 'W'], ['⏰', 'W'], ['☕', 'W'], ['♈', 'W'], ['🙂', 'W'],
  ['😀', 'W'], ['🚀', 'W'], ['🤖', 'W'], ['𠀋', 'W'], ['𪚥', 'W'], ['ღ', 'N'], ['\u3000', 'F'], ['⺀', 'W'], ['｡', 'H'],
  ['￠', 'F'],
];

describe('stringWidth', () => {
  it('counts East Asian Wide/Fullwidth as 2 and everything else as 1 (Python unicodedata facts)', () => {
    for (const [ch, eaw] of EAW) {
      const expected = eaw === 'W' || eaw === 'F' ? 2 : 1;
      expect([ch, stringWidth(ch)]).toEqual([ch, expected]);
      expect(isWide(ch.codePointAt(0)!)).toBe(expected === 2);
    }
  });

  it("matches string-width's README examples", () => {
    expect(stringWidth('abcde')).toBe(5);
    expect(stringWidth('古池や')).toBe(6);
    expect(stringWidth('\u001B[1m古\u001B[22m')).toBe(2);
  });

  it('gives combining marks, zero-width and control characters no width', () => {
    expect(stringWidth('e\u0301')).toBe(1); // e + combining acute
    expect(stringWidth('a\u200bb')).toBe(2); // zero-width space (Cf)
    expect(stringWidth('a\u0007b')).toBe(2); // BEL
    expect(stringWidth('马云\ufe0f')).toBe(4); // variation selector (Mn)
    expect(stripAnsi('\u001b[31mred\u001b[39m')).toBe('red');
  });
});

describe('renderTable', () => {
  it('aligns columns by display width with CJK text', () => {
    const text = renderTable(
      ['type', 'text', 'F1'],
      [
        ['PER', '马云', '91.20'],
        ['LOC', '杭州 (Hangzhou)', '8.50'],
        ['ORGANIZATION', '阿里巴巴', '100.00'],
      ],
      { align: ['left', 'left', 'right'] },
    );
    expect(text).toBe(
      [
        'type          text                 F1',
        '------------  ---------------  ------',
        'PER           马云              91.20',
        'LOC           杭州 (Hangzhou)    8.50',
        'ORGANIZATION  阿里巴巴         100.00',
        '',
      ].join('\n'),
    );
    for (const line of text.trimEnd().split('\n')) expect(stringWidth(line)).toBe(37);
  });
});

describe('fmt', () => {
  it('formats percentages, bytes and integers', () => {
    expect(fmt.pct(0.91234)).toBe('91.23');
    expect(fmt.bytes(512)).toBe('512 B');
    expect(fmt.bytes(1536)).toBe('1.50 KiB');
    expect(fmt.bytes(17 * 1024 * 1024)).toBe('17.0 MiB');
    expect(fmt.bytes(420 * 1024 * 1024)).toBe('420 MiB');
    expect(fmt.int(1234567.4)).toBe('1,234,567');
  });
});
