/** Operations routes: `/healthz`, `/metrics` (Prometheus text), `/api/info`, `/openapi.json`. */
import type { FastifyInstance } from 'fastify';
import { JSON_TYPE } from '../errors.js';
import { ERROR_RESPONSES, HEALTH, INFO } from '../schemas.js';
import type { RouteContext } from './context.js';

export function registerOpsRoutes(app: FastifyInstance, ctx: RouteContext): void {
  app.get(
    '/healthz',
    { schema: { summary: 'Liveness and model state', response: { 200: { description: 'state', ...HEALTH }, ...ERROR_RESPONSES } } },
    async (_req, reply) => reply.type(JSON_TYPE).send(JSON.stringify(ctx.health())),
  );

  app.get(
    '/metrics',
    {
      schema: {
        summary: 'Prometheus metrics (text exposition format 0.0.4)',
        produces: ['text/plain'],
        response: { 200: { description: 'metrics', content: { 'text/plain': { schema: { type: 'string' } } } }, ...ERROR_RESPONSES },
      },
    },
    async (_req, reply) => reply.type(ctx.metrics.registry.contentType).send(await ctx.metrics.registry.metrics()),
  );

  app.get(
    '/api/info',
    { schema: { summary: 'The served model, its labels and the limits', response: { 200: { description: 'info', ...INFO }, ...ERROR_RESPONSES } } },
    async (_req, reply) => reply.type(JSON_TYPE).send(JSON.stringify(ctx.info)),
  );

  app.get(
    '/openapi.json',
    { schema: { hide: true } },
    async (_req, reply) => reply.type(JSON_TYPE).send(JSON.stringify((app as FastifyInstance & { swagger(): unknown }).swagger())),
  );
}
