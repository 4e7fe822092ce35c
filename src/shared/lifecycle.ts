import type { Logger } from './logger.js';

/**
 * Runs `stop` once on SIGINT, SIGTERM, or the loss of the parent's IPC channel (the supervisor
 * of `calcmesh up` died, even by SIGKILL), then exits. A second signal exits at once.
 */
export function onShutdown(logger: Logger, stop: (reason: string) => Promise<void>): void {
  let stopping = false;
  const handle = (reason: string) => {
    if (stopping) {
      logger.warn({ reason }, 'second stop request; exiting now');
      process.exit(1);
    }
    stopping = true;
    logger.info({ reason }, 'stopping');
    stop(reason).then(
      () => process.exit(0),
      (error) => {
        logger.error({ err: error }, 'error while stopping');
        process.exit(1);
      },
    );
  };
  // Under `calcmesh up`, Ctrl-C reaches every process of the terminal's group at once; the
  // supervisor turns it into one SIGTERM per child, so a child leaves SIGINT to it.
  process.on('SIGINT', () => (process.connected ? undefined : handle('SIGINT')));
  process.on('SIGTERM', () => handle('SIGTERM'));
  if (process.connected) process.on('disconnect', () => handle('supervisor gone'));
}

/**
 * A component that cannot start (its queue cannot be opened, its port is taken): the CLI prints
 * the message and exits with EXIT_STARTUP_FAILURE, and `calcmesh up` stops restarting a child
 * that keeps failing this way.
 */
export class StartupError extends Error {
  override readonly name = 'StartupError';
}

/** EX_CONFIG of sysexits.h: the process could not start as configured. */
export const EXIT_STARTUP_FAILURE = 78;

/**
 * Why `host:port` could not be bound, in words a person acts on. grpc-js only says "No address
 * added"; binding a plain socket to the same address finds the real cause.
 */
export async function bindFailure(host: string, port: number, who: string, error: unknown): Promise<StartupError> {
  const code = (error as { code?: unknown }).code;
  const cause = typeof code === 'string' && code.startsWith('E') ? code : await probeBind(host, port);
  if (cause === 'EADDRINUSE') return new StartupError(`port ${port} is in use (${who}); is calcmesh already running? Stop it, or choose another port`);
  if (cause === 'EACCES') return new StartupError(`port ${port} needs privileges this process lacks (${who})`);
  if (cause === 'EADDRNOTAVAIL') return new StartupError(`address ${host} is not an address of this machine (${who})`);
  return new StartupError(`cannot listen on ${host}:${port} (${who}): ${cause ?? (error instanceof Error ? error.message : String(error))}`);
}

async function probeBind(host: string, port: number): Promise<string | undefined> {
  const { createServer } = await import('node:net');
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', (e: NodeJS.ErrnoException) => resolve(e.code));
    server.listen(port, host, () => server.close(() => resolve(undefined)));
  });
}
