/** The API's error answers `{"error":{"code","message"}}` and the checks of one text. */
import type { FastifyError } from 'fastify';
import { BatcherClosedError } from './batcher.js';

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

export const JSON_TYPE = 'application/json; charset=utf-8';
const LONE_SURROGATE = /\p{Cs}/u;

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
export function checkText(text: string, where: string, maxChars: number): void {
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
export function toApiError(e: unknown, maxTexts: number, maxBodyBytes: number): ApiError {
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

