import * as vscode from 'vscode';
import { parseDevcontainer, ParsedDevcontainer } from './devcontainer';

const CANDIDATES = ['.devcontainer/devcontainer.json', '.devcontainer.json'];

/** Reads the folder's devcontainer.json, if it has one. Parse errors propagate (DevcontainerError). */
export async function loadDevcontainer(folder: vscode.Uri): Promise<(ParsedDevcontainer & { file: string }) | undefined> {
  for (const candidate of CANDIDATES) {
    const uri = vscode.Uri.joinPath(folder, candidate);
    let bytes: Uint8Array;
    try {
      bytes = await vscode.workspace.fs.readFile(uri);
    } catch {
      continue;
    }
    return { file: candidate, ...parseDevcontainer(candidate, new TextDecoder().decode(bytes)) };
  }
  return undefined;
}
