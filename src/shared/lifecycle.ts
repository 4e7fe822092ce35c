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
