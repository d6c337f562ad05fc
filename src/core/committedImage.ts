/**
 * What a frozen bottle's image is, whichever way it is made: the archived root filesystem as its
 * only layer, run as the agent's user in its home. The docker path writes it as a Dockerfile, the
 * native path as an OCI config; both come from here so that they cannot drift apart.
 */

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
