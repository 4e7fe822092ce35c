/**
 * The calcmesh command line. Server commands turn their flags into the environment variables
 * of the same meaning (the flag wins) and hand that to loadConfig, the one reader of settings.
 */
import { fileURLToPath } from 'node:url';
import { Command, Option } from 'commander';
import { DEFAULTS, loadClientSettings, loadConfig, type Env } from '../shared/config.js';
import { CalcError } from '../shared/errors.js';
import { EXIT_STARTUP_FAILURE, StartupError } from '../shared/lifecycle.js';
import { createLogger } from '../shared/logger.js';
import { isServiceOp, SERVICE_OPS } from '../shared/operations.js';
import { VERSION } from '../shared/version.js';
import { callCommand, evalCommand, output, resultsCommand, statusCommand, type ClientOptions } from './client.js';
import { parseProbeRole, probe } from './probe.js';
import { sendControl, serveControl } from './control.js';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { dlqCommand } from './dlq.js';
import { followCommand, listCommand } from './follow.js';

const ENTRY = fileURLToPath(new URL('../../bin/calcmesh.js', import.meta.url));

/** The environment, read here once: servers turn it into a Config, clients into their settings. */
const ENV: Env = process.env;
const client = loadClientSettings(ENV);
output.colour = client.colour && process.stdout.isTTY === true;

/** Server flags and the variables they stand for. */
const SERVER_FLAGS = [
  ['--redis-url <url>', 'CALC_REDIS_URL', 'use Redis Streams as the queue (redis://[:password@]host:port[/db])'],
  ['--data-dir <dir>', 'CALC_DATA_DIR', 'where the embedded queue keeps its file (default $XDG_STATE_HOME/calcmesh or ~/.local/state/calcmesh)'],
  ['--deadline-ms <ms>', 'CALC_DEADLINE_MS', `gRPC deadline of one forwarded call (default ${DEFAULTS.CALC_DEADLINE_MS})`],
  ['--log-level <level>', 'LOG_LEVEL', `trace, debug, info, warn, error, silent (default ${DEFAULTS.LOG_LEVEL})`],
] as const;

function withServerFlags(command: Command, extra: ReadonlyArray<readonly [string, string, string]> = []): Command {
  for (const [flags, variable, description] of [...SERVER_FLAGS, ...extra]) {
    command.addOption(new Option(flags, `${description}; env ${variable}`));
  }
  return command;
}

function envFrom(flags: Record<string, unknown>, extra: ReadonlyArray<readonly [string, string, string]> = []): Env {
  const env: Record<string, string | undefined> = { ...ENV };
  for (const [spec, variable] of [...SERVER_FLAGS, ...extra]) {
    const key = spec.slice(2, spec.indexOf(' ')).replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    if (flags[key] !== undefined) env[variable] = String(flags[key]);
  }
  return env;
}

function clientOptions(flags: Record<string, any>): ClientOptions {
  return {
    gateway: flags.gateway ?? client.gatewayUrl,
    json: Boolean(flags.json),
    apiKey: flags.apiKey ?? client.apiKey,
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
    .action(async (flags) => {
      const env = envFrom(flags);
      const config = loadConfig(env); // fail fast on a bad setting, before starting six processes
      // Loaded here only: pino-pretty alone is ~10 MB of every gateway's and service's RSS otherwise.
      const { localComponents, supervise } = await import('./up.js');
      const supervisor = supervise({
        entry: ENTRY,
        env,
        components: localComponents(config, env),
        pretty: process.stdout.isTTY === true,
        onGiveUp: (why) => {
          process.stderr.write(`calcmesh: ${why}\n`);
          process.exit(1);
        },
      });
      let stopping = false;
      const stop = () => {
        if (stopping) return;
        stopping = true;
        supervisor.stop().then(() => process.exit(0));
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
      try {
        mkdirSync(dirname(config.controlSocket), { recursive: true });
        await serveControl(config.controlSocket, (request) => ({ ok: true, message: supervisor.restart(request.name, request.signal) }));
        print(`up | control socket ${config.controlSocket} (calcmesh restart <name>)`);
      } catch (error) {
        // The system runs without it; only `calcmesh restart` is unavailable.
        process.stderr.write(`calcmesh: no control socket at ${config.controlSocket}: ${(error as Error).message}\n`);
      }
    });

  program
    .command('restart')
    .argument('<name>', `a component of a running calcmesh up: ${[...SERVICE_OPS, 'gateway'].join(', ')}`)
    .option('--signal <signal>', 'how to stop it: SIGTERM (graceful, the default) or SIGKILL (a crash)', 'SIGTERM')
    .option('--data-dir <dir>', 'the data directory of that calcmesh up (its control socket is up.sock there); env CALC_DATA_DIR')
    .description("stop one of calcmesh up's own children and start it again (for failover demos, instead of pkill)")
    .action(async (name: string, flags) => {
      const config = loadConfig(envFrom(flags));
      const reply = await sendControl(config.controlSocket, { command: 'restart', name, signal: String(flags.signal).toUpperCase() as NodeJS.Signals });
      print(reply.message);
      process.exitCode = reply.ok ? 0 : 1;
    });

  const gatewayFlags = [
    ['--host <host>', 'CALC_GATEWAY_HOST', `address to listen on (default ${DEFAULTS.CALC_GATEWAY_HOST})`],
    ['--port <port>', 'CALC_GATEWAY_PORT', `port to listen on (default ${DEFAULTS.CALC_GATEWAY_PORT})`],
  ] as const;
  withServerFlags(program.command('gateway').description('the HTTP gateway alone'), gatewayFlags).action(async (flags) => {
    const config = loadConfig(envFrom(flags, gatewayFlags));
    const { mainGateway } = await import('../gateway/main.js');
    await mainGateway(config, createLogger('gateway', config.logLevel));
  });

  const serviceFlags = [
    ['--host <host>', 'CALC_SERVICE_HOST', `address to listen on (default ${DEFAULTS.CALC_SERVICE_HOST})`],
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

  program
    .command('probe')
    .argument('[role]', 'gateway | service | relay (default: the role pid 1 runs, as in a container)')
    .argument('[op]', SERVICE_OPS.join(' | '))
    .option('--timeout-ms <ms>', 'how long to wait for the answer', '2000')
    .option('--quiet', 'print nothing')
    .description('exit 0 when the local component answers its readiness check (for container healthchecks)')
    .action(async (role: string | undefined, op: string | undefined, flags) => {
      const timeoutMs = Number(flags.timeoutMs);
      if (!Number.isInteger(timeoutMs) || timeoutMs < 1) throw new Error(`--timeout-ms must be a whole number of milliseconds, got ${JSON.stringify(flags.timeoutMs)}`);
      const { code, detail } = await probe(parseProbeRole(role, op), loadConfig(ENV), timeoutMs);
      if (!flags.quiet) (code === 0 ? process.stdout : process.stderr).write(`${detail}\n`);
      process.exitCode = code;
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
    .option('--list', "list this client's tickets instead, newest first (the history; delivers nothing)")
    .option('--status <status>', 'with --list: queued, done or failed')
    .option('--operation <op>', `with --list: ${SERVICE_OPS.join(', ')}`)
    .option('--limit <n>', 'with --list: at most this many tickets (default 100)')
    .option('--follow', 'print results as they complete (the event stream), until interrupted')
    .action(async (flags) => {
      const options = clientOptions(flags);
      if (flags.follow) {
        const stop = new AbortController();
        process.once('SIGINT', () => stop.abort());
        process.once('SIGTERM', () => stop.abort());
        process.exitCode = await followCommand(options, print, stop.signal);
      } else if (flags.list) {
        process.exitCode = await listCommand(options, print, { status: flags.status, operation: flags.operation, limit: flags.limit === undefined ? undefined : Number(flags.limit) });
      } else {
        process.exitCode = await resultsCommand(options, print);
      }
    });

  clientCommand(program, 'dlq', 'dead letters, for operators: dlq list [--operation op] | dlq replay <id> | dlq purge <id> (an operator key: --api-key or env CALC_ADMIN_KEY)')
    .argument('<action>', 'list | replay | purge')
    .argument('[id]', "the dead letter's ticket id")
    .option('--operation <op>', `with list: ${SERVICE_OPS.join(', ')}`)
    .action(async (action: string, id: string | undefined, flags) => {
      const options = { ...clientOptions(flags), apiKey: flags.apiKey ?? client.adminKey ?? client.apiKey };
      process.exitCode = await dlqCommand(options, print, action, id, flags.operation);
    });

  clientCommand(program, 'status', 'services, replicas, health and queues')
    .action(async (flags) => { process.exitCode = await statusCommand(clientOptions(flags), print); });

  return program;
}

export async function main(argv: readonly string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv as string[]);
  } catch (error) {
    process.stderr.write(`calcmesh: ${(error as Error).message}\n`);
    // Exit rather than set an exit code: a half-started server may hold timers and sockets that
    // would keep the process alive while it cannot work.
    process.exit(error instanceof StartupError ? EXIT_STARTUP_FAILURE : 1);
  }
}
