/**
 * JSON schemas of every route's request and answers. Fastify validates requests with them and
 * @fastify/swagger turns them into /openapi.json; test/serve/openapi.test.ts checks real answers against
 * the documented shapes with ajv.
 */

export const ENTITY = {
  type: 'object',
  additionalProperties: false,
  required: ['text', 'type', 'start', 'end'],
  properties: {
    text: { type: 'string', description: 'the entity as it appears in the text' },
    type: { type: 'string', description: 'entity type (PER, LOC, …)' },
    start: { type: 'integer', minimum: 0, description: 'first character, in Unicode code points' },
    end: { type: 'integer', minimum: 0, description: 'one past the last character (exclusive)' },
  },
} as const;

export const PREDICT_ONE = {
  type: 'object',
  additionalProperties: false,
  required: ['entities'],
  properties: { entities: { type: 'array', items: ENTITY } },
} as const;

export const PREDICT_MANY = {
  type: 'object',
  additionalProperties: false,
  required: ['results'],
  properties: { results: { type: 'array', items: PREDICT_ONE } },
} as const;

export const ERROR = {
  type: 'object',
  additionalProperties: false,
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      additionalProperties: false,
      required: ['code', 'message'],
      properties: { code: { type: 'string' }, message: { type: 'string' } },
    },
  },
} as const;

export const HEALTH = {
  type: 'object',
  additionalProperties: false,
  required: ['status', 'state', 'model', 'uptime_s', 'queue', 'workers'],
  properties: {
    status: { type: 'string', enum: ['ok', 'loading', 'failed'], description: '"ok" once the model answers' },
    state: { type: 'string', enum: ['unloaded', 'loading', 'ready', 'failed'], description: 'model state (--lazy loads on the first request)' },
    model: { type: 'string' },
    uptime_s: { type: 'integer', minimum: 0 },
    queue: { type: 'integer', minimum: 0, description: 'texts waiting for a model run' },
    workers: { type: 'integer', minimum: 0, description: 'inference workers (0 = on the main thread)' },
    redis: { type: 'string', enum: ['ready', 'down'], description: 'shared cache connection, when --redis is set' },
  },
} as const;

export const INFO = {
  type: 'object',
  additionalProperties: false,
  required: ['ranerc', 'model', 'decoder', 'scheme', 'labels', 'types', 'colors', 'window', 'overlap', 'limits'],
  properties: {
    ranerc: { type: 'string' },
    model: { type: 'string' },
    producedBy: { type: 'string' },
    decoder: { type: 'string', enum: ['crf', 'argmax'] },
    scheme: { type: 'string' },
    labels: { type: 'array', items: { type: 'string' } },
    types: { type: 'array', items: { type: 'string' } },
    colors: { type: 'object', additionalProperties: { type: 'string' } },
    window: { type: 'integer' },
    overlap: { type: 'integer' },
    limits: {
      type: 'object',
      additionalProperties: false,
      required: ['maxTextChars', 'maxTexts', 'maxBodyBytes', 'maxBatch', 'maxWaitMs', 'cacheSize', 'maxQueue', 'workers'],
      properties: {
        maxTextChars: { type: 'integer' },
        maxTexts: { type: 'integer' },
        maxBodyBytes: { type: 'integer' },
        maxBatch: { type: 'integer' },
        maxWaitMs: { type: 'number' },
        cacheSize: { type: 'integer' },
        maxQueue: { type: 'integer' },
        workers: { type: 'integer' },
      },
    },
  },
} as const;

/** Error answers every route may give. */
export const ERROR_RESPONSES = {
  '4xx': { description: 'bad request (code says why)', ...ERROR },
  '5xx': { description: 'server error', ...ERROR },
} as const;
