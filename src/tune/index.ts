/** The feedback loop: one file per job. `tune` is the loop; the rest is exported for tests. */
export { tune, TUNE_ITERATIONS, type TuneOptions } from './loop.js';
export { withSkeleton, skeletonOnly } from './skeleton.js';
