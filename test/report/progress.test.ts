import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createProgress, withProgress } from '../../src/report/progress.js';

/** A writable that claims to be a terminal and records what is drawn. */
function fakeTty(): Writable & { text: string; isTTY: boolean; columns: number } {
  const chunks: string[] = [];
  const w = new Writable({
    write(chunk: Buffer | string, _enc, cb) {
      chunks.push(String(chunk));
      cb();
    },
  }) as Writable & { text: string; isTTY: boolean; columns: number };
  Object.defineProperty(w, 'text', { get: () => chunks.join('') });
  w.isTTY = true;
  w.columns = 120;
  return w;
}

describe('progress bars', () => {
  it('draw nothing when stderr is not a terminal or the command prints JSON', () => {
    const s = fakeTty();
    const a = createProgress('eval', 10, { interactive: false, stream: s });
    const b = createProgress('eval', 10, { interactive: true, json: true, stream: s });
    a.update(5);
    b.update(5);
    a.stop();
    b.stop();
    expect(a.visible).toBe(false);
    expect(b.visible).toBe(false);
    expect(s.text).toBe('');
  });

  it('draw on a terminal and are cleared on stop, also when the work throws', async () => {
    const s = fakeTty();
    await expect(
      withProgress('eval', 4, { interactive: true, stream: s }, async (p) => {
        expect(p.visible).toBe(true);
        p.update(2, 'sentences');
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(s.text).toContain('eval [');
    const tail = s.text.slice(s.text.lastIndexOf('eval ['));
    expect(tail).toContain('\u001b[2K'); // clearOnComplete: the bar's line is erased on stop
    expect(tail).toContain('\u001b[?25h'); // and the cursor shown again
    const before = s.text.length;
    // a stopped bar ignores further updates
    const p = createProgress('x', 2, { interactive: true, stream: s });
    p.stop();
    const after = s.text.length;
    p.update(1);
    p.stop();
    expect(s.text.length).toBe(after);
    expect(after).toBeGreaterThanOrEqual(before);
  });
});
