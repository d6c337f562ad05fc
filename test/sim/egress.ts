/**
 * `machine create`'s egress flags as smolvm 1.9.3 reads them: `--allow-cidr` is checked by clap
 * (`parse_cidr`, src/smolfile.rs:86-104), `--allow-host` is resolved at create time and a failure
 * is a hard error (src/cli/machine.rs:88-94, src/smolfile.rs:38-80), `--outbound-localhost-only`
 * adds loopback (src/cli/machine.rs:96-99), and any of them turns the network on
 * (src/cli/machine.rs:100).
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { flag, usage, values, type ParsedArgs } from './args';
import { configError, SimError } from './errors';

export interface Egress {
  network: boolean;
  /** null when no allow flag was given, as smolvm stores it (src/cli/machine.rs:118-122). */
  allowedCidrs: string[] | null;
  dnsFilterHosts: string[] | null;
}

/** The allow-list flags, checked as clap checks them (a bad CIDR is a usage error, exit 2). */
export function allowCidrs(parsed: ParsedArgs): string[] {
  return values(parsed, 'allow-cidr').map((spec) => {
    const cidr = normalizeCidr(spec);
    if (!cidr) throw usage(parsed.spec, `invalid value '${spec}' for '--allow-cidr <CIDR>': invalid CIDR '${spec}': expected format like 10.0.0.0/8 or 1.1.1.1`);
    return cidr;
  });
}

/** `IP/prefix` kept as written, or a bare IP with /32 or /128 added; undefined if neither. */
export function normalizeCidr(spec: string): string | undefined {
  const slash = spec.indexOf('/');
  const ip = slash < 0 ? spec : spec.slice(0, slash);
  const family = isIP(ip);
  if (family === 0) return undefined;
  const max = family === 4 ? 32 : 128;
  if (slash < 0) return `${ip}/${max}`;
  const prefix = spec.slice(slash + 1);
  return /^\d{1,3}$/.test(prefix) && Number(prefix) <= max ? `${ip}/${Number(prefix)}` : undefined;
}

export async function resolveEgress(parsed: ParsedArgs, cidrs: string[]): Promise<Egress> {
  const hosts = values(parsed, 'allow-host');
  const allowed = [...cidrs];
  for (const host of hosts) allowed.push(...(await resolveHost(host)));
  if (flag(parsed, 'outbound-localhost-only')) allowed.push('127.0.0.0/8', '::1/128');
  return {
    network: flag(parsed, 'net') || allowed.length > 0,
    allowedCidrs: allowed.length > 0 ? allowed : null,
    dnsFilterHosts: hosts.length > 0 ? hosts : null,
  };
}

async function resolveHost(host: string): Promise<string[]> {
  const bare = normalizeCidr(host);
  if (bare && !host.includes('/')) return [bare];
  if (host.includes(':')) {
    throw configError('--allow-host', `invalid hostname '${host}': port suffixes are not supported. Use the hostname only (all ports are allowed to resolved IPs).`);
  }
  try {
    const found = await lookup(host, { all: true });
    if (found.length === 0) throw configError('--allow-host', `'${host}' resolved to no addresses`);
    return found.map((a) => `${a.address}/${a.family === 4 ? 32 : 128}`);
  } catch (error) {
    if (error instanceof SimError) throw error;
    throw configError('--allow-host', `failed to resolve '${host}': ${(error as Error).message}`);
  }
}
