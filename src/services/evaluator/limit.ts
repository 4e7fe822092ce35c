/**
 * At most `max` calls of one expression in flight: a 1,000-operation expression whose operands
 * are all ready would otherwise put 1,000 calls on the arithmetic services at once, and other
 * clients' simple expressions would queue behind them (CALC_EVAL_MAX_INFLIGHT).
 */
export function createLimit(max: number): <T>(fn: () => Promise<T>) => Promise<T> {
  let active = 0;
  const waiting: Array<() => void> = [];
  const release = () => {
    active--;
    waiting.shift()?.();
  };
  return async <T>(fn: () => Promise<T>): Promise<T> => {
    if (active >= max) await new Promise<void>((resolve) => waiting.push(resolve));
    active++;
    try {
      return await fn();
    } finally {
      release();
    }
  };
}
