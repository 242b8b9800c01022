/**
 * Where dropout masks come from in training: a base seed and a counter, one mask seed per dropout the model applies,
 * so that a run, and a run resumed from its saved state, draws the same masks. The training loop owns one and passes
 * it to `forward`; evaluation passes none (dropout off).
 */
export class DropoutStream {
  constructor(
    readonly seed = 0,
    private counter = 0,
  ) {}

  /** The seed of the next mask. */
  next(): number {
    return this.seed * 1_000_003 + this.counter++;
  }

  /** What a run's saved state records, and `new DropoutStream(seed, counter)` continues from. */
  state(): { seed: number; counter: number } {
    return { seed: this.seed, counter: this.counter };
  }
}
