import * as vscode from 'vscode';

/**
 * One output channel per compose service ("MicroVM: service db"), made when the service
 * first prints. The text is the guest's own: an output channel shows it as plain text.
 */
export class ServiceChannels implements vscode.Disposable {
  private readonly channels = new Map<string, vscode.OutputChannel>();

  append(service: string, text: string): void {
    this.channel(service).append(text);
  }

  show(service: string): void {
    this.channel(service).show(true);
  }

  dispose(): void {
    for (const channel of this.channels.values()) channel.dispose();
    this.channels.clear();
  }

  private channel(service: string): vscode.OutputChannel {
    let channel = this.channels.get(service);
    if (!channel) {
      channel = vscode.window.createOutputChannel(`MicroVM: service ${service.replace(/[^\w.-]/g, '_')}`);
      this.channels.set(service, channel);
    }
    return channel;
  }
}
