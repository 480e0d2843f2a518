export * from './enums.js';
export * from './jobs.js';
export * from './task-queues.js';
export * from './registry.js';
export * from './pilots.js';
export * from './sandboxes.js';
export * from './auth.js';
