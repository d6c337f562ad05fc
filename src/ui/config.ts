/** Typed access to the botBottle.* settings, re-read whenever they change. */
import * as vscode from 'vscode';
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
  };
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
