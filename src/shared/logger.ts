import { pino, type Logger } from 'pino';

export type { Logger };

/** One JSON line per event on stdout; `component` names the process (gateway, add, …). */
export function createLogger(component: string, level: string): Logger {
  return pino({ level, base: { component, pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime });
}

/** For tests and library use: a logger that writes nothing. */
export const silentLogger = (): Logger => pino({ level: 'silent' });
