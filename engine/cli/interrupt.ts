/** Exit statuses as a shell reports a process a signal ended: 128 + its number. */
const INTERRUPT_STATUS: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 130, SIGTERM: 143 };

/**
 * Runs a command with Ctrl-C (SIGINT) and SIGTERM turned into an abort of its signal: the
 * pull, build, bake, boot or guest process under way stops, what it started is cleaned up,
 * and the command exits 130 (143 for SIGTERM). A second Ctrl-C is Node's own: it ends the
 * process at once (QEMU follows through the launcher, temporary files are reaped next time).
 */
export async function interruptible(command: (signal: AbortSignal) => Promise<number>): Promise<number> {
  const controller = new AbortController();
  let status = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    stopListening();
    status = INTERRUPT_STATUS[signal] ?? 130;
    process.stderr.write(
      `\nmicrovm: ${signal === 'SIGINT' ? 'interrupted' : 'terminated'}; stopping what was started\n`,
    );
    controller.abort(new Error(`the command was ended by ${signal}`));
  };
  const stopListening = (): void => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const code = await command(controller.signal);
    return controller.signal.aborted ? status : code;
  } catch (err) {
    // After the abort, whatever the stopped work failed with (E_ABORTED, a cancelled session) is the interrupt.
    if (controller.signal.aborted) return status;
    throw err;
  } finally {
    stopListening();
  }
}
