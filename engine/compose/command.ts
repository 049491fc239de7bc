/**
 * A service's main process as docker combines it with its image's: the service's entrypoint
 * (else the image's), then the service's command, else the image's command unless the service
 * set its own entrypoint (a new entrypoint drops the image's command). Empty: nothing to run.
 */
export function mainArgv(
  service: { entrypoint?: string[] | undefined; command?: string[] | undefined },
  image: { entrypoint: string[]; cmd: string[] },
): string[] {
  const entrypoint = service.entrypoint ?? image.entrypoint;
  const command = service.command ?? (service.entrypoint ? [] : image.cmd);
  return [...entrypoint, ...command];
}
