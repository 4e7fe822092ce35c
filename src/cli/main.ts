/**
 * The calcmesh command line. Server commands turn their flags into the environment variables
 * of the same meaning (the flag wins) and hand that to loadConfig, the one reader of settings.
 */
import { fileURLToPath } from 'node:url';
import { Command, Option } from 'commander';
import { loadConfig, type Env } from '../shared/config.js';
import { CalcError } from '../shared/errors.js';
import { createLogger } from '../shared/logger.js';
import { isServiceOp, SERVICE_OPS } from '../shared/operations.js';
import { VERSION } from '../shared/version.js';
import { callCommand, evalCommand, resultsCommand, statusCommand, type ClientOptions } from './client.js';
import { localComponents, supervise } from './up.js';

const ENTRY = fileURLToPath(new URL('../../bin/calcmesh.js', import.meta.url));

/** Server flags and the variables they stand for. */
const SERVER_FLAGS = [
  ['--redis-url <url>', 'CALC_REDIS_URL', 'use Redis Streams as the queue (redis://[:password@]host:port[/db])'],
  ['--data-dir <dir>', 'CALC_DATA_DIR', 'where the embedded queue keeps its file (default ./data)'],
  ['--deadline-ms <ms>', 'CALC_DEADLINE_MS', 'gRPC deadline of one forwarded call (default 1000)'],
  ['--log-level <level>', 'LOG_LEVEL', 'trace, debug, info, warn, error, silent (default info)'],
] as const;

function withServerFlags(command: Command, extra: ReadonlyArray<readonly [string, string, string]> = []): Command {
  for (const [flags, variable, description] of [...SERVER_FLAGS, ...extra]) {
    command.addOption(new Option(flags, `${description}; env ${variable}`));
  }
  return command;
}

function envFrom(flags: Record<string, unknown>, extra: ReadonlyArray<readonly [string, string, string]> = []): Env {
  const env: Record<string, string | undefined> = { ...process.env };
  for (const [spec, variable] of [...SERVER_FLAGS, ...extra]) {
    const key = spec.slice(2, spec.indexOf(' ')).replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    if (flags[key] !== undefined) env[variable] = String(flags[key]);
  }
  return env;
}

function clientOptions(flags: Record<string, any>): ClientOptions {
  return {
    gateway: flags.gateway ?? process.env.CALC_GATEWAY_URL ?? 'http://127.0.0.1:8000',
    json: Boolean(flags.json),
    apiKey: flags.apiKey ?? process.env.CALC_API_KEY,
    wait: flags.wait === undefined ? undefined : Number(flags.wait),
  };
}

function clientCommand(program: Command, name: string, description: string): Command {
  return program
    .command(name)
    .description(description)
    .option('--gateway <url>', 'the gateway (env CALC_GATEWAY_URL)', undefined)
    .option('--api-key <key>', 'API key when the gateway requires one (env CALC_API_KEY)')
    .option('--json', 'print the JSON answer');
}

const print = (line: string) => process.stdout.write(`${line}\n`);

export function buildProgram(): Command {
  const program = new Command('calcmesh').version(VERSION).description('A distributed calculator that stays correct when parts of it fail.');

  withServerFlags(program.command('up').description('the whole system on this machine: every component as a supervised child process'))
    .action((flags) => {
      const env = envFrom(flags);
      const config = loadConfig(env); // fail fast on a bad setting, before starting six processes
      const supervisor = supervise({ entry: ENTRY, env, components: localComponents(config, env), pretty: process.stdout.isTTY === true });
      let stopping = false;
      const stop = () => {
        if (stopping) return;
        stopping = true;
        supervisor.stop().then(() => process.exit(0));
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });

  const gatewayFlags = [
    ['--host <host>', 'CALC_GATEWAY_HOST', 'address to listen on (default 127.0.0.1)'],
    ['--port <port>', 'CALC_GATEWAY_PORT', 'port to listen on (default 8000)'],
  ] as const;
  withServerFlags(program.command('gateway').description('the HTTP gateway alone'), gatewayFlags).action(async (flags) => {
    const config = loadConfig(envFrom(flags, gatewayFlags));
    const { mainGateway } = await import('../gateway/main.js');
    await mainGateway(config, createLogger('gateway', config.logLevel));
  });

  const serviceFlags = [
    ['--host <host>', 'CALC_SERVICE_HOST', 'address to listen on (default 0.0.0.0)'],
    ['--port <port>', 'CALC_SERVICE_PORT', "port to listen on (default: the operation's)"],
  ] as const;
  withServerFlags(program.command('service').argument('<op>', SERVICE_OPS.join(' | ')).description('one service alone: its gRPC server and its queue consumer'), serviceFlags)
    .action(async (op: string, flags) => {
      if (!isServiceOp(op)) throw new CalcError('INVALID_ARGUMENT', `unknown service ${JSON.stringify(op)}; expected one of ${SERVICE_OPS.join(', ')}`);
      const config = loadConfig(envFrom(flags, serviceFlags));
      const logger = createLogger(op, config.logLevel);
      if (op === 'evaluate') {
        const { mainEvaluator } = await import('../services/evaluator/main.js');
        await mainEvaluator(config, logger);
      } else {
        const { mainArithmetic } = await import('../services/arithmetic/main.js');
        await mainArithmetic(op, config, logger);
      }
    });

  withServerFlags(program.command('relay').argument('<op>', SERVICE_OPS.join(' | ')).description("a queue consumer for a service that does not consume the queue itself (the original Python ones): forwards each queued task to CALC_<OP>_TARGETS"))
    .action(async (op: string, flags) => {
      if (!isServiceOp(op)) throw new CalcError('INVALID_ARGUMENT', `unknown service ${JSON.stringify(op)}; expected one of ${SERVICE_OPS.join(', ')}`);
      const config = loadConfig(envFrom(flags));
      const { mainRelay } = await import('../services/relay/main.js');
      await mainRelay(op, config, createLogger(`relay-${op}`, config.logLevel));
    });

  clientCommand(program, 'call', 'compute one operation: calcmesh call add 6 7')
    .argument('<op>').argument('<a>').argument('<b>')
    .option('--wait <seconds>', 'when queued, wait up to this long for the result')
    .action(async (op, a, b, flags) => { process.exitCode = await callCommand(clientOptions(flags), print, op, a, b); });

  clientCommand(program, 'eval', 'compute an expression: calcmesh eval "(6+7)*3 - 8/2"')
    .argument('<expression>')
    .option('--wait <seconds>', 'when queued, wait up to this long for the result')
    .action(async (expression, flags) => { process.exitCode = await evalCommand(clientOptions(flags), print, expression); });

  clientCommand(program, 'results', "fetch this client's completed queued results (each is delivered once)")
    .option('--wait <seconds>', 'wait up to this long for at least one')
    .action(async (flags) => { process.exitCode = await resultsCommand(clientOptions(flags), print); });

  clientCommand(program, 'status', 'services, replicas, health and queues')
    .action(async (flags) => { process.exitCode = await statusCommand(clientOptions(flags), print); });

  return program;
}

export async function main(argv: readonly string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv as string[]);
  } catch (error) {
    process.stderr.write(`calcmesh: ${(error as Error).message}\n`);
    process.exitCode = 1;
  }
}
