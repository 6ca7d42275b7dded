/**
 * The ranerc NER service: a fastify app over one Predictor (the pipeline `eval` and `predict` use).
 *
 * Routes
 * - `POST /predict` with `{"text": "马云在杭州"}` → `{"entities":[{"text":"马云","type":"PER","start":0,"end":2}, …]}`,
 *   byte for byte the line `ranerc predict` prints for that text (offsets in Unicode code points, end exclusive);
 *   with `{"texts": ["…", "…"]}` → `{"results":[{"entities":[…]}, …]}` in input order.
 * - `GET /healthz` → `{"status":"ok", …}`; `GET /metrics` → Prometheus text; `GET /api/info` → model name,
 *   labels, entity types and their page colours, limits; `GET /` and `/assets/*` → the web page.
 *
 * Concurrent texts are micro-batched (MicroBatcher: up to `maxBatch` texts, waiting at most `maxWaitMs`)
 * into one Predictor call; an LRU cache of `cacheSize` answers repeated texts, and a text already being
 * predicted is shared by the requests that ask for it meanwhile (both off when `cacheSize` is 0).
 *
 * Every error is JSON `{"error":{"code","message"}}` with a 4xx status for bad requests (400 bad JSON or
 * shape, 404 unknown path, 405 wrong method with `Allow`, 413 too large, 415 not JSON) and 500 for a
 * failure of the model; nothing a client sends can crash the process.
 */
import { readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import type { Socket } from 'node:net';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { entitiesJson } from '../cli/predict.js';
import { loadModelFolder } from '../onnx/folder.js';
import type { ModelFolder } from '../onnx/types.js';
import { ranercVersion } from '../report/environment.js';
import { Predictor } from '../runtime/predict.js';
import { BatcherClosedError, lengthGroups, MicroBatcher } from './batcher.js';
import { typeColors } from './colors.js';
import { LruCache } from './lru.js';
import { PROMETHEUS_CONTENT_TYPE, Registry, type Counter, type Gauge, type Histogram } from './metrics.js';
import { registerWebRoutes } from '../web/routes.js';

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
  /** LRU cache entries (default 1024; 0 disables the cache and sharing of in-flight texts). */
  cacheSize?: number;
  /** Longest text, in Unicode code points (default 5000). */
  maxTextChars?: number;
  /** Most texts in one `{"texts": [...]}` request (default 64). */
  maxTexts?: number;
  /** Largest request body in bytes (default 1 MiB). */
  maxBodyBytes?: number;
  /** onnxruntime intra-op threads (default: onnxruntime's choice). */
  threads?: number;
  /** Tokens per window without [CLS]/[SEP] (default: the folder's max length − 2, as eval). */
  windowSize?: number;
  /** Tokens shared by consecutive windows (default as eval). */
  overlap?: number;
  /** How long `close()` lets in-flight requests finish before dropping their connections (default 10 s). */
  shutdownGraceMs?: number;
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
  limits: { maxTextChars: number; maxTexts: number; maxBodyBytes: number; maxBatch: number; maxWaitMs: number; cacheSize: number };
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

/** An error answered to the client as `{"error":{"code","message"}}`. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** The JSON error body. */
export function errorBody(code: string, message: string): string {
  return JSON.stringify({ error: { code, message } });
}

const JSON_TYPE = 'application/json; charset=utf-8';
const LONE_SURROGATE = /\p{Cs}/u;

/** Paths the app serves and the methods each allows (HEAD comes with GET); used for 405 answers. */
const ROUTES: ReadonlyMap<string, string> = new Map([
  ['/predict', 'POST'],
  ['/healthz', 'GET, HEAD'],
  ['/metrics', 'GET, HEAD'],
  ['/api/info', 'GET, HEAD'],
  ['/', 'GET, HEAD'],
  ['/assets/app.js', 'GET, HEAD'],
  ['/assets/style.css', 'GET, HEAD'],
  ['/assets/favicon.svg', 'GET, HEAD'],
]);

const ASSETS: ReadonlyArray<[string, string, string]> = [
  ['/', 'index.html', 'text/html; charset=utf-8'],
  ['/assets/app.js', 'app.js', 'text/javascript; charset=utf-8'],
  ['/assets/style.css', 'style.css', 'text/css; charset=utf-8'],
  ['/assets/favicon.svg', 'favicon.svg', 'image/svg+xml'],
];

/** Everything the page needs is served from here: no CDN, no external fonts. */
const CSP =
  "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** The page's files (src/serve/public/, found from both dist/serve/ and src/serve/). */
export const PUBLIC_DIR = new URL('../../src/serve/public/', import.meta.url);

const PREDICT_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    text: { type: 'string' },
    texts: { type: 'array', items: { type: 'string' } },
  },
} as const;

interface PredictBody {
  text?: string;
  texts?: string[];
}

interface Metrics {
  registry: Registry;
  requests: Counter;
  errors: Counter;
  duration: Histogram;
  texts: Counter;
  hits: Counter;
  misses: Counter;
  coalesced: Counter;
  batchSize: Histogram;
  batchSeconds: Histogram;
  batchFailures: Counter;
  predictCalls: Counter;
  modelInfo: Gauge;
}

function buildMetrics(cache: LruCache<string, string>, batcher: () => MicroBatcher<string, string | Error>): Metrics {
  const r = new Registry();
  const m: Metrics = {
    registry: r,
    requests: r.counter('ranerc_http_requests_total', 'HTTP requests answered, by method, route and status code.', ['method', 'route', 'status']),
    errors: r.counter('ranerc_http_errors_total', 'Error answers (4xx and 5xx), by error code.', ['code']),
    duration: r.histogram(
      'ranerc_http_request_duration_seconds',
      'Time from request received to response sent, by route.',
      [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      ['route'],
    ),
    texts: r.counter('ranerc_predict_texts_total', 'Texts asked for by /predict requests (one per text in "texts").'),
    hits: r.counter('ranerc_cache_hits_total', 'Texts answered from the LRU cache.'),
    misses: r.counter('ranerc_cache_misses_total', 'Texts not in the cache (sent to the model or shared with an identical text in flight).'),
    coalesced: r.counter('ranerc_cache_coalesced_total', 'Cache misses that shared the model run of an identical text already in flight.'),
    batchSize: r.histogram('ranerc_batch_size', 'Texts per micro-batch (collected from concurrent requests for one model turn).', [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]),
    batchSeconds: r.histogram(
      'ranerc_batch_duration_seconds',
      'Wall time of one micro-batch (tokenize, onnxruntime runs, decode).',
      [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    ),
    batchFailures: r.counter('ranerc_batch_failures_total', 'Micro-batches whose model run failed.'),
    predictCalls: r.counter(
      'ranerc_predict_calls_total',
      'Pipeline calls (tokenize, onnxruntime, decode): a micro-batch makes one per group of texts of similar token length.',
    ),
    modelInfo: r.gauge('ranerc_model_info', 'The served model (value 1).', ['model', 'decoder', 'scheme', 'labels', 'window']),
  };
  r.gauge('ranerc_cache_entries', 'Texts held in the LRU cache.', [], (g) => g.set({}, cache.size));
  r.gauge('ranerc_cache_capacity', 'LRU cache capacity (0 = disabled).', [], (g) => g.set({}, cache.capacity));
  r.gauge('ranerc_queue_texts', 'Texts waiting for a model run.', [], (g) => g.set({}, batcher().pending));
  const started = Date.now() / 1000;
  r.gauge('process_start_time_seconds', 'Start time of the process since the Unix epoch, in seconds.', [], (g) => g.set({}, started));
  r.gauge('process_resident_memory_bytes', 'Resident memory size in bytes.', [], (g) => g.set({}, process.memoryUsage.rss()));
  return m;
}

/** Number of Unicode code points in `s`. */
function codePoints(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    n++;
  }
  return n;
}

/** Check one text; `where` names it in messages ("text", "texts[3]"). */
function checkText(text: string, where: string, maxChars: number): void {
  if (text.length === 0) throw new ApiError(400, 'empty_text', `${where} is empty; send the text to tag`);
  if (LONE_SURROGATE.test(text)) {
    throw new ApiError(400, 'invalid_text', `${where} contains an unpaired UTF-16 surrogate; send well-formed Unicode text`);
  }
  if (text.length > maxChars) {
    const n = codePoints(text);
    if (n > maxChars) {
      throw new ApiError(413, 'text_too_long', `${where} has ${n} characters, over the limit of ${maxChars}; split it or raise --max-text-chars`);
    }
  }
}

/** Map an Ajv error (fastify schema validation) to an API error. */
function validationError(e: FastifyError, maxTexts: number): ApiError {
  const v = e.validation?.[0];
  const path = v?.instancePath ?? '';
  const params = (v?.params ?? {}) as Record<string, unknown>;
  if (v?.keyword === 'additionalProperties') {
    return new ApiError(400, 'unknown_field', `unknown field "${String(params.additionalProperty)}"; send {"text": "..."} or {"texts": ["...", ...]}`);
  }
  if (path === '' || path === '/') {
    return new ApiError(400, 'body_not_object', 'the body must be a JSON object: {"text": "..."} or {"texts": ["...", ...]}');
  }
  if (path === '/text') return new ApiError(400, 'text_not_string', '"text" must be a string');
  if (path === '/texts') {
    if (v?.keyword === 'maxItems') return new ApiError(413, 'too_many_texts', `"texts" holds more than ${maxTexts} texts; send several requests`);
    return new ApiError(400, 'texts_not_array', '"texts" must be an array of strings');
  }
  const item = /^\/texts\/(\d+)$/.exec(path);
  if (item) return new ApiError(400, 'text_not_string', `texts[${item[1]}] must be a string`);
  return new ApiError(400, 'invalid_request', `invalid request: ${e.message}`);
}

/** Turn anything thrown while handling a request into an ApiError. */
function toApiError(e: unknown, maxTexts: number, maxBodyBytes: number): ApiError {
  if (e instanceof ApiError) return e;
  if (e instanceof BatcherClosedError) return new ApiError(503, 'shutting_down', 'the server is shutting down; retry on another instance');
  const fe = e as Partial<FastifyError>;
  if (fe && Array.isArray(fe.validation)) return validationError(fe as FastifyError, maxTexts);
  switch (fe?.code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ApiError(415, 'unsupported_media_type', 'send the body as JSON with Content-Type: application/json');
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ApiError(413, 'body_too_large', `the body is over the limit of ${maxBodyBytes} bytes; send fewer or shorter texts, or raise --max-body-bytes`);
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new ApiError(400, 'empty_body', 'the body is empty; send {"text": "..."}');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new ApiError(400, 'bad_content_length', 'Content-Length does not match the body sent');
    case 'FST_ERR_BAD_URL':
      return new ApiError(400, 'bad_url', 'the URL is not valid (bad percent-encoding)');
  }
  const status = typeof fe?.statusCode === 'number' ? fe.statusCode : 500;
  if (status >= 400 && status < 500) {
    return new ApiError(status, typeof fe?.code === 'string' ? fe.code.toLowerCase() : 'bad_request', fe?.message ?? 'bad request');
  }
  const msg = e instanceof Error ? e.message : String(e);
  return new ApiError(500, 'internal_error', `the model failed on this request: ${msg}`);
}

/** A display name for the folder: its name, with the parent's for generic names ("teacher/model"). */
export function modelName(folder: Pick<ModelFolder, 'bare' | 'dir' | 'onnxPath'>): string {
  if (folder.bare) return basename(folder.onnxPath);
  const name = basename(folder.dir);
  return ['model', 'onnx', 'output', 'out', '.'].includes(name.toLowerCase()) ? `${basename(dirname(folder.dir))}/${name}` : name;
}

/**
 * Load the model, build the app, and (when `opts.port` is given) listen. Errors: InputError/GraphError
 * from loading the model; the listen error (EADDRINUSE, EACCES) as thrown by node.
 */
export async function createServer(opts: ServeOptions): Promise<RanercServer> {
  const o = { ...SERVE_DEFAULTS, ...definedOnly(opts) };
  const folder = typeof opts.model === 'string' ? await loadModelFolder({ model: opts.model, labels: opts.labels, vocab: opts.vocab }) : opts.model;
  const assets = new Map<string, { body: Buffer; type: string }>();
  for (const [route, file, type] of ASSETS) assets.set(route, { body: await readFile(new URL(file, PUBLIC_DIR)), type });

  const predictor = await Predictor.open(folder, {
    threads: opts.threads,
    batchSize: o.maxBatch,
    windowSize: opts.windowSize,
    overlap: opts.overlap,
  });

  try {
    const cache = new LruCache<string, string>(o.cacheSize);
    const inflight = new Map<string, Promise<string>>();

    /**
     * The model runs for a micro-batch: texts grouped by token length (little padding), one Predictor call
     * per group; when a call fails, its texts are retried alone so only the culprit fails.
     */
    const runGroup = async (texts: string[]): Promise<Array<string | Error>> => {
      m.predictCalls.inc();
      try {
        const ents = await predictor.predict(texts);
        return texts.map((t, i) => entitiesJson(t, ents[i]));
      } catch (e) {
        if (texts.length === 1) return [e instanceof Error ? e : new Error(String(e))];
        const out: Array<string | Error> = [];
        for (const t of texts) {
          try {
            m.predictCalls.inc();
            out.push(entitiesJson(t, (await predictor.predict([t]))[0]));
          } catch (e1) {
            out.push(e1 instanceof Error ? e1 : new Error(String(e1)));
          }
        }
        return out;
      }
    };
    const runBatch = async (texts: string[]): Promise<Array<string | Error>> => {
      if (texts.length === 1) return runGroup(texts);
      const lengths = texts.map((t) => Math.min(predictor.tokenizer.tokenize(t).length, predictor.windowSize));
      const out = new Array<string | Error>(texts.length);
      for (const g of lengthGroups(lengths)) {
        const answers = await runGroup(g.map((i) => texts[i]));
        g.forEach((i, k) => (out[i] = answers[k]));
      }
      return out;
    };

    let batcher: MicroBatcher<string, string | Error> | undefined;
    const m = buildMetrics(cache, () => batcher!);
    batcher = new MicroBatcher<string, string | Error>(runBatch, {
      maxBatch: o.maxBatch,
      maxWaitMs: o.maxWaitMs,
      onBatch: (size, ms, ok) => {
        m.batchSize.observe({}, size);
        m.batchSeconds.observe({}, ms / 1000);
        if (!ok) m.batchFailures.inc();
      },
    });
    const b = batcher;

    const labels = predictor.labels;
    const info: ServeInfo = {
      ranerc: ranercVersion(),
      model: modelName(folder),
      ...(folder.provenance?.command ? { producedBy: folder.provenance.command } : {}),
      decoder: predictor.decoder,
      scheme: labels.scheme,
      labels: [...labels.labels],
      types: [...labels.types],
      colors: typeColors(labels.types),
      window: predictor.windowSize,
      overlap: predictor.overlap,
      limits: {
        maxTextChars: o.maxTextChars,
        maxTexts: o.maxTexts,
        maxBodyBytes: o.maxBodyBytes,
        maxBatch: o.maxBatch,
        maxWaitMs: o.maxWaitMs,
        cacheSize: o.cacheSize,
      },
    };
    m.modelInfo.set(
      { model: info.model, decoder: info.decoder, scheme: info.scheme, labels: String(info.labels.length), window: String(info.window) },
      1,
    );

    /** The answer JSON for one text: cache, then an identical text in flight, then a model run. */
    const predictOne = (text: string): Promise<string> => {
      m.texts.inc();
      const hit = cache.get(text);
      if (hit !== undefined) {
        m.hits.inc();
        return Promise.resolve(hit);
      }
      m.misses.inc();
      if (o.cacheSize > 0) {
        const flying = inflight.get(text);
        if (flying) {
          m.coalesced.inc();
          return flying;
        }
      }
      const p = b.submit(text).then((r) => {
        if (r instanceof Error) throw r;
        cache.set(text, r);
        return r;
      });
      if (o.cacheSize > 0) {
        inflight.set(text, p);
        const drop = (): void => void inflight.delete(text);
        p.then(drop, drop);
      }
      return p;
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
      const allow = ROUTES.get(path);
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

    const predictSchema = {
      body: { ...PREDICT_SCHEMA, properties: { ...PREDICT_SCHEMA.properties, texts: { ...PREDICT_SCHEMA.properties.texts, maxItems: o.maxTexts } } },
    };
    const noBody = async (req: FastifyRequest): Promise<void> => {
      if (req.body === undefined) {
        throw new ApiError(400, 'empty_body', 'the request has no body; send JSON {"text": "..."} with Content-Type: application/json');
      }
    };
    app.post('/predict', { schema: predictSchema, preValidation: noBody }, async (req: FastifyRequest, reply) => {
      const t0 = performance.now();
      const body = req.body as PredictBody;
      if (body.text !== undefined && body.texts !== undefined) {
        throw new ApiError(400, 'ambiguous_body', 'send either "text" or "texts", not both');
      }
      let json: string;
      if (body.text !== undefined) {
        checkText(body.text, 'text', o.maxTextChars);
        json = await predictOne(body.text);
      } else if (body.texts !== undefined) {
        if (body.texts.length === 0) throw new ApiError(400, 'empty_texts', '"texts" is empty; send at least one text');
        body.texts.forEach((t, i) => checkText(t, `texts[${i}]`, o.maxTextChars));
        json = `{"results":[${(await Promise.all(body.texts.map(predictOne))).join(',')}]}`;
      } else {
        throw new ApiError(400, 'missing_text', 'the body has no "text"; send {"text": "..."} or {"texts": ["...", ...]}');
      }
      reply.header('Server-Timing', `predict;dur=${(performance.now() - t0).toFixed(2)}`);
      return reply.type(JSON_TYPE).send(json);
    });

    app.get('/healthz', async (_req, reply) =>
      reply.type(JSON_TYPE).send(JSON.stringify({ status: 'ok', model: info.model, uptime_s: Math.round(process.uptime()), queue: b.pending })),
    );

    app.get('/metrics', async (_req, reply) => reply.type(PROMETHEUS_CONTENT_TYPE).send(m.registry.render()));

    app.get('/api/info', async (_req, reply) => reply.type(JSON_TYPE).send(JSON.stringify(info)));

    // "run in this browser": the page's model, ranerc's compiled modules and onnxruntime-web (src/web/)
    registerWebRoutes(app, { folder, model: info.model, window: predictor.windowSize, overlap: predictor.overlap, batchSize: predictor.batchSize, maxBatchTokens: predictor.maxBatchTokens, csp: CSP });

    for (const [route, asset] of assets) {
      app.get(route, async (_req, reply) => {
        reply.header('Content-Security-Policy', CSP);
        reply.header('Cache-Control', 'no-cache');
        return reply.type(asset.type).send(asset.body);
      });
    }

    // Shutting down: requests already in flight must not wait out --max-wait-ms for company, and their
    // keep-alive connections close after the answer (so the process need not wait for clients to hang up).
    let shuttingDown = false;
    app.addHook('preClose', async () => {
      shuttingDown = true;
      b.flushNow();
    });
    app.addHook('onSend', async (_req, reply) => {
      if (shuttingDown) reply.header('Connection', 'close');
    });

    app.addHook('onClose', async () => {
      await b.close();
      await predictor.close();
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
    await predictor.close();
    throw e;
  }
}

/** `opts` without its undefined values (so they do not override defaults). */
function definedOnly<T extends object>(opts: T): Partial<T> {
  return Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) as Partial<T>;
}
