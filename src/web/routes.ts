/**
 * The serve routes behind "run in this browser" (all GET, all from disk):
 * - `/web/model.json`: the page's model description (WebModelSpec: labels, CRF, vocab, window…);
 * - `/web/model.onnx`: the folder's ONNX file;
 * - `/web/js/<module>.js`: ranerc's compiled modules the page imports (src/web/assets.ts WEB_MODULES);
 * - `/web/ort/<file>`: onnxruntime-web's wasm bundle from node_modules/onnxruntime-web/dist.
 */
import { readFile } from 'node:fs/promises';
import type { FastifyInstance } from 'fastify';
import type { ModelFolder } from '../onnx/types.js';
import { ORT_FILES, ortFile, WEB_MODULES, webModule, webSpec, webUnsupported } from './assets.js';

export interface WebRouteOptions {
  folder: ModelFolder;
  model: string;
  window: number;
  overlap: number;
  batchSize: number;
  maxBatchTokens: number;
  /** Content-Security-Policy header of the responses. */
  csp: string;
}

const JS = 'text/javascript; charset=utf-8';

/** Static files of the page, not part of the API: left out of /openapi.json. */
const HIDDEN = { schema: { hide: true } };

export function registerWebRoutes(app: FastifyInstance, o: WebRouteOptions): void {
  const unsupported = webUnsupported(o.folder);
  let spec: Promise<string> | undefined;
  const modules = new Map<string, Promise<string>>();
  app.get('/web/model.json', HIDDEN, async (_req, reply) => {
    if (unsupported) return reply.code(501).type('application/json').send(JSON.stringify({ error: { code: 'not_in_browser', message: unsupported } }));
    spec ??= webSpec(o.folder, { model: o.model, window: o.window, overlap: o.overlap, batchSize: o.batchSize, maxBatchTokens: o.maxBatchTokens, onnx: 'web/model.onnx' }).then((s) => JSON.stringify(s));
    return reply.header('Cache-Control', 'no-cache').type('application/json; charset=utf-8').send(await spec);
  });
  app.get('/web/model.onnx', HIDDEN, async (_req, reply) => reply.header('Cache-Control', 'no-cache').type('application/octet-stream').send(await readFile(o.folder.onnxPath)));
  for (const m of WEB_MODULES) {
    app.get(`/web/js/${m}.js`, HIDDEN, async (_req, reply) => {
      if (!modules.has(m)) modules.set(m, webModule(m));
      return reply.header('Content-Security-Policy', o.csp).header('Cache-Control', 'no-cache').type(JS).send(await modules.get(m)!);
    });
  }
  for (const f of ORT_FILES) {
    app.get(`/web/ort/${f}`, HIDDEN, async (_req, reply) =>
      reply
        .header('Cache-Control', 'no-cache')
        .type(f.endsWith('.wasm') ? 'application/wasm' : JS)
        .send(await readFile(ortFile(f))),
    );
  }
}
