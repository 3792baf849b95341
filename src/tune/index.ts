/** The feedback loop: one file per job. `tune` is the loop; the rest is exported for tests. */
export { tune, type TuneOptions } from './loop.js';
export { withSkeleton, skeletonOnly } from './skeleton.js';
