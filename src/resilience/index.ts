export * from './breaker.js';
export * from './policy.js';
