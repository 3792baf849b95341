/** Seconds a stage of a run took. */
export interface StageTime {
  stage: string;
  seconds: number;
}

/** Progress of a run, on stderr: one line per stage with the elapsed time; within a stage, its
 *  steps on a live line (a spinner, overwritten) where stderr is a terminal, or as lines of
 *  their own with `verbose`. Every line fits `WIDTH` columns (or the terminal's). */
export interface Progress {
  /** Ends the stage under way (its time is kept) and starts `name`. */
  stage(name: string, what: string): void;
  /** A step within the stage. */
  step(msg: string): void;
  /** Text for stdout (a result), written below the live line rather than into it. */
  print(text: string): void;
  /** Ends the last stage; the times of all. */
  end(): StageTime[];
}

const WIDTH = 120;
const SPINNER = ['|', '/', '-', '\\'];

const clip = (s: string, width: number) => (s.length <= width ? s : `${s.slice(0, width - 1)}…`);

/** A progress printer; `quiet` prints nothing (the times are still kept). */
export function progress(opts: { quiet?: boolean; verbose?: boolean } = {}): Progress {
  const t0 = Date.now();
  const out = process.stderr;
  const live = !opts.quiet && out.isTTY === true;
  const width = () => Math.min(WIDTH, live ? (out.columns ?? WIDTH) - 1 : WIDTH);
  const stamp = () => `[twin ${((Date.now() - t0) / 1000).toFixed(0).padStart(4)}s]`;
  const times: StageTime[] = [];
  let current: { stage: string; at: number } | null = null;
  let step = '';
  let spin = 0;
  let timer: NodeJS.Timeout | null = null;
  const clear = () => live && out.write('\r\x1b[K');
  const draw = () => {
    if (!live || !current) return;
    spin = (spin + 1) % SPINNER.length;
    const elapsed = ((Date.now() - current.at) / 1000).toFixed(0);
    out.write(`\r\x1b[K${clip(`${SPINNER[spin]} ${current.stage} ${elapsed}s: ${step}`, width())}`);
  };
  const close = () => {
    if (!current) return;
    times.push({ stage: current.stage, seconds: (Date.now() - current.at) / 1000 });
    current = null;
    if (timer) clearInterval(timer);
    timer = null;
    clear();
  };
  const line = (s: string) => {
    if (opts.quiet) return;
    clear();
    out.write(`${clip(s, width())}\n`);
    draw();
  };
  return {
    stage(name, what) {
      close();
      current = { stage: name, at: Date.now() };
      step = what;
      line(`${stamp()} ${name}: ${what}`);
      if (live) {
        timer = setInterval(draw, 250);
        timer.unref();
      }
    },
    step(msg) {
      step = msg;
      if (live) draw();
      else if (opts.verbose) line(`${stamp()}   ${msg}`);
    },
    print(text) {
      clear();
      process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
      draw();
    },
    end() {
      close();
      return times;
    },
  };
}
