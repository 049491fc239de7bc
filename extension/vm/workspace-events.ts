import { errorFromWire, type SupervisorEvent } from '../../engine/index';
import type { Ctx } from '../context';
import { portNotices } from '../ports/notices';
import { notice } from '../ui/notice-text';
import { showError, showWarning } from '../ui/notify';
import { ServiceChannels } from '../ui/service-channels';
import type { SupervisedWorkspace } from './supervised';

/**
 * The supervisor's events as this window renders them: the log, the lifecycle terminal, the
 * status bar, the Ports view and notifications. `onProgress` receives start steps while a
 * progress notification is up; `onExited` handles the VM ending on its own.
 */
export function renderEvents(
  ctx: Ctx,
  workspace: SupervisedWorkspace,
  handlers: { onProgress(step: string): void; onExited(error: Error): void },
): void {
  const notices = portNotices();
  const services = new ServiceChannels();
  workspace.client.sameHostPort = (port) => notices.confirmSameHostPort?.(port) ?? Promise.resolve(false);
  workspace.client.onEvent((event: SupervisorEvent) => {
    switch (event.type) {
      case 'log':
        ctx.log.info(event.line);
        return;
      case 'progress':
        handlers.onProgress(event.step);
        ctx.log.info(event.step);
        return;
      case 'baking':
        ctx.setStatus('baking');
        return;
      case 'booting':
        ctx.setStatus('booting');
        return;
      case 'portsChanged':
        void workspace.refreshPorts().then(
          () => ctx.refreshPorts(),
          () => undefined,
        );
        return;
      case 'exited':
        handlers.onExited(errorFromWire(event.message, event));
        return;
      case 'output':
        ctx.lifecycle.write(event.label, Buffer.from(event.data, 'base64').toString('utf8'));
        return;
      case 'hookStarted':
        ctx.lifecycle.note(`> ${event.description}`);
        return;
      case 'hookFinished':
        ctx.lifecycle.note(event.description);
        return;
      case 'hookFailed':
        ctx.log.error(event.description);
        ctx.lifecycle.show();
        void showError(
          notice`MicroVM: a lifecycle command failed; the VM keeps running (its output is in the "MicroVM: lifecycle" terminal).`,
          'Retry',
          'Show Log',
        ).then((choice) => {
          if (choice === 'Show Log') ctx.log.show();
          if (choice === 'Retry')
            void workspace.retryHook(event.retryId).catch((err: Error) => ctx.log.error(`retry: ${err.message}`));
        });
        return;
      case 'portForwarded':
        notices.portForwarded?.(event.port, event.action);
        return;
      case 'portsSummary':
        notices.portsSummary?.(event.ports);
        return;
      case 'serviceOutput':
        services.append(event.service, Buffer.from(event.data, 'base64').toString('utf8'));
        return;
      case 'serviceCrashed':
        ctx.log.error(event.message);
        void showWarning(
          notice`MicroVM: compose service ${event.service} stopped; its last lines are in the MicroVM log.`,
          'Show Output',
        ).then((choice) => choice && services.show(event.service));
        return;
      case 'hostDiskFull':
        ctx.log.warn(event.message);
        void showWarning(
          notice`MicroVM: the host disk holding a VM volume is full and the VM is paused; free some space, then Resume (details in the MicroVM log).`,
          'Resume',
        ).then((choice) => choice && workspace.resume().catch((err: Error) => ctx.log.error(`resume: ${err.message}`)));
        return;
      default:
    }
  });
  workspace.client.onClose(() => {
    services.dispose();
    if (ctx.session !== workspace) return;
    ctx.session = undefined;
    ctx.refreshPorts();
    ctx.setStatus('stopped');
    ctx.log.info('the workspace supervisor went away: the VM is stopped');
  });
}
