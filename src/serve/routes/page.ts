/**
 * The web page: `GET /` and `/assets/*` from src/serve/public/. Static routes of the page plug in here
 * (add a row to ASSETS, or register further routes in registerPageRoutes); they are hidden from the
 * OpenAPI description.
 */
import { readFile } from 'node:fs/promises';
import type { FastifyInstance } from 'fastify';

export const ASSETS: ReadonlyArray<[string, string, string]> = [
  ['/', 'index.html', 'text/html; charset=utf-8'],
  ['/assets/app.js', 'app.js', 'text/javascript; charset=utf-8'],
  ['/assets/style.css', 'style.css', 'text/css; charset=utf-8'],
  ['/assets/favicon.svg', 'favicon.svg', 'image/svg+xml'],
];

/** Everything the page needs is served from here: no CDN, no external fonts. */
export const CSP =
  "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** The page's files (src/serve/public/, found from both dist/serve/routes/ and src/serve/routes/). */
export const PUBLIC_DIR = new URL('../../../src/serve/public/', import.meta.url);

/** Read the page's files (before the app is built, so a missing file fails start-up). */
export async function loadAssets(): Promise<Map<string, { body: Buffer; type: string }>> {
  const assets = new Map<string, { body: Buffer; type: string }>();
  for (const [route, file, type] of ASSETS) assets.set(route, { body: await readFile(new URL(file, PUBLIC_DIR)), type });
  return assets;
}

export function registerPageRoutes(app: FastifyInstance, assets: Map<string, { body: Buffer; type: string }>): void {
  for (const [route, asset] of assets) {
    app.get(route, { schema: { hide: true } }, async (_req, reply) => {
      reply.header('Content-Security-Policy', CSP);
      reply.header('Cache-Control', 'no-cache');
      return reply.type(asset.type).send(asset.body);
    });
  }
}
