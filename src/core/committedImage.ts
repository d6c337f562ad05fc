/**
 * What a frozen bottle's image is, whichever way it is made: the archived root filesystem as its
 * only layer, run as the agent's user in its home. The docker path writes it as a Dockerfile, the
 * native path as an OCI config; both come from here so that they cannot drift apart.
 */
import { COMMITTED_REPOSITORY } from './names';

/** The archive of the root filesystem, as the Dockerfile expects it beside itself. */
export const ROOTFS_ARCHIVE = 'rootfs.tar.gz';

const AGENT_USER = 'node';
const AGENT_HOME = '/home/node';
/** What `docker build` puts in a `FROM scratch` image's environment. */
const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** An image holding exactly the archived root filesystem (ADD unpacks a .tar.gz), run as the agent. */
export function dockerfileForRootfs(): string {
  return `FROM scratch\nADD ${ROOTFS_ARCHIVE} /\nUSER ${AGENT_USER}\nWORKDIR ${AGENT_HOME}\n`;
}

/** The `config` object of the OCI image config that the Dockerfile above would give. */
export function ociRuntimeConfig(): { User: string; WorkingDir: string; Env: string[] } {
  return { User: AGENT_USER, WorkingDir: AGENT_HOME, Env: [DEFAULT_PATH] };
}

/**
 * Whether `image` is the reference a freeze gave `smolvm pack create`: the image as this extension
 * served it for the pack only (the native endpoint's `<pullHost>:<port>/bot-bottle-committed/<random>:<tag>`,
 * or the docker path's ephemeral registry, `<pullHost>:<port>/bot-bottle-committed:<id>`). smolvm
 * records it as the image of every machine made from the snapshot (src/cli/machine.rs:3384-3388),
 * though nothing serves it any more.
 */
export function isFreezePullReference(image: string): boolean {
  return FREEZE_PULL_REFERENCE.test(image);
}

const FREEZE_PULL_REFERENCE = new RegExp(String.raw`^[^/\s]+:\d+/${COMMITTED_REPOSITORY}(?:/[0-9a-f]{32})?:[A-Za-z0-9_][A-Za-z0-9_.-]*$`);
