/**
 * `botBottle.registry.pullHost`: the name a VM uses for this host when it pulls a frozen image,
 * and so (on the native path) the address the image is served on. One rule for both image paths.
 */
import { isIP } from 'node:net';
import { UserError } from './errors';

export const DEFAULT_PULL_HOST = '127.0.0.1';
const LOOPBACK = '127.0.0.1';

/** A host name, an IPv4 address or a bracketed IPv6 address (IPv4-mapped ones too); no scheme, port or path. */
export function checkedPullHost(host: string): string {
  const trimmed = host.trim();
  if (/^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(trimmed) || isBracketedIPv6(trimmed)) return trimmed;
  throw new UserError(`botBottle.registry.pullHost must be a host name or address without scheme or port, not "${host}".`);
}

/**
 * Loopback unless the pull host is an address: then the VM reaches this host there, so that is
 * where to listen. A host name is the VM's own name for this host's loopback (as with the
 * registry), and a wildcard address is never right: it would serve every network.
 */
export function bindAddressFor(pullHost: string): string {
  const host = unbracketed(checkedPullHost(pullHost));
  if (isIP(host) === 0) return LOOPBACK;
  if (isUnspecified(host)) throw new UserError(`botBottle.registry.pullHost must name one address, not "${pullHost}" (every network).`);
  return host;
}

/** `0.0.0.0`, `::` in any spelling, and `::ffff:0.0.0.0` (the IPv4 wildcard written as IPv6). */
export function isUnspecified(address: string): boolean {
  if (isIP(address) === 4) return address === '0.0.0.0';
  const normal = new URL(`http://[${address}]/`).hostname;
  return normal === '[::]' || normal === '[::ffff:0:0]';
}

function isBracketedIPv6(host: string): boolean {
  return host.startsWith('[') && host.endsWith(']') && isIP(unbracketed(host)) === 6;
}

function unbracketed(host: string): string {
  return host.replace(/^\[(.*)\]$/, '$1');
}
