import * as fs from 'node:fs';
import * as path from 'node:path';
import { listConfigFiles } from '../devcontainer/locate';
import { MicrovmError } from '../errors';
import { openWorkspace, recordFile } from '../workspace/record';
import { SupervisorClient } from '../supervisor/client';
import { readServiceLog } from '../workspace/services/log-file';
import { composeOf } from '../workspace/prepare';
import { resolveConfig } from '../devcontainer/resolve';
import { formatTable } from './table';
import { TerminalFilter } from './terminal-text';
import { parseWorkspaceFlags } from './workspace-args';

/**
 * `microvm logs --workspace-folder DIR SERVICE [--tail N]`: what a compose service printed
 * (kept beside the workspace record, also after the workspace stopped). The text is the
 * guest's: it goes to a file or pipe as bytes, to a terminal with its control sequences
 * escaped but colours (a service could otherwise set the title, write the clipboard, answer
 * queries as typed input), and never into a UI as markup.
 */
export async function logsCommand(args: string[]): Promise<number> {
  const { rest, tail } = takeTail(args, 'logs');
  const flags = parseWorkspaceFlags(rest, 'logs', { bareArgv: true, argv: true });
  const [service, ...extra] = flags.argv;
  const services = composeServices(flags.folder, flags.allowLocalEnv);
  if (!service || extra.length > 0) {
    throw new MicrovmError(
      'E_BAD_OPTION',
      `microvm logs: name one service${services.length > 0 ? ` (${services.join(', ')})` : ''}, e.g. \`microvm logs --workspace-folder DIR db\``,
    );
  }
  if (services.length > 0 && !services.includes(service)) {
    throw new MicrovmError(
      'E_BAD_OPTION',
      `microvm logs: the compose project of ${flags.folder} has no service ${JSON.stringify(service)} (it has ${services.join(', ')})`,
    );
  }
  const text = readServiceLog(flags.folder, service, tail);
  if (!process.stdout.isTTY) process.stdout.write(text);
  else {
    const filter = new TerminalFilter();
    process.stdout.write(filter.write(text) + filter.end());
  }
  return 0;
}

/**
 * `microvm ports --workspace-folder DIR [--json]`: the running workspace's forwards: its own
 * (`service` is the workspace's service, or "workspace") and its services' (forwardPorts `"db:5432"`).
 */
export async function portsCommand(args: string[]): Promise<number> {
  const json = args.includes('--json');
  const flags = parseWorkspaceFlags(
    args.filter((a) => a !== '--json'),
    'ports',
    {},
  );
  const client = await SupervisorClient.connect(flags.folder, { kind: 'cli', start: false });
  if (!client) {
    process.stderr.write(
      `microvm: the workspace VM of ${flags.folder} is not running; start it with microvm up --workspace-folder ${JSON.stringify(flags.folder)}\n`,
    );
    return 1;
  }
  let rows: Array<{ service: string; port: number; localAddr: string }>;
  try {
    const status = await client.status();
    const own = status.primaryService ?? 'workspace';
    rows = [
      ...status.forwards.map((f) => ({ service: own, port: f.guestPort, localAddr: `127.0.0.1:${f.hostPort}` })),
      ...status.serviceForwards,
    ];
  } finally {
    client.close();
  }
  if (json) {
    process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    return 0;
  }
  const table = [['SERVICE', 'PORT', 'LOCAL ADDRESS'], ...rows.map((r) => [r.service, String(r.port), r.localAddr])];
  process.stdout.write(formatTable(table));
  return 0;
}

/** The services of the folder's compose project, or none (not a compose workspace, or its files do not read). */
function composeServices(folder: string, allowLocalEnv: string[]): string[] {
  const configFile = lastConfigFile(folder);
  const loaded = composeOf(
    resolveConfig({ folder, allowLocalEnv, ...(configFile === undefined ? {} : { configFile }) }),
    { allowLocalEnv },
  );
  return loaded?.project ? Object.keys(loaded.project.services) : [];
}

/** The configuration the folder's container was last made from (a choice), while the folder has it; else the default. */
function lastConfigFile(folder: string): string | undefined {
  if (!fs.existsSync(recordFile(folder))) return undefined;
  const file = openWorkspace(folder).container?.configFile;
  return file !== undefined && listConfigFiles(folder).includes(file) ? path.join(folder, file) : undefined;
}

function takeTail(args: string[], verb: string): { rest: string[]; tail?: number } {
  const i = args.findIndex((a) => a === '--tail' || a.startsWith('--tail='));
  if (i < 0) return { rest: args };
  const inline = args[i]?.includes('=') ?? false;
  const text = inline ? args[i]?.slice('--tail='.length) : args[i + 1];
  if (text === undefined)
    throw new MicrovmError('E_BAD_OPTION', `microvm ${verb}: --tail needs a number of lines, e.g. --tail 50`);
  const tail = Number(text);
  if (!Number.isInteger(tail) || tail < 1)
    throw new MicrovmError(
      'E_BAD_OPTION',
      `microvm ${verb}: --tail needs a whole number of lines, got ${JSON.stringify(text)}`,
    );
  return { rest: [...args.slice(0, i), ...args.slice(i + (inline ? 1 : 2))], tail };
}
