/**
 * The ranerc NER service: a fastify app over one Predictor (the pipeline `eval` and `predict` use).
 *
 * Routes
 * - `POST /predict` with `{"text": "马云在杭州"}` → `{"entities":[{"text":"马云","type":"PER","start":0,"end":2}, …]}`,
 *   byte for byte the line `ranerc predict` prints for that text (offsets in Unicode code points, end exclusive);
 *   with `{"texts": ["…", "…"]}` → `{"results":[{"entities":[…]}, …]}` in input order.
 * - `GET /healthz` → `{"status":"ok","state":"ready", …}`; `GET /metrics` → Prometheus text; `GET /api/info` → model
 *   name, labels, entity types and their page colours, limits; `GET /openapi.json` → the OpenAPI 3 description
 *   (from the route schemas, src/serve/schemas.ts); `GET /` and `/assets/*` → the web page (src/serve/routes/page.ts).
 *
 * Inference runs in an engine (src/serve/engine.ts): on the main thread (`workers: 0`) or in a pool of worker
 * threads (`workers: N`, src/serve/workers.ts). Answers are cached in an in-process LRU and, with `redis`, in a
 * Redis shared by replicas (src/serve/cache/redis.ts); at most `maxQueue` texts wait for the model, beyond that
 * requests get 429 with Retry-After. `lazy` loads the model on the first /predict.
 *
 * Concurrent texts are micro-batched (MicroBatcher: up to `maxBatch` texts, waiting at most `maxWaitMs`)
 * into one Predictor call; an LRU cache of `cacheSize` answers repeated texts, and a text already being
 * predicted is shared by the requests that ask for it meanwhile (both off when `cacheSize` is 0).
 *
 * Every error is JSON `{"error":{"code","message"}}` with a 4xx status for bad requests (400 bad JSON or
 * shape, 404 unknown path, 405 wrong method with `Allow`, 413 too large, 415 not JSON) and 500 for a
 * failure of the model; nothing a client sends can crash the process.
 */
import type { Socket } from 'node:net';
import { basename, dirname } from 'node:path';
import cors from '@fastify/cors';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import { loadModelFolder } from '../onnx/folder.js';
import type { ModelFolder } from '../onnx/types.js';
import { ranercVersion } from '../report/environment.js';
import { Predictor } from '../runtime/predict.js';
import { LabelSet } from '../ner/labels.js';
import { defaultOverlap } from '../ner/windows.js';
import { sha256File } from '../util/fs.js';
import { LruCache } from './cache/lru.js';
import { RedisCache } from './cache/redis.js';
import { typeColors } from './colors.js';
import { LaneEngine } from './engine.js';
import { ApiError, errorBody, JSON_TYPE, toApiError } from './errors.js';
import type { Registry } from 'prom-client';
import type { HealthState, RouteContext } from './routes/context.js';
import { registerOpsRoutes } from './routes/ops.js';
import { CSP, loadAssets, registerPageRoutes } from './routes/page.js';
import { registerWebRoutes } from '../web/routes.js';
import { registerPredictRoute } from './routes/predict.js';
import { batchRunner } from './run-batch.js';
import { buildMetrics } from './serve-metrics.js';
import { createPoolEngine } from './workers.js';

export { ApiError, errorBody } from './errors.js';
export { PUBLIC_DIR } from './routes/page.js';

/** Defaults of the service limits (also the CLI's defaults). */
export const SERVE_DEFAULTS = {
  port: 8080,
  host: '127.0.0.1',
  maxBatch: 32,
  maxWaitMs: 5,
  cacheSize: 1024,
  maxTextChars: 5000,
  maxTexts: 64,
  maxBodyBytes: 1024 * 1024,
  shutdownGraceMs: 10_000,
  maxQueue: 1024,
  cacheTtl: 86_400,
  rateLimit: 0,
  workers: 0,
} as const;

export interface ServeOptions {
  /** A model folder path (or bare .onnx with `labels`/`vocab`), or an already loaded folder. */
  model: string | ModelFolder;
  labels?: string;
  vocab?: string;
  /** Listen on this port (0 = any free port). Omitted: the app is built but not listening (use `app.inject`). */
  port?: number;
  /** Interface to listen on (default 127.0.0.1). */
  host?: string;
  /** Most texts per model run (default 32; 1 = one at a time). Also the Predictor's windows per onnxruntime run. */
  maxBatch?: number;
  /** Longest wait of a text for others to batch with (default 5 ms; 0 = never wait). */
  maxWaitMs?: number;
  /** LRU cache entries (default 1024; 0 disables the LRU; sharing of in-flight texts stays on while a cache is on). */
  cacheSize?: number;
  /** Longest text, in Unicode code points (default 5000). */
  maxTextChars?: number;
  /** Most texts in one `{"texts": [...]}` request (default 64). */
  maxTexts?: number;
  /** Largest request body in bytes (default 1 MiB). */
  maxBodyBytes?: number;
  /** onnxruntime intra-op threads (per worker; default: in-process onnxruntime's choice, pool cores / workers). */
  threads?: number;
  /** Tokens per window without [CLS]/[SEP] (default: the folder's max length − 2, as eval). */
  windowSize?: number;
  /** Tokens shared by consecutive windows (default as eval). */
  overlap?: number;
  /** How long `close()` lets in-flight requests finish before dropping their connections (default 10 s). */
  shutdownGraceMs?: number;
  /** Inference worker threads (default 0 = the model runs on the main thread). */
  workers?: number;
  /** Most texts waiting for the model; more get 429 with Retry-After (default 1024). */
  maxQueue?: number;
  /** Shared answer cache: redis://host:port (default none). */
  redis?: string;
  /** Lifetime of Redis entries in seconds (default 86400; 0 = no expiry). */
  cacheTtl?: number;
  /** Requests per minute per client address on /predict (default 0 = no limit). */
  rateLimit?: number;
  /** Allowed CORS origin(s): "*", one origin, or a comma-separated list (default: no CORS headers). */
  cors?: string;
  /** Load the model on the first /predict instead of at start-up (`/healthz` says loading until ready). */
  lazy?: boolean;
}

/** What `GET /api/info` answers (and the page uses for its legend). */
export interface ServeInfo {
  ranerc: string;
  model: string;
  /** The ranerc command that produced the folder (from ranerc.json), when known. */
  producedBy?: string;
  decoder: 'crf' | 'argmax';
  scheme: string;
  labels: string[];
  types: string[];
  colors: Record<string, string>;
  window: number;
  overlap: number;
  limits: {
    maxTextChars: number;
    maxTexts: number;
    maxBodyBytes: number;
    maxBatch: number;
    maxWaitMs: number;
    cacheSize: number;
    maxQueue: number;
    workers: number;
  };
}

export interface RanercServer {
  app: FastifyInstance;
  /** `http://host:port` once listening. */
  url?: string;
  info: ServeInfo;
  /** The Prometheus registry behind `/metrics`. */
  metrics: Registry;
  /** Stop accepting, let in-flight requests finish, run the queued texts, release the model. Idempotent. */
  close(): Promise<void>;
}

/** Paths the app serves and the methods each allows (HEAD comes with GET); used for 405 answers. */
const ROUTES: ReadonlyMap<string, string> = new Map([
  ['/predict', 'POST'],
  ['/healthz', 'GET, HEAD'],
  ['/metrics', 'GET, HEAD'],
  ['/api/info', 'GET, HEAD'],
  ['/openapi.json', 'GET, HEAD'],
]);

/** Methods a registered path allows (for 405 on paths registered by the page routes). */
function allowOf(app: FastifyInstance, path: string): string | undefined {
  const methods = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH'].filter((m) => app.hasRoute({ method: m as 'GET', url: path }));
  if (methods.length === 0) return undefined;
  return methods.flatMap((m) => (m === 'GET' ? ['GET', 'HEAD'] : [m])).join(', ');
}

/** A display name for the folder: its name, with the parent's for generic names ("teacher/model"). */
export function modelName(folder: Pick<ModelFolder, 'bare' | 'dir' | 'onnxPath'>): string {
  if (folder.bare) return basename(folder.onnxPath);
  const name = basename(folder.dir);
  return ['model', 'onnx', 'output', 'out', '.'].includes(name.toLowerCase()) ? `${basename(dirname(folder.dir))}/${name}` : name;
}

/**
 * Load the model (unless `lazy`), build the app, and (when `opts.port` is given) listen. Errors:
 * InputError/GraphError from loading the model; the listen error (EADDRINUSE, EACCES) as thrown by node.
 */
export async function createServer(opts: ServeOptions): Promise<RanercServer> {
  const o = { ...SERVE_DEFAULTS, ...definedOnly(opts) };
  const folder = typeof opts.model === 'string' ? await loadModelFolder({ model: opts.model, labels: opts.labels, vocab: opts.vocab }) : opts.model;
  const assets = await loadAssets();
  const windowSize = opts.windowSize ?? folder.maxLength - 2;
  const overlap = opts.overlap ?? defaultOverlap(windowSize);

  const cache = new LruCache<string, string>(o.cacheSize);
  const inflight = new Map<string, Promise<string>>();
  const share = o.cacheSize > 0 || opts.redis !== undefined;
  let engine: LaneEngine | undefined;
  let loading: Promise<LaneEngine> | undefined;
  let state: HealthState['state'] = 'unloaded';
  let redis: RedisCache | undefined;

  const m = buildMetrics({
    cacheEntries: () => cache.size,
    cacheCapacity: () => cache.capacity,
    queued: () => engine?.pending ?? 0,
    workers: () => o.workers,
    redisUp: () => (redis ? (redis.ready ? 1 : 0) : undefined),
  });

  let batchMs = 0;
  let batchCount = 0;
  const onBatch = (size: number, ms: number, ok: boolean): void => {
    batchMs += ms;
    batchCount++;
    m.batchSize.observe(size);
    m.batchSeconds.observe(ms / 1000);
    if (!ok) m.batchFailures.inc();
  };
  const openEngine = async (): Promise<LaneEngine> => {
    if (o.workers > 0) {
      return createPoolEngine({
        folder,
        workers: o.workers,
        threads: opts.threads,
        maxBatch: o.maxBatch,
        maxWaitMs: o.maxWaitMs,
        windowSize: opts.windowSize,
        overlap: opts.overlap,
        onBatch,
        onCalls: (n) => m.predictCalls.inc(n),
      });
    }
    const predictor = await Predictor.open(folder, { threads: opts.threads, batchSize: o.maxBatch, windowSize: opts.windowSize, overlap: opts.overlap });
    return new LaneEngine([batchRunner(predictor, () => m.predictCalls.inc())], { maxBatch: o.maxBatch, maxWaitMs: o.maxWaitMs, onBatch }, () =>
      predictor.close(),
    );
  };
  const getEngine = (): Promise<LaneEngine> => {
    if (engine) return Promise.resolve(engine);
    loading ??= (async () => {
      state = 'loading';
      try {
        engine = await openEngine();
        state = 'ready';
        return engine;
      } catch (e) {
        state = 'failed';
        loading = undefined;
        throw e;
      }
    })();
    return loading;
  };

  if (!o.lazy) await getEngine();
  try {
    if (opts.redis !== undefined) {
      const modelSha = await sha256File(folder.onnxPath);
      const settings = JSON.stringify({ window: windowSize, overlap, decoder: folder.crf ? 'crf' : 'argmax', labels: folder.labels, offsets: 'codepoint' });
      redis = new RedisCache({
        url: opts.redis,
        namespace: `${modelSha}\u0000${settings}`,
        ttlSeconds: o.cacheTtl,
        onFailure: (op) => m.redisFailures.inc({ op }),
      });
      await redis.waitReady(2000);
    }

    const ls = new LabelSet(folder.labels);
    const labels = { labels: folder.labels, scheme: ls.scheme, types: [...ls.types] };
    const info: ServeInfo = {
      ranerc: ranercVersion(),
      model: modelName(folder),
      ...(folder.provenance?.command ? { producedBy: folder.provenance.command } : {}),
      decoder: folder.crf ? 'crf' : 'argmax',
      scheme: labels.scheme,
      labels: [...labels.labels],
      types: labels.types,
      colors: typeColors(labels.types),
      window: windowSize,
      overlap,
      limits: {
        maxTextChars: o.maxTextChars,
        maxTexts: o.maxTexts,
        maxBodyBytes: o.maxBodyBytes,
        maxBatch: o.maxBatch,
        maxWaitMs: o.maxWaitMs,
        cacheSize: o.cacheSize,
        maxQueue: o.maxQueue,
        workers: o.workers,
      },
    };
    m.modelInfo.set(
      { model: info.model, decoder: info.decoder, scheme: info.scheme, labels: String(info.labels.length), window: String(info.window) },
      1,
    );

    /** Redis (when set), then a model run; the answer goes to both caches. */
    const lookup = async (text: string): Promise<string> => {
      if (redis) {
        const hit = await redis.get(text);
        if (hit !== undefined) {
          m.redisHits.inc();
          cache.set(text, hit);
          return hit;
        }
        m.redisMisses.inc();
      }
      const r = await (await getEngine()).submit(text);
      if (r instanceof Error) throw r;
      cache.set(text, r);
      if (redis) void redis.set(text, r);
      return r;
    };

    /** The answer JSON for one text: LRU, then an identical text in flight, then Redis and the model. */
    const predictOne = (text: string): Promise<string> => {
      m.texts.inc();
      const hit = cache.get(text);
      if (hit !== undefined) {
        m.hits.inc();
        return Promise.resolve(hit);
      }
      m.misses.inc();
      if (share) {
        const flying = inflight.get(text);
        if (flying) {
          m.coalesced.inc();
          return flying;
        }
      }
      const p = lookup(text);
      if (share) {
        inflight.set(text, p);
        const drop = (): void => void inflight.delete(text);
        p.then(drop, drop);
      }
      return p;
    };

    const admit = (n: number): void => {
      const queued = engine?.pending ?? 0;
      if (queued + n > o.maxQueue) {
        m.rejected.inc();
        // a rough wait: the queue drains at about one batch per lane per recent batch time
        const perBatch = batchCount > 0 ? batchMs / batchCount / 1000 : 0.05;
        const wait = Math.max(1, Math.ceil((queued / (o.maxBatch * Math.max(1, engine?.size ?? 1))) * perBatch));
        throw new ApiError(429, 'queue_full', `${queued} texts are waiting for the model (limit ${o.maxQueue}); retry after ${wait} s`, {
          'Retry-After': String(wait),
        });
      }
    };

    const sendError = (reply: FastifyReply, err: ApiError): FastifyReply => {
      m.errors.inc({ code: err.code });
      for (const [k, v] of Object.entries(err.headers)) reply.header(k, v);
      return reply.code(err.status).type(JSON_TYPE).send(errorBody(err.code, err.message));
    };

    const app = Fastify({
      logger: false,
      bodyLimit: o.maxBodyBytes,
      return503OnClosing: true,
      forceCloseConnections: 'idle',
      // a client gets 30 s to send its whole request (slow senders cannot hold connections forever)
      requestTimeout: 30_000,
      exposeHeadRoutes: true,
      ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false, allErrors: false } },
      clientErrorHandler: (err: Error & { code?: string }, socket: Socket) => {
        // Malformed HTTP (bad request line, headers, chunked encoding): answer in the API's error shape and close.
        if (!socket.writable || err.code === 'ECONNRESET') {
          socket.destroy();
          return;
        }
        const [status, reason, code, message] =
          err.code === 'HPE_HEADER_OVERFLOW'
            ? [431, 'Request Header Fields Too Large', 'headers_too_large', 'request headers are too large']
            : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
              ? [408, 'Request Timeout', 'request_timeout', 'the request was not received in time']
              : [400, 'Bad Request', 'bad_http', `malformed HTTP request (${err.code ?? err.message})`];
        m.errors.inc({ code });
        m.requests.inc({ method: '', route: 'unparsed', status: String(status) });
        const body = errorBody(code, message);
        socket.end(
          `HTTP/1.1 ${status} ${reason}\r\nContent-Type: ${JSON_TYPE}\r\n` +
            `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
        );
      },
      frameworkErrors: (err, req, reply) => {
        // Errors found before routing (a bad URL) skip the onResponse hook: count the request here.
        const e = toApiError(err, o.maxTexts, o.maxBodyBytes);
        m.requests.inc({ method: req.method, route: 'unmatched', status: String(e.status) });
        void sendError(reply, e);
      },
    });

    // Only JSON bodies: the parser insists on UTF-8 (invalid bytes are an error, not U+FFFD) and a JSON value.
    app.removeAllContentTypeParsers();
    const decoder = new TextDecoder('utf-8', { fatal: true });
    app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (req, body, done) => {
      const charset = /;\s*charset\s*=\s*"?([^";\s]+)"?/i.exec(req.headers['content-type'] ?? '')?.[1];
      if (charset !== undefined && !/^utf-?8$/i.test(charset)) {
        done(new ApiError(415, 'unsupported_charset', `charset "${charset}" is not supported; send UTF-8 JSON`), undefined);
        return;
      }
      let s: string;
      try {
        s = decoder.decode(body as Buffer);
      } catch {
        done(new ApiError(400, 'invalid_utf8', 'the body is not valid UTF-8'), undefined);
        return;
      }
      if (s.trim() === '') {
        done(new ApiError(400, 'empty_body', 'the body is empty; send {"text": "..."}'), undefined);
        return;
      }
      try {
        done(null, JSON.parse(s) as unknown);
      } catch (e) {
        const why = e instanceof Error ? e.message : String(e);
        done(new ApiError(400, 'invalid_json', `the body is not valid JSON: ${why}`), undefined);
      }
    });

    app.setErrorHandler((err, _req, reply) => sendError(reply, toApiError(err, o.maxTexts, o.maxBodyBytes)));

    app.setNotFoundHandler((req, reply) => {
      const path = (req.url.split('?')[0] ?? '').split('#')[0];
      const allow = ROUTES.get(path) ?? allowOf(app, path);
      if (allow) {
        return sendError(reply, new ApiError(405, 'method_not_allowed', `${req.method} is not allowed on ${path}; use ${allow}`, { Allow: allow }));
      }
      return sendError(reply, new ApiError(404, 'not_found', `no such path: ${path.length > 200 ? `${path.slice(0, 200)}…` : path}; the API is POST /predict`));
    });


    app.addHook('onRequest', async (_req, reply) => {
      reply.header('X-Content-Type-Options', 'nosniff');
    });

    app.addHook('onResponse', async (req, reply) => {
      const route = req.routeOptions.url ?? 'unmatched';
      m.requests.inc({ method: req.method, route, status: String(reply.statusCode) });
      m.duration.observe({ route }, reply.elapsedTime / 1000);
    });

    await app.register(swagger, {
      openapi: {
        openapi: '3.0.3',
        info: { title: 'ranerc NER service', version: ranercVersion(), description: `Named-entity recognition with ${info.model}.` },
      },
    });
    if (opts.cors !== undefined) {
      const origins = opts.cors.split(',').map((s) => s.trim()).filter((s) => s !== '');
      await app.register(cors, { origin: origins.length === 1 && origins[0] === '*' ? '*' : origins, methods: ['GET', 'HEAD', 'POST'] });
    }
    if (o.rateLimit > 0) {
      await app.register(rateLimit, {
        global: false,
        errorResponseBuilder: (_req, c) => {
          const e = new ApiError(429, 'rate_limited', `over ${c.max} requests per minute from this client; retry after ${Math.ceil(c.ttl / 1000)} s`);
          return Object.assign(e, { statusCode: 429 });
        },
      });
    }

    const ctx: RouteContext = {
      limits: { maxTextChars: o.maxTextChars, maxTexts: o.maxTexts, maxQueue: o.maxQueue, rateLimit: o.rateLimit },
      metrics: m,
      info,
      predictOne,
      admit,
      health: () => ({
        status: state === 'ready' ? 'ok' : state === 'failed' ? 'failed' : 'loading',
        state,
        model: info.model,
        uptime_s: Math.round(process.uptime()),
        queue: engine?.pending ?? 0,
        workers: o.workers,
        ...(redis ? { redis: redis.ready ? ('ready' as const) : ('down' as const) } : {}),
      }),
      sendError,
    };
    registerPredictRoute(app, ctx);
    registerOpsRoutes(app, ctx);
    registerPageRoutes(app, assets);
    // "run in this browser": the page's model, ranerc's compiled modules and onnxruntime-web (src/web/), with the
    // batches /predict runs (Predictor's default of 16,384 tokens per batch), so INT8 activation scales agree
    registerWebRoutes(app, { folder, model: info.model, window: windowSize, overlap, batchSize: o.maxBatch, maxBatchTokens: 16384, csp: CSP });

    // Shutting down: requests already in flight must not wait out --max-wait-ms for company, and their
    // keep-alive connections close after the answer (so the process need not wait for clients to hang up).
    let shuttingDown = false;
    app.addHook('preClose', async () => {
      shuttingDown = true;
      engine?.flushNow();
    });
    app.addHook('onSend', async (_req, reply) => {
      if (shuttingDown) reply.header('Connection', 'close');
    });

    app.addHook('onClose', async () => {
      if (loading) await loading.catch(() => undefined);
      await engine?.close();
      await redis?.close();
    });

    let closing: Promise<void> | undefined;
    const server: RanercServer = {
      app,
      info,
      metrics: m.registry,
      close(): Promise<void> {
        closing ??= (async () => {
          const grace = setTimeout(() => app.server.closeAllConnections(), o.shutdownGraceMs);
          grace.unref();
          try {
            await app.close();
          } finally {
            clearTimeout(grace);
          }
        })();
        return closing;
      },
    };

    if (opts.port !== undefined) {
      try {
        const address = await app.listen({ port: opts.port, host: o.host });
        server.url = address;
      } catch (e) {
        await server.close();
        throw e;
      }
    } else {
      await app.ready();
    }
    return server;
  } catch (e) {
    // nothing stays open when the app cannot be built or cannot listen (close is idempotent)
    await engine?.close();
    await redis?.close();
    throw e;
  }
}

/** `opts` without its undefined values (so they do not override defaults). */
function definedOnly<T extends object>(opts: T): Partial<T> {
  return Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) as Partial<T>;
}
