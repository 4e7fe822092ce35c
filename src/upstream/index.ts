export * from './client.js';
export * from './errors.js';
export * from './health.js';
export * from './pool.js';
export * from './h2-client.js';
export * from './stream-client.js';
