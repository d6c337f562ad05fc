/** Typed access to the botBottle.* settings, re-read whenever they change. */
import * as vscode from 'vscode';
import { COMPRESSIONS, IMAGE_BUILDER_CHOICES } from '../core/freeze/context';
import type { CoreSettings } from '../core/services';
import type { ToolName } from '../core/tools/which';

export interface Settings extends CoreSettings {
  /** Seconds between refreshes while the view is visible; 0 turns the timer off. */
  refreshInterval: number;
  statusBarEnabled: boolean;
  /** The shell "Open Shell" starts in a bottle. */
  shell: string;
}

const SECTION = 'botBottle';

export function readSettings(): Settings {
  const config = vscode.workspace.getConfiguration(SECTION);
  const path = (tool: ToolName) => config.get<string>(`paths.${tool}`, '').trim();
  return {
    paths: { smolvm: path('smolvm'), docker: path('docker'), crane: path('crane'), skopeo: path('skopeo'), registry: path('registry') },
    stateDir: config.get<string>('stateDir', '').trim(),
    machinePrefix: config.get<string>('machinePrefix', 'bot-bottle-').trim() || 'bot-bottle-',
    refreshInterval: Math.max(0, config.get<number>('refreshInterval', 10)),
    statusBarEnabled: config.get<boolean>('statusBar.enabled', true),
    shell: config.get<string>('shell', '/bin/bash').trim() || '/bin/bash',
    pullHost: config.get<string>('registry.pullHost', '127.0.0.1').trim() || '127.0.0.1',
    imageBuilder: oneOf(IMAGE_BUILDER_CHOICES, config.get<string>('freeze.imageBuilder'), 'auto'),
    compression: oneOf(COMPRESSIONS, config.get<string>('freeze.compression'), 'gzip'),
  };
}

/** A hand-edited settings.json can hold anything; an unknown value falls back to the default. */
function oneOf<T extends string>(allowed: readonly T[], value: string | undefined, fallback: T): T {
  return allowed.find((candidate) => candidate === value) ?? fallback;
}

export function onSettingsChanged(listener: (settings: Settings) => void): vscode.Disposable {
  return vscode.workspace.onDidChangeConfiguration((event) => {
    if (event.affectsConfiguration(SECTION)) listener(readSettings());
  });
}

/** Opens the Settings editor at one setting, for "set the path" buttons. */
export function openSetting(key: string): Thenable<unknown> {
  return vscode.commands.executeCommand('workbench.action.openSettings', `${SECTION}.${key}`);
}
