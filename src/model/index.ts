export * from './common.js';
export * from './errors.js';
export * from './io.js';
export * from './workload.js';
export * from './profile.js';
export * from './measurement.js';
export * from './comparison.js';
export * from './cpu.js';
