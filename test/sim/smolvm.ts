/**
 * A faithful stand-in for the `smolvm` CLI (see test/sim/README.md and
 * /work/shared/docs/smolvm-cli.md). Bundled to out/sim/smolvm.cjs; run through test/sim/bin/smolvm.
 */
import { flag, parseArgs, usage, value, type CommandSpec } from './args';
import { cpCommand } from './copy';
import { simCommand } from './demo';
import { describeError, ExitRequest, SimError, UsageError } from './errors';
import { execCommand } from './exec';
import { createCommand, dataDirCommand, deleteCommand, lsCommand, startCommand, statusCommand, stopCommand } from './machine';
import { err, logInvocation, out } from './output';
import { packCommand } from './pack';
import { exitQuietlyOnClosedOutput } from './signals';
import { SIM_VERSION } from './version';

const TOP_SPEC: CommandSpec = {
  usage: 'smolvm <COMMAND>',
  about: `smolvm ${SIM_VERSION} (bot-bottle stand-in)\n\nCommands:\n  machine  Manage machines\n  pack     Package and run self-contained VM executables\n  sim      Stand-in helpers (demo bottles, forced states)`,
  options: [{ long: 'version', short: 'V' }],
};

const MACHINE_SPEC: CommandSpec = {
  usage: 'smolvm machine <COMMAND>',
  about: 'Manage machines\n\nCommands:\n  exec, create, start, stop, delete (rm), status, ls (list), shell (sh), cp, data-dir',
  options: [],
};

const SHELL_SPEC: CommandSpec = {
  usage: 'smolvm machine shell [OPTIONS]',
  about: 'Open an interactive shell in a machine',
  options: [{ long: 'name', short: 'n', value: 'NAME' }],
};

const MACHINE_COMMANDS: Record<string, (argv: string[]) => Promise<void>> = {
  ls: lsCommand,
  list: lsCommand,
  status: statusCommand,
  create: createCommand,
  start: startCommand,
  stop: stopCommand,
  delete: deleteCommand,
  rm: deleteCommand,
  exec: execCommand,
  cp: cpCommand,
  'data-dir': dataDirCommand,
  shell: shellCommand,
  sh: shellCommand,
};

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (command === 'machine') return machineCommand(rest);
  if (command === 'pack') return packCommand(rest);
  if (command === 'sim') return simCommand(rest);
  // Only `--version`/`-V`: smolvm has no `version` subcommand (src/main.rs:9-82).
  if (command !== undefined && !command.startsWith('-')) throw usage(TOP_SPEC, `unrecognized subcommand '${command}'`);
  const parsed = parseArgs(TOP_SPEC, command === undefined ? ['--help'] : [command]);
  if (flag(parsed, 'version')) out(`smolvm ${SIM_VERSION}`);
}

async function machineCommand(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h') {
    parseArgs(MACHINE_SPEC, ['--help']);
    return;
  }
  const handler = MACHINE_COMMANDS[sub];
  if (!handler) throw usage(MACHINE_SPEC, `unrecognized subcommand '${sub}'`);
  return handler(rest);
}

function shellCommand(argv: string[]): Promise<void> {
  const parsed = parseArgs(SHELL_SPEC, argv);
  return execCommand(['--name', value(parsed, 'name') ?? 'default', '-i', '-t', '--', '/bin/sh']);
}

function report(error: unknown): number {
  if (error instanceof ExitRequest) return error.exitCode;
  if (error instanceof UsageError) {
    process.stderr.write(`error: ${error.message}\n\nUsage: ${error.usage}\n\nFor more information, try '--help'.\n`);
    return 2;
  }
  if (error instanceof SimError) {
    err(`Error: ${error.message}`);
    return error.exitCode;
  }
  err(`Error: ${describeError(error)}`);
  return 1;
}

const args = process.argv.slice(2);
logInvocation(args);
exitQuietlyOnClosedOutput();
main(args).then(
  () => {
    process.exitCode = 0;
  },
  (error: unknown) => {
    process.exitCode = report(error);
  },
);
