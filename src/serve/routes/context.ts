/** What the route modules get from createServer: the resolved limits, metrics, info and the answer path. */
import type { FastifyReply } from 'fastify';
import type { ApiError } from '../errors.js';
import type { ServeMetrics } from '../serve-metrics.js';
import type { ServeInfo } from '../server.js';

export interface HealthState {
  status: 'ok' | 'loading' | 'failed';
  state: 'unloaded' | 'loading' | 'ready' | 'failed';
  model: string;
  uptime_s: number;
  queue: number;
  workers: number;
  redis?: 'ready' | 'down';
}

export interface RouteContext {
  limits: { maxTextChars: number; maxTexts: number; maxQueue: number; rateLimit: number };
  metrics: ServeMetrics;
  info: ServeInfo;
  /** The answer JSON of one text (cache tiers, then an identical text in flight, then the model). */
  predictOne(text: string): Promise<string>;
  /** Throws 429 when `n` more texts would pass the queue bound. */
  admit(n: number): void;
  health(): HealthState;
  sendError(reply: FastifyReply, err: ApiError): FastifyReply;
}
