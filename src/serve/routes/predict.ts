/** `POST /predict`: `{"text"}` → `{"entities":[…]}`, `{"texts":[…]}` → `{"results":[…]}` in input order. */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError, checkText, JSON_TYPE } from '../errors.js';
import { ERROR_RESPONSES, PREDICT_MANY, PREDICT_ONE } from '../schemas.js';
import type { RouteContext } from './context.js';

interface PredictBody {
  text?: string;
  texts?: string[];
}

export function registerPredictRoute(app: FastifyInstance, ctx: RouteContext): void {
  const { maxTextChars, maxTexts } = ctx.limits;
  const schema = {
    summary: 'Tag the entities of one text or of several texts',
    body: {
      type: 'object',
      additionalProperties: false,
      properties: {
        text: { type: 'string', description: 'one text' },
        texts: { type: 'array', items: { type: 'string' }, maxItems: maxTexts, description: 'several texts (answers in input order)' },
      },
    },
    response: {
      200: { description: 'entities of "text" ({entities}) or of each of "texts" ({results})', oneOf: [PREDICT_ONE, PREDICT_MANY] },
      429: { ...ERROR_RESPONSES['4xx'], description: 'the queue is full (Retry-After says when to retry) or the client passed its rate limit' },
      ...ERROR_RESPONSES,
    },
  };
  const noBody = async (req: FastifyRequest): Promise<void> => {
    if (req.body === undefined) {
      throw new ApiError(400, 'empty_body', 'the request has no body; send JSON {"text": "..."} with Content-Type: application/json');
    }
  };
  const config = ctx.limits.rateLimit > 0 ? { rateLimit: { max: ctx.limits.rateLimit, timeWindow: 60_000 } } : {};
  app.post('/predict', { schema, preValidation: noBody, config }, async (req: FastifyRequest, reply) => {
    const t0 = performance.now();
    const body = req.body as PredictBody;
    if (body.text !== undefined && body.texts !== undefined) {
      throw new ApiError(400, 'ambiguous_body', 'send either "text" or "texts", not both');
    }
    let json: string;
    if (body.text !== undefined) {
      checkText(body.text, 'text', maxTextChars);
      ctx.admit(1);
      json = await ctx.predictOne(body.text);
    } else if (body.texts !== undefined) {
      if (body.texts.length === 0) throw new ApiError(400, 'empty_texts', '"texts" is empty; send at least one text');
      body.texts.forEach((t, i) => checkText(t, `texts[${i}]`, maxTextChars));
      ctx.admit(body.texts.length);
      json = `{"results":[${(await Promise.all(body.texts.map((t) => ctx.predictOne(t)))).join(',')}]}`;
    } else {
      throw new ApiError(400, 'missing_text', 'the body has no "text"; send {"text": "..."} or {"texts": ["...", ...]}');
    }
    reply.header('Server-Timing', `predict;dur=${(performance.now() - t0).toFixed(2)}`);
    return reply.type(JSON_TYPE).send(json);
  });
}
