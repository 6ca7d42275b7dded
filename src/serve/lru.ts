/** Moved to src/serve/cache/lru.ts (kept so existing imports work). */
export { LruCache } from './cache/lru.js';
