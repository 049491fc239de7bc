import * as fs from 'node:fs';
import * as path from 'node:path';
import { MicrovmError } from '../errors';

/** The options every workspace verb takes (`read-configuration`, ...), as the reference CLI names them. */
export interface WorkspaceFlags {
  folder: string;
  /** Host variables `${localEnv:NAME}` may pass into the VM. */
  allowLocalEnv: string[];
  includeMerged: boolean;
}

export function parseWorkspaceFlags(args: string[], verb: string): WorkspaceFlags {
  const flags: WorkspaceFlags = { folder: process.cwd(), allowLocalEnv: [], includeMerged: false };
  for (let i = 0; i < args.length; i++) {
    const [name, inline] = args[i].includes('=') ? [args[i].slice(0, args[i].indexOf('=')), args[i].slice(args[i].indexOf('=') + 1)] : [args[i], undefined];
    const value = () => {
      const v = inline ?? args[++i];
      if (v === undefined) throw bad(`${name} needs a value`, verb);
      return v;
    };
    if (name === '--workspace-folder') flags.folder = path.resolve(value());
    else if (name === '--allow-local-env') flags.allowLocalEnv.push(value());
    else if (name === '--include-merged-configuration') flags.includeMerged = true;
    else throw bad(`unknown option ${JSON.stringify(name)}`, verb);
  }
  if (!fs.statSync(flags.folder, { throwIfNoEntry: false })?.isDirectory()) {
    throw new MicrovmError('E_BAD_OPTION', `--workspace-folder ${JSON.stringify(flags.folder)} is not a directory`);
  }
  return flags;
}

function bad(message: string, verb: string): MicrovmError {
  return new MicrovmError('E_BAD_OPTION', `microvm ${verb}: ${message}; see \`microvm --help\``);
}
