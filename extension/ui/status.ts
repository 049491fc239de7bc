/** The one status value the status bar shows. */
export type VmStatus = 'stopped' | 'baking' | 'booting' | 'ready' | 'error';

export interface AccelSummary {
  accel: string;
  isolation: 'hardware' | 'emulated';
}

export interface StatusView {
  text: string;
  tooltip: string;
  /** Shown with the warning background: the VM runs, but is not a security boundary. */
  warning: boolean;
  command: string;
}

const TCG_TOOLTIP = 'This VM is emulated (TCG), not hardware-isolated: QEMU does not treat TCG as a security boundary.';

/** The status bar item as a pure function of the status, the accelerator and a detail line. */
export function statusView(status: VmStatus, accel: AccelSummary | undefined, detail = ''): StatusView {
  const emulated = accel?.isolation === 'emulated';
  const suffix = accel ? ` (${accel.accel})` : '';
  const lines = (first: string) => [first, detail, emulated ? TCG_TOOLTIP : ''].filter(Boolean).join('\n\n');
  switch (status) {
    case 'stopped':
      return {
        text: `$(vm-outline) MicroVM${suffix}`,
        tooltip: lines('No VM is running. Click to open this folder in a MicroVM.'),
        warning: false,
        command: 'microvm.openFolder',
      };
    case 'baking':
      return {
        text: `$(sync~spin) MicroVM: baking${suffix}`,
        tooltip: lines('Preparing the image: root disk, warmup, snapshot.'),
        warning: false,
        command: 'microvm.showLog',
      };
    case 'booting':
      return {
        text: `$(sync~spin) MicroVM: booting${suffix}`,
        tooltip: lines('Starting the VM.'),
        warning: false,
        command: 'microvm.showLog',
      };
    case 'ready':
      return {
        text: `${emulated ? '$(warning)' : '$(vm-running)'} MicroVM: ready${suffix}`,
        tooltip: lines('The VM is running. Click for a new terminal in it.'),
        warning: emulated,
        command: 'microvm.newTerminal',
      };
    case 'error':
      return {
        text: `$(error) MicroVM: error${suffix}`,
        tooltip: lines('The VM failed. Click to show the log.'),
        warning: false,
        command: 'microvm.showLog',
      };
  }
}
