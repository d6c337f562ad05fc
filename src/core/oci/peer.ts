/**
 * Who is at the other end of a local TCP connection, on Linux: the kernel lists every TCP socket
 * of this network namespace in /proc/net/tcp and /proc/net/tcp6 with the uid that owns it. The
 * client's socket is the one whose local address is our peer's and whose remote address is ours.
 * smolvm's puller runs in a helper VM whose connections to the host leave from smolvm's own
 * process (libkrun's TSI), so a pull for this user's freeze comes from a socket of this user.
 */
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { endianness } from 'node:os';

export const TCP_TABLES = ['/proc/net/tcp', '/proc/net/tcp6'] as const;

export interface Endpoint {
  address: string;
  port: number;
}

export interface Connection {
  /** The client's end, as our accepted socket sees it (`remoteAddress`, `remotePort`). */
  client: Endpoint;
  /** Our end (`localAddress`, `localPort`). */
  server: Endpoint;
}

/** Whether this platform can tell who owns the other end of a connection. */
export function canCheckPeers(platform = process.platform): boolean {
  return platform === 'linux';
}

/** The uid that owns the client's socket, or undefined when no socket of this host has that end. */
export async function peerUid(connection: Connection, tables: readonly string[] = TCP_TABLES): Promise<number | undefined> {
  const texts = await Promise.all(tables.map((table) => readFile(table, 'utf8').catch(() => '')));
  return findSocketOwner(texts.join('\n'), connection);
}

/** Reads a /proc/net/tcp{,6} table for the socket whose local end is the client's and remote end the server's. */
export function findSocketOwner(table: string, connection: Connection): number | undefined {
  const local = endpointKey(connection.client);
  const remote = endpointKey(connection.server);
  for (const line of table.split('\n')) {
    const columns = line.trim().split(/\s+/);
    if (!/^\d+:$/.test(columns[0] ?? '') || columns.length < 8) continue;
    if (procEndpointKey(columns[1]) === local && procEndpointKey(columns[2]) === remote) return Number(columns[7]);
  }
  return undefined;
}

/** `address|port` with an IPv4-mapped IPv6 address written as IPv4 and IPv6 in its shortest form. */
function endpointKey(endpoint: Endpoint): string {
  return `${canonicalAddress(endpoint.address)}|${endpoint.port}`;
}

function canonicalAddress(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1];
  if (isIP(address) !== 6) return address;
  const hostname = new URL(`http://[${address}]/`).hostname;
  const inner = hostname.slice(1, -1);
  const stillMapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(inner);
  return stillMapped ? ipv4FromWords(stillMapped[1], stillMapped[2]) : inner;
}

function ipv4FromWords(high: string, low: string): string {
  const h = parseInt(high, 16);
  const l = parseInt(low, 16);
  return [h >> 8, h & 0xff, l >> 8, l & 0xff].join('.');
}

/** `0100007F:1F90` (IPv4) or 32 hex digits (IPv6): each 32-bit word is printed in host byte order. */
function procEndpointKey(field: string | undefined): string | undefined {
  const match = /^([0-9A-Fa-f]{8}|[0-9A-Fa-f]{32}):([0-9A-Fa-f]{4})$/.exec(field ?? '');
  if (!match) return undefined;
  const bytes = Buffer.alloc(match[1].length / 2);
  for (let word = 0; word < bytes.length / 4; word++) {
    const value = parseInt(match[1].slice(word * 8, word * 8 + 8), 16);
    if (endianness() === 'LE') bytes.writeUInt32LE(value, word * 4);
    else bytes.writeUInt32BE(value, word * 4);
  }
  const address = bytes.length === 4 ? [...bytes].join('.') : ipv6Text(bytes);
  return `${canonicalAddress(address)}|${parseInt(match[2], 16)}`;
}

function ipv6Text(bytes: Buffer): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
  return groups.join(':');
}
