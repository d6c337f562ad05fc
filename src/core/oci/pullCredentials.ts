/**
 * A user name and password made for one freeze, which the image endpoint asks of every client and
 * which only `smolvm pack create` is given. The password never appears on a command line: smolvm
 * reads registry credentials from its config file (`SMOLVM_CONFIG`, smolvm src/settings.rs:70), and
 * the file names an environment variable that holds the password (`password_env`,
 * src/registry.rs:180). The pull inside the helper VM is handed them (src/agent/client.rs:991) and
 * answers the endpoint's Basic challenge with them (crates/smolvm-agent/src/storage.rs:4295).
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export const PULL_USERNAME = 'bot-bottle';
/** The variable smolvm is told, in its config, to read the password from. */
export const PASSWORD_VARIABLE = 'BOT_BOTTLE_PULL_PASSWORD';
const CONFIG_NAME = 'smolvm-pull.toml';

export interface PullCredentials {
  readonly username: string;
  readonly password: string;
}

export function createPullCredentials(): PullCredentials {
  return { username: PULL_USERNAME, password: randomBytes(32).toString('hex') };
}

/** Whether an `Authorization` header carries exactly these credentials (HTTP Basic). */
export function authorizes(header: string | undefined, credentials: PullCredentials): boolean {
  const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? '');
  if (!match) return false;
  const given = Buffer.from(match[1], 'base64');
  const expected = Buffer.from(`${credentials.username}:${credentials.password}`);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/**
 * Writes smolvm's config for this pull into `dir` (a private folder of this process) and returns
 * the environment `pack create` needs: the config's path and the password. The config holds the
 * endpoint's credentials only, so nothing of the user's own smolvm config is copied anywhere.
 */
export async function smolvmPullEnvironment(dir: string, registryHost: string, credentials: PullCredentials): Promise<Record<string, string>> {
  const file = join(dir, CONFIG_NAME);
  const q = (value: string) => JSON.stringify(value);
  const config = [`[images.registries.${q(registryHost)}]`, `username = ${q(credentials.username)}`, `password_env = ${q(PASSWORD_VARIABLE)}`, ''].join('\n');
  await writeFile(file, config, { mode: 0o600 });
  return { SMOLVM_CONFIG: file, [PASSWORD_VARIABLE]: credentials.password };
}
