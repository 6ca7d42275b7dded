/** The service's Prometheus metrics (names kept from the first server; the Redis, queue and pool ones are new). */
import { Registry, type Counter, type Gauge, type Histogram } from './metrics.js';

export interface ServeMetrics {
  registry: Registry;
  requests: Counter;
  errors: Counter;
  duration: Histogram;
  texts: Counter;
  hits: Counter;
  misses: Counter;
  coalesced: Counter;
  redisHits: Counter;
  redisMisses: Counter;
  redisFailures: Counter;
  rejected: Counter;
  batchSize: Histogram;
  batchSeconds: Histogram;
  batchFailures: Counter;
  predictCalls: Counter;
  modelInfo: Gauge;
}

export interface MetricSources {
  cacheEntries(): number;
  cacheCapacity(): number;
  queued(): number;
  workers(): number;
  redisUp(): number | undefined;
}

const SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export function buildMetrics(src: MetricSources): ServeMetrics {
  const r = new Registry();
  const m: ServeMetrics = {
    registry: r,
    requests: r.counter('ranerc_http_requests_total', 'HTTP requests answered, by method, route and status code.', ['method', 'route', 'status']),
    errors: r.counter('ranerc_http_errors_total', 'Error answers (4xx and 5xx), by error code.', ['code']),
    duration: r.histogram('ranerc_http_request_duration_seconds', 'Time from request received to response sent, by route.', SECONDS, ['route']),
    texts: r.counter('ranerc_predict_texts_total', 'Texts asked for by /predict requests (one per text in "texts").'),
    hits: r.counter('ranerc_cache_hits_total', 'Texts answered from the in-process LRU cache.'),
    misses: r.counter('ranerc_cache_misses_total', 'Texts not in the LRU cache (looked up in Redis when set, sent to the model or shared with an identical text in flight).'),
    coalesced: r.counter('ranerc_cache_coalesced_total', 'LRU cache misses that shared the lookup and model run of an identical text already in flight.'),
    redisHits: r.counter('ranerc_redis_hits_total', 'Texts answered from the shared Redis cache (--redis).'),
    redisMisses: r.counter('ranerc_redis_misses_total', 'Redis lookups that found nothing (or failed) and went to the model.'),
    redisFailures: r.counter('ranerc_redis_failures_total', 'Redis commands that failed (Redis down or slow); the text was answered by the model.', ['op']),
    rejected: r.counter('ranerc_rejected_total', 'Requests refused with 429 because the queue was full.'),
    batchSize: r.histogram('ranerc_batch_size', 'Texts per micro-batch (collected from concurrent requests for one model turn).', [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]),
    batchSeconds: r.histogram('ranerc_batch_duration_seconds', 'Wall time of one micro-batch (tokenize, onnxruntime runs, decode).', SECONDS),
    batchFailures: r.counter('ranerc_batch_failures_total', 'Micro-batches whose model run failed.'),
    predictCalls: r.counter(
      'ranerc_predict_calls_total',
      'Pipeline calls (tokenize, onnxruntime, decode): a micro-batch makes one per group of texts of similar token length.',
    ),
    modelInfo: r.gauge('ranerc_model_info', 'The served model (value 1).', ['model', 'decoder', 'scheme', 'labels', 'window']),
  };
  r.gauge('ranerc_cache_entries', 'Texts held in the LRU cache.', [], (g) => g.set({}, src.cacheEntries()));
  r.gauge('ranerc_cache_capacity', 'LRU cache capacity (0 = disabled).', [], (g) => g.set({}, src.cacheCapacity()));
  r.gauge('ranerc_queue_texts', 'Texts waiting for a model run.', [], (g) => g.set({}, src.queued()));
  r.gauge('ranerc_workers', 'Inference workers (0 = the model runs on the main thread).', [], (g) => g.set({}, src.workers()));
  r.gauge('ranerc_redis_up', 'Whether the Redis connection is up (1) or down (0); absent without --redis.', [], (g) => {
    const v = src.redisUp();
    if (v !== undefined) g.set({}, v);
  });
  const started = Date.now() / 1000;
  r.gauge('process_start_time_seconds', 'Start time of the process since the Unix epoch, in seconds.', [], (g) => g.set({}, started));
  r.gauge('process_resident_memory_bytes', 'Resident memory size in bytes.', [], (g) => g.set({}, process.memoryUsage.rss()));
  return m;
}
