/** The fidelity targets a comparison is judged by (docs/reference.md, fidelity targets). */
export const TARGETS = {
  /** Each cache level's misses per 1,000 instructions over the platforms: the mean and the
   *  worst relative error; absolute where the original's figure is below `small`. */
  cacheMean: 0.05,
  cacheWorst: 0.1,
  small: 1,
  smallAbs: 0.1,
  branch: 0.05,
  insns: 0.03,
  /** Each instruction class's share, in percentage points. */
  mixPp: 2,
  pairedRatio: [0.85, 1.15] as const,
  syscalls: 0.05,
  /** Calls a request at least this often get a row and a bound of their own
   *  (`syscalls.<name>.per_req`). */
  syscallRowMin: 0.1,
  bytes: 0.01,
  /** Saturation throughput; latency at loads up to `latencyUpTo` of the original's. */
  saturation: 0.1,
  latencyUpTo: 0.8,
  p50: 0.1,
  p99: 0.2,
  /** Bytes written to files and the calls that force them to the disk, a request. */
  disk: 0.02,
  /** A driver's own figures (pgbench's transactions a second and mean latency). */
  driver: 0.1,
};
