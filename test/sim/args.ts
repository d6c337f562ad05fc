/**
 * A small argument parser that fails the way smolvm's clap front end does: unknown flags,
 * stray positionals, missing values and conflicts are `error: ...` with a usage line and exit 2.
 */
import { ExitRequest, UsageError } from './errors';

export interface OptionSpec {
  long: string;
  short?: string;
  /** Value name shown in messages (`--name <NAME>`); absent for a flag. */
  value?: string;
  multiple?: boolean;
}

export interface CommandSpec {
  usage: string;
  about: string;
  options: OptionSpec[];
  /** Required positional arguments, in order. */
  positionals?: string[];
  /** `last`: a command only after `--`; `var`: the first positional starts it (clap trailing_var_arg). */
  trailing?: 'last' | 'var';
  trailingRequired?: boolean;
  required?: string[];
  conflicts?: Array<[string, string]>;
}

export interface ParsedArgs {
  spec: CommandSpec;
  values: Map<string, string[]>;
  flags: Set<string>;
  positionals: string[];
  trailing: string[];
}

export function parseArgs(spec: CommandSpec, argv: readonly string[]): ParsedArgs {
  const parsed: ParsedArgs = { spec, values: new Map(), flags: new Set(), positionals: [], trailing: [] };
  let i = 0;
  while (i < argv.length) {
    const arg = argv[i];
    if (arg === '--') {
      takeTrailing(parsed, argv.slice(i + 1), true);
      break;
    }
    if (arg === '--help' || arg === '-h') throw printHelp(spec);
    if (arg.startsWith('--')) i = takeLong(parsed, argv, i);
    else if (arg.startsWith('-') && arg.length > 1) i = takeShorts(parsed, argv, i);
    else if (spec.trailing === 'var' && parsed.positionals.length >= (spec.positionals?.length ?? 0)) {
      takeTrailing(parsed, argv.slice(i), false);
      break;
    } else {
      takePositional(parsed, arg);
      i += 1;
    }
  }
  checkComplete(parsed);
  return parsed;
}

function takeTrailing(parsed: ParsedArgs, rest: string[], afterDashDash: boolean): void {
  if (!parsed.spec.trailing) {
    if (rest.length > 0) throw unexpected(parsed.spec, rest[0]);
    return;
  }
  if (parsed.spec.trailing === 'last' && !afterDashDash) throw unexpected(parsed.spec, rest[0]);
  parsed.trailing = rest;
}

function takeLong(parsed: ParsedArgs, argv: readonly string[], i: number): number {
  const arg = argv[i];
  const eq = arg.indexOf('=');
  const name = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
  const option = parsed.spec.options.find((o) => o.long === name);
  if (!option) throw unexpected(parsed.spec, arg);
  if (!option.value) {
    if (eq >= 0) throw usage(parsed.spec, `unexpected value '${arg.slice(eq + 1)}' for '--${name}' found; no more were expected`);
    parsed.flags.add(option.long);
    return i + 1;
  }
  if (eq >= 0) {
    addValue(parsed, option, arg.slice(eq + 1));
    return i + 1;
  }
  addValue(parsed, option, requireValue(parsed.spec, option, argv[i + 1]));
  return i + 2;
}

function takeShorts(parsed: ParsedArgs, argv: readonly string[], i: number): number {
  const arg = argv[i];
  for (let c = 1; c < arg.length; c++) {
    const option = parsed.spec.options.find((o) => o.short === arg[c]);
    if (!option) throw unexpected(parsed.spec, `-${arg[c]}`);
    if (!option.value) {
      parsed.flags.add(option.long);
      continue;
    }
    const attached = arg.slice(c + 1).replace(/^=/, '');
    if (attached) {
      addValue(parsed, option, attached);
      return i + 1;
    }
    addValue(parsed, option, requireValue(parsed.spec, option, argv[i + 1]));
    return i + 2;
  }
  return i + 1;
}

function takePositional(parsed: ParsedArgs, arg: string): void {
  if (parsed.positionals.length >= (parsed.spec.positionals?.length ?? 0)) throw unexpected(parsed.spec, arg);
  parsed.positionals.push(arg);
}

function requireValue(spec: CommandSpec, option: OptionSpec, next: string | undefined): string {
  if (next === undefined || (next.startsWith('-') && next.length > 1)) {
    throw usage(spec, `a value is required for '${display(option)}' but none was supplied`);
  }
  return next;
}

function addValue(parsed: ParsedArgs, option: OptionSpec, value: string): void {
  const existing = parsed.values.get(option.long);
  if (existing && !option.multiple) {
    throw usage(parsed.spec, `the argument '${display(option)}' cannot be used multiple times`);
  }
  parsed.values.set(option.long, [...(existing ?? []), value]);
}

function checkComplete(parsed: ParsedArgs): void {
  const { spec } = parsed;
  const missing = (spec.required ?? []).filter((long) => !parsed.values.has(long)).map((long) => display(optionFor(spec, long)));
  missing.push(...(spec.positionals ?? []).slice(parsed.positionals.length));
  if (spec.trailingRequired && parsed.trailing.length === 0) missing.push('<COMMAND>...');
  if (missing.length > 0) {
    throw usage(spec, `the following required arguments were not provided:\n  ${missing.join('\n  ')}`);
  }
  for (const [a, b] of spec.conflicts ?? []) {
    if (isPresent(parsed, a) && isPresent(parsed, b)) {
      throw usage(spec, `the argument '${display(optionFor(spec, a))}' cannot be used with '${display(optionFor(spec, b))}'`);
    }
  }
}

function isPresent(parsed: ParsedArgs, long: string): boolean {
  return parsed.flags.has(long) || parsed.values.has(long);
}

function optionFor(spec: CommandSpec, long: string): OptionSpec {
  const option = spec.options.find((o) => o.long === long);
  if (!option) throw new Error(`option --${long} is not declared`);
  return option;
}

function display(option: OptionSpec): string {
  return option.value ? `--${option.long} <${option.value}>` : `--${option.long}`;
}

function unexpected(spec: CommandSpec, arg: string): UsageError {
  return usage(spec, `unexpected argument '${arg}' found`);
}

export function usage(spec: CommandSpec, message: string): UsageError {
  return new UsageError(message, spec.usage);
}

function printHelp(spec: CommandSpec): ExitRequest {
  const lines = [spec.about, '', `Usage: ${spec.usage}`, '', 'Options:'];
  for (const option of spec.options) {
    const short = option.short ? `-${option.short}, ` : '    ';
    lines.push(`  ${short}${display(option)}`);
  }
  lines.push('  -h, --help');
  process.stdout.write(`${lines.join('\n')}\n`);
  return new ExitRequest(0);
}

export function flag(parsed: ParsedArgs, long: string): boolean {
  return parsed.flags.has(long);
}

export function value(parsed: ParsedArgs, long: string): string | undefined {
  return parsed.values.get(long)?.[0];
}

export function values(parsed: ParsedArgs, long: string): string[] {
  return parsed.values.get(long) ?? [];
}

/** An unsigned integer option, rejected like Rust's parser would (`invalid digit found in string`). */
export function unsignedValue(parsed: ParsedArgs, long: string, max: number, fallback: number): number {
  const raw = value(parsed, long);
  if (raw === undefined) return fallback;
  const reason = !/^\+?\d+$/.test(raw)
    ? raw === ''
      ? 'cannot parse integer from empty string'
      : 'invalid digit found in string'
    : Number(raw) > max
      ? 'number too large to fit in target type'
      : undefined;
  if (reason) throw usage(parsed.spec, `invalid value '${raw}' for '${display(optionFor(parsed.spec, long))}': ${reason}`);
  return Number(raw);
}

/** `30s`, `5m`, `1h`, `250ms` or bare seconds, in milliseconds. */
export function durationValue(parsed: ParsedArgs, long: string): number | undefined {
  const raw = value(parsed, long);
  if (raw === undefined) return undefined;
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(raw.trim());
  if (!match) {
    throw usage(parsed.spec, `invalid value '${raw}' for '${display(optionFor(parsed.spec, long))}': invalid duration '${raw}'`);
  }
  const scale: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  return Number(match[1]) * scale[match[2] ?? 's'];
}

/**
 * `-e` values as smolvm reads them: `KEY=VALUE` as given, a bare `KEY` takes smolvm's own `$KEY`
 * (dropped when unset), an empty key is dropped (src/util.rs:78-106).
 */
export function envSpecs(specs: string[]): string[] {
  return specs.flatMap((spec) => {
    const eq = spec.indexOf('=');
    if (eq > 0) return [spec];
    if (eq === 0 || spec === '') return [];
    const forwarded = process.env[spec];
    return forwarded === undefined ? [] : [`${spec}=${forwarded}`];
  });
}
