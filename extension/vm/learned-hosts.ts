import { describeLearnedProcesses, LearnedName } from '../../engine/index';
import { noticeValue } from '../ui/notice-text';

/**
 * A learned host as the approval list shows it (a QuickPick item: plain text, where VS Code
 * renders only `$(icon)`). Host and process names come from the guest: process names are
 * quoted and escaped by the engine (commLabel), and every value goes through noticeValue (one
 * line, no control or bidi characters, no link, icon or markup, cut); the processes are marked
 * as the guest's report.
 */
export interface LearnedHostItem {
  /** The host name as learned, for the approval; never shown. */
  name: string;
  label: string;
  description: string;
  detail: string;
}

export const GUEST_REPORT_NOTE = 'process names as the guest reports them';

/** One item per host: `registry.npmjs.org`, `12 connections`, `by npm (11 connections), node (1 connection) (...)`. */
export function learnedHostItems(learned: readonly LearnedName[]): LearnedHostItem[] {
  return learned.map((l) => {
    const processes = describeLearnedProcesses(l, noticeValue);
    return {
      name: l.name,
      label: noticeValue(l.name),
      description: l.count === 1 ? '1 connection' : `${l.count} connections`,
      detail: processes ? `by ${processes} (${GUEST_REPORT_NOTE})` : 'no process named (the guest did not say)',
    };
  });
}

/** The same for the log: `registry.npmjs.org — 12 connections, by npm (12 connections) (...)`. */
export function learnedHostLine(item: LearnedHostItem): string {
  return `${item.label} \u2014 ${item.description}, ${item.detail}`;
}
