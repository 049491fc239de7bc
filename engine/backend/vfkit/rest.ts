import * as http from 'node:http';
import { z } from 'zod';
import { MicrovmError, shown } from '../../errors';

/** Virtualization.framework's VM states as vfkit's REST service names them (`GET /vm/state`). */
export type VfkitRunState =
  | 'running'
  | 'starting'
  | 'paused'
  | 'pausing'
  | 'resuming'
  | 'stopping'
  | 'stopped'
  | 'saving'
  | 'restoring'
  | 'error';

/** The state changes `POST /vm/state` takes: Stop asks the guest, HardStop ends it. */
export type VfkitStateChange = 'Stop' | 'HardStop' | 'Pause' | 'Resume';

const stateSchema = z.object({ state: z.string().max(64), canStop: z.boolean().optional() }).passthrough();

/** How long one REST call may take (vfkit answers from memory). */
const REST_TIMEOUT_MS = 5000;

/** `VirtualMachineStateRunning` -> 'running'; an unknown name is refused. */
export function parseRunState(name: string): VfkitRunState {
  const known: Record<string, VfkitRunState> = {
    VirtualMachineStateRunning: 'running',
    VirtualMachineStateStarting: 'starting',
    VirtualMachineStatePaused: 'paused',
    VirtualMachineStatePausing: 'pausing',
    VirtualMachineStateResuming: 'resuming',
    VirtualMachineStateStopping: 'stopping',
    VirtualMachineStateStopped: 'stopped',
    VirtualMachineStateSaving: 'saving',
    VirtualMachineStateRestoring: 'restoring',
    VirtualMachineStateError: 'error',
  };
  const state = known[name];
  if (!state)
    throw new MicrovmError(
      'E_BACKEND_UNAVAILABLE',
      `vfkit reported the unknown VM state ${shown(name)}; update vfkit or the engine`,
    );
  return state;
}

/** The error a call on a VM in `state` fails with; undefined while the VM runs or is on its way there. */
export function runStateError(state: VfkitRunState, vmId: string): MicrovmError | undefined {
  switch (state) {
    case 'stopped':
    case 'stopping':
      return new MicrovmError('E_VM_EXITED', `VM ${vmId} has stopped (vfkit reports ${state})`);
    case 'error':
      return new MicrovmError(
        'E_VM_EXITED',
        `the Virtualization.framework put VM ${vmId} in its error state; its console log in the state directory says why`,
      );
    case 'paused':
    case 'pausing':
      return new MicrovmError(
        'E_VM_EXITED',
        `VM ${vmId} is paused (vfkit reports ${state}); nothing here pauses it, so something else did`,
      );
    default:
      return undefined;
  }
}

/** vfkit's REST service on a Unix socket (`--restful-uri unix://PATH`). */
export class VfkitRest {
  constructor(private readonly socketPath: string) {}

  async state(): Promise<VfkitRunState> {
    const body = await this.request('GET', '/vm/state');
    const parsed = stateSchema.safeParse(parseJson(body));
    if (!parsed.success)
      throw new MicrovmError(
        'E_BACKEND_UNAVAILABLE',
        `vfkit's /vm/state answered ${shown(body)}, not a state; update vfkit`,
      );
    return parseRunState(parsed.data.state);
  }

  async change(state: VfkitStateChange): Promise<void> {
    await this.request('POST', '/vm/state', JSON.stringify({ state }));
  }

  private request(method: 'GET' | 'POST', route: string, body?: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          socketPath: this.socketPath,
          path: route,
          method,
          timeout: REST_TIMEOUT_MS,
          headers: body ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } : {},
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size <= 64 * 1024) chunks.push(chunk);
          });
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            if (res.statusCode === 200) resolve(text);
            else
              reject(
                new MicrovmError(
                  'E_BACKEND_UNAVAILABLE',
                  `vfkit refused ${method} ${route} with HTTP ${res.statusCode} (${shown(text.trim())})`,
                ),
              );
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer within ${REST_TIMEOUT_MS} ms`)));
      req.on('error', (err: NodeJS.ErrnoException) =>
        reject(
          new MicrovmError(
            'E_VM_EXITED',
            `vfkit's REST socket ${this.socketPath} does not answer (${err.code ?? err.message}): vfkit has exited or hangs`,
            { cause: err },
          ),
        ),
      );
      req.end(body);
    });
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
