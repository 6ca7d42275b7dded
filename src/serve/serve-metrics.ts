/**
 * The service's Prometheus metrics through prom-client, on a registry of their own (names kept from the
 * first, hand-written server metrics; the Redis, queue and pool ones are new).
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export interface ServeMetrics {
  registry: Registry;
  requests: Counter<'method' | 'route' | 'status'>;
  errors: Counter<'code'>;
  duration: Histogram<'route'>;
  texts: Counter;
  hits: Counter;
  misses: Counter;
  coalesced: Counter;
  redisHits: Counter;
  redisMisses: Counter;
  redisFailures: Counter<'op'>;
  rejected: Counter;
  batchSize: Histogram;
  batchSeconds: Histogram;
  batchFailures: Counter;
  predictCalls: Counter;
  modelInfo: Gauge<'model' | 'decoder' | 'scheme' | 'labels' | 'window'>;
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
  const registers = [new Registry()];
  const r = registers[0];
  const counter = <L extends string>(name: string, help: string, labelNames: readonly L[] = []): Counter<L> =>
    new Counter<L>({ name, help, labelNames, registers });
  const histogram = <L extends string>(name: string, help: string, buckets: number[], labelNames: readonly L[] = []): Histogram<L> =>
    new Histogram<L>({ name, help, buckets, labelNames, registers });
  const gauge = (name: string, help: string, value: () => number | undefined): void => {
    new Gauge({
      name,
      help,
      registers,
      collect() {
        const v = value();
        if (v !== undefined) this.set(v);
      },
    });
  };
  const m: ServeMetrics = {
    registry: r,
    requests: counter('ranerc_http_requests_total', 'HTTP requests answered, by method, route and status code.', ['method', 'route', 'status']),
    errors: counter('ranerc_http_errors_total', 'Error answers (4xx and 5xx), by error code.', ['code']),
    duration: histogram('ranerc_http_request_duration_seconds', 'Time from request received to response sent, by route.', SECONDS, ['route']),
    texts: counter('ranerc_predict_texts_total', 'Texts asked for by /predict requests (one per text in "texts").'),
    hits: counter('ranerc_cache_hits_total', 'Texts answered from the in-process LRU cache.'),
    misses: counter(
      'ranerc_cache_misses_total',
      'Texts not in the LRU cache (looked up in Redis when set, sent to the model or shared with an identical text in flight).',
    ),
    coalesced: counter('ranerc_cache_coalesced_total', 'LRU cache misses that shared the lookup and model run of an identical text already in flight.'),
    redisHits: counter('ranerc_redis_hits_total', 'Texts answered from the shared Redis cache (--redis).'),
    redisMisses: counter('ranerc_redis_misses_total', 'Redis lookups that found nothing (or failed) and went to the model.'),
    redisFailures: counter('ranerc_redis_failures_total', 'Redis commands that failed (Redis down or slow); the text was answered by the model.', ['op']),
    rejected: counter('ranerc_rejected_total', 'Requests refused with 429 because the queue was full.'),
    batchSize: histogram('ranerc_batch_size', 'Texts per micro-batch (collected from concurrent requests for one model turn).', [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]),
    batchSeconds: histogram('ranerc_batch_duration_seconds', 'Wall time of one micro-batch (tokenize, onnxruntime runs, decode).', SECONDS),
    batchFailures: counter('ranerc_batch_failures_total', 'Micro-batches whose model run failed.'),
    predictCalls: counter(
      'ranerc_predict_calls_total',
      'Pipeline calls (tokenize, onnxruntime, decode): a micro-batch makes one per group of texts of similar token length.',
    ),
    modelInfo: new Gauge({ name: 'ranerc_model_info', help: 'The served model (value 1).', labelNames: ['model', 'decoder', 'scheme', 'labels', 'window'], registers }),
  };
  gauge('ranerc_cache_entries', 'Texts held in the LRU cache.', src.cacheEntries);
  gauge('ranerc_cache_capacity', 'LRU cache capacity (0 = disabled).', src.cacheCapacity);
  gauge('ranerc_queue_texts', 'Texts waiting for a model run.', src.queued);
  gauge('ranerc_workers', 'Inference workers (0 = the model runs on the main thread).', src.workers);
  gauge('ranerc_redis_up', 'Whether the Redis connection is up (1) or down (0); absent without --redis.', src.redisUp);
  const started = Date.now() / 1000;
  gauge('process_start_time_seconds', 'Start time of the process since the Unix epoch, in seconds.', () => started);
  gauge('process_resident_memory_bytes', 'Resident memory size in bytes.', () => process.memoryUsage.rss());
  return m;
}
