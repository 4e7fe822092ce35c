/**
 * The set-up most HTTP tests share: real gRPC services on free ports, a real gateway in front of
 * them, both closed after the file (or the describe block the call sits in).
 */
import { after, before } from 'node:test';
import type { ServiceOp } from '../../src/shared/operations.js';
import { startGateway, type TestGateway } from './gateway.js';
import { startServices, type TestServices } from './services.js';

export type GatewayFixtureOptions = Omit<Parameters<typeof startGateway>[0], 'targets'> & {
  /** Services stopped before the gateway starts, so that their requests take the queue path. */
  readonly stopped?: readonly ServiceOp[];
};

/** Registers the before/after hooks; `ready` receives the gateway and the services once they run. */
export function withGateway(options: GatewayFixtureOptions, ready: (gateway: TestGateway, services: TestServices) => void): void {
  let services: TestServices | undefined;
  let gateway: TestGateway | undefined;
  before(async () => {
    services = await startServices();
    for (const op of options.stopped ?? []) await services.stop(op);
    const { stopped: _, ...gatewayOptions } = options;
    gateway = await startGateway({ targets: services.targets, ...gatewayOptions });
    ready(gateway, services);
  });
  after(async () => {
    await gateway?.close();
    await services?.close();
  });
}
