/**
 * The settings the extension runs on: always what VS Code applies now, with where each came from.
 *
 * VS Code can change what getConfiguration() returns in a change event that does not name the
 * keys that changed. In a remote window (code-server's window always is one) it applies
 * machine-overridable settings only from the Remote settings, not from the User settings file; but
 * until an extension's settings are registered it cannot tell their scope, so at startup the
 * extension host is handed User-file values that the next reload of that file takes away, in an
 * event that names only the keys whose text changed. So settings are re-read on every
 * configuration event (not only those naming botBottle), when the view is shown and before every
 * command, and compared with those in use.
 */
import * as vscode from 'vscode';
import type { Settings } from '../core/facade';
import { readSettings } from './config';

const SECTION = 'botBottle';

/** Where the log lines go (a LogOutputChannel). */
interface SettingsLog {
  info(message: string): void;
}

export class SettingsSource implements vscode.Disposable {
  private current: Settings;
  private readonly changed = new vscode.EventEmitter<Settings>();
  /** Fires with the new settings when they differ from those in use. */
  readonly onDidChange = this.changed.event;
  private readonly subscription: vscode.Disposable;

  /** `keys`: the botBottle.* settings the extension declares, without the prefix. */
  constructor(
    private readonly log: SettingsLog,
    private readonly keys: readonly string[],
  ) {
    this.current = readSettings();
    this.describe('Settings in use');
    this.subscription = vscode.workspace.onDidChangeConfiguration(() => this.recheck('a configuration change'));
  }

  get settings(): Settings {
    return this.current;
  }

  /** Re-reads the settings; when they differ from those in use, says so and fires onDidChange. */
  recheck(occasion: string): Settings {
    const next = readSettings();
    if (JSON.stringify(next) === JSON.stringify(this.current)) return this.current;
    this.current = next;
    this.describe(`Settings changed (noticed on ${occasion})`);
    this.changed.fire(next);
    return next;
  }

  dispose(): void {
    this.subscription.dispose();
    this.changed.dispose();
  }

  private describe(heading: string): void {
    const config = vscode.workspace.getConfiguration(SECTION);
    const remote = vscode.env.remoteName;
    const set = this.keys.flatMap((key) => {
      const source = settingSource(config.inspect(key), remote);
      return source ? [`${SECTION}.${key} = ${JSON.stringify(config.get(key))} (${source})`] : [];
    });
    const listed = set.length ? set.join('; ') : 'none set';
    this.log.info(`${heading}: ${listed}; every other ${SECTION} setting is at its default.`);
    if (remote && !settingSource(config.inspect('paths.smolvm'), remote)) this.log.info(remoteWindowHint(remote));
  }
}

/** The most specific settings file that sets the key, as a user would name it; undefined: the default. */
function settingSource(inspected: ReturnType<vscode.WorkspaceConfiguration['inspect']>, remote: string | undefined): string | undefined {
  if (inspected?.workspaceFolderValue !== undefined) return 'folder settings';
  if (inspected?.workspaceValue !== undefined) return 'workspace settings';
  // In a remote window the extension host cannot tell the local User file from the Remote one.
  if (inspected?.globalValue !== undefined) return remote ? 'user or remote settings' : 'user settings';
  return undefined;
}

function remoteWindowHint(remote: string): string {
  return `This is a remote window (${remote}; code-server's always is one). VS Code applies ${SECTION}.paths.*, ` +
    `${SECTION}.stateDir and the other ${SECTION} settings, which are machine-overridable, only from the Remote settings ` +
    `(command "Preferences: Open Remote Settings (JSON)"; code-server keeps them in <user-data-dir>/Machine/settings.json) ` +
    'or the workspace, never from the User settings file.';
}

/** The keys (without `botBottle.`) of the settings an extension's package.json declares. */
export function declaredSettingKeys(packageJSON: unknown): string[] {
  const properties = (packageJSON as { contributes?: { configuration?: { properties?: Record<string, unknown> } } })
    .contributes?.configuration?.properties ?? {};
  return Object.keys(properties)
    .filter((key) => key.startsWith(`${SECTION}.`))
    .map((key) => key.slice(SECTION.length + 1));
}
