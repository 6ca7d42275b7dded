import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** A sibling temp path for `path` (same directory, so rename is atomic). */
export function tempSibling(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

/** Write a file atomically: write to a temp sibling, then rename over the target. */
export async function atomicWriteFile(path: string, data: string | Uint8Array): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = tempSibling(path);
  try {
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/**
 * Build a directory atomically: `fill` writes into a temp sibling directory; when it resolves, the
 * temp directory replaces `dir` (an existing `dir` is removed only then). On failure nothing is left.
 */
export async function atomicWriteDir<T>(dir: string, fill: (tmpDir: string) => Promise<T>): Promise<T> {
  await mkdir(dirname(dir), { recursive: true });
  const tmp = tempSibling(dir);
  await mkdir(tmp, { recursive: true });
  try {
    const result = await fill(tmp);
    const old = (await exists(dir)) ? tempSibling(dir) : undefined;
    if (old) await rename(dir, old);
    await rename(tmp, dir);
    if (old) await rm(old, { recursive: true, force: true });
    return result;
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
}

export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** SHA-256 of a file's bytes, hex, streamed (works for multi-GB files). */
export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  await new Promise<void>((resolve, reject) => {
    createReadStream(path)
      .on('data', (c) => h.update(c))
      .on('end', () => resolve())
      .on('error', reject);
  });
  return h.digest('hex');
}

export function sha256(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}
