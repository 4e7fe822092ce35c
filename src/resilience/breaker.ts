/**
 * A circuit breaker for one upstream replica, in the shape of cockatiel's ConsecutiveBreaker
 * (cockatiel 4 needs Node 22). It counts availability failures only; argument and domain
 * errors are answers, not failures. While open, calls skip the replica at once; once
 * `halfOpenAfterMs` has passed, the next caller triggers one health probe (grpc.health.v1), and
 * a SERVING answer closes the breaker. A replica without a health service (the probe answers
 * 'trial') is judged by a real call instead, as gRFC A17 does: half-open then lets one call
 * through, and its outcome closes or reopens the breaker. Time comes from an injected clock.
 */
export type BreakerState = 'closed' | 'open' | 'half-open';

export interface BreakerOptions {
  /** Consecutive availability failures that open the breaker. */
  readonly failureThreshold: number;
  /** How long the breaker stays open before it probes the replica. */
  readonly halfOpenAfterMs: number;
  /** Resolves true when the replica reports SERVING, 'trial' when only a real call can tell. */
  readonly probe: () => Promise<boolean | 'trial'>;
  readonly onStateChange?: (state: BreakerState, previous: BreakerState) => void;
  readonly now?: () => number;
}

export class CircuitBreaker {
  #state: BreakerState = 'closed';
  #failures = 0;
  #openedAt = 0;
  /** Half-open by trial: may one call go through, and is it under way? */
  #trial: 'none' | 'ready' | 'taken' = 'none';
  readonly #options: BreakerOptions;
  readonly #now: () => number;

  constructor(options: BreakerOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  get state(): BreakerState {
    return this.#state;
  }

  /** May a call go to this replica now? While open, this is where the half-open probe starts. */
  allows(): boolean {
    if (this.#state === 'closed') return true;
    if (this.#state === 'open' && this.#now() - this.#openedAt >= this.#options.halfOpenAfterMs) this.#probe();
    if (this.#state === 'half-open' && this.#trial === 'ready') {
      this.#trial = 'taken';
      return true;
    }
    return false;
  }

  /** The trial call ended without saying anything of the replica (it was never sent): another may try. */
  inconclusive(): void {
    if (this.#trial === 'taken') this.#trial = 'ready';
  }

  success(): void {
    this.#failures = 0;
    if (this.#state !== 'closed') this.#move('closed');
  }

  failure(): void {
    if (this.#state === 'half-open' && this.#trial === 'taken') return this.#open();
    this.#failures += 1;
    if (this.#state === 'closed' && this.#failures >= this.#options.failureThreshold) this.#open();
  }

  /** Opens at once: the replica said it is going away (NOT_SERVING) or its connection is gone. */
  trip(): void {
    if (this.#state === 'closed') this.#open();
  }

  #open(): void {
    this.#trial = 'none';
    this.#openedAt = this.#now();
    this.#move('open');
  }

  #probe(): void {
    this.#move('half-open');
    this.#options.probe().then(
      (serving) => {
        if (this.#state !== 'half-open') return;
        if (serving === 'trial') this.#trial = 'ready';
        else if (serving) this.success();
        else this.#open();
      },
      () => this.#open(),
    );
  }

  #move(state: BreakerState): void {
    const previous = this.#state;
    this.#state = state;
    if (state === 'closed') {
      this.#failures = 0;
      this.#trial = 'none';
    }
    this.#options.onStateChange?.(state, previous);
  }
}
