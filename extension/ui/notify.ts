import * as vscode from 'vscode';
import { NoticeText } from './notice-text';

/*
 * The only place the extension shows notifications (a lint rule keeps it so). They take
 * NoticeText, never a plain string: VS Code renders links in notification messages, and guest
 * or config text must not become one. Button labels are the extension's own words.
 */

export function showError<T extends string>(text: NoticeText, ...actions: T[]): Thenable<T | undefined> {
  return vscode.window.showErrorMessage(text, ...actions);
}

export function showWarning<T extends string>(text: NoticeText, ...actions: T[]): Thenable<T | undefined> {
  return vscode.window.showWarningMessage(text, ...actions);
}

export function showInfo<T extends string>(text: NoticeText, ...actions: T[]): Thenable<T | undefined> {
  return vscode.window.showInformationMessage(text, ...actions);
}

/** A modal question. Its `detail` is shown as plain text (dialogs render no links); the caller cuts it. */
export function askModal<T extends string>(text: NoticeText, detail: string, ...actions: T[]): Thenable<T | undefined> {
  return vscode.window.showWarningMessage(text, { modal: true, detail }, ...actions);
}
