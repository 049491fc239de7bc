import type { Severity } from '../devcontainer/problems';

/**
 * Service keys the workspace does not honour, each with what the user gets instead. Every
 * service is its own microVM: there is no shared kernel, no Docker network and no host device
 * to hand out, so keys that tune those have nothing to act on. None is dropped silently.
 */
export const UNHONOURED: Record<string, { severity: Severity; consequence: string }> = {
  networks: {
    severity: 'info',
    consequence: 'ignored: services reach each other by service name on declared ports, whatever network they name',
  },
  privileged: {
    severity: 'warning',
    consequence: 'ignored: the service runs as root in its own VM; it gets no host devices or capabilities',
  },
  devices: { severity: 'warning', consequence: 'ignored: host devices are never passed into a VM' },
  cap_add: { severity: 'info', consequence: 'ignored: the service runs as root in its own VM' },
  cap_drop: { severity: 'info', consequence: 'ignored: the service runs as root in its own VM' },
  security_opt: { severity: 'info', consequence: 'ignored: the VM is the security boundary' },
  pid: { severity: 'warning', consequence: "ignored: a VM cannot share the host's or another service's processes" },
  ipc: { severity: 'warning', consequence: 'ignored: a VM cannot share IPC with the host or another service' },
  userns_mode: { severity: 'info', consequence: 'ignored: the VM is the boundary' },
  cgroup_parent: { severity: 'info', consequence: 'ignored' },
  sysctls: { severity: 'warning', consequence: 'not applied: set them in a command of the service instead' },
  ulimits: { severity: 'info', consequence: 'not applied' },
  extra_hosts: {
    severity: 'warning',
    consequence: "not added: only service names resolve between the workspace's VMs",
  },
  dns: { severity: 'info', consequence: "ignored: the VM uses the workspace's resolver" },
  dns_search: { severity: 'info', consequence: 'ignored' },
  links: { severity: 'info', consequence: 'ignored: services reach each other by name' },
  external_links: { severity: 'warning', consequence: 'ignored: containers outside the project are not reachable' },
  volumes_from: {
    severity: 'warning',
    consequence: "not mounted: a VM cannot share another service's volumes this way; name a volume in both",
  },
  secrets: {
    severity: 'warning',
    consequence: 'not provided: put the value in an env file in the folder if the service may see it',
  },
  configs: { severity: 'warning', consequence: 'not provided: mount a file from the folder instead' },
  gpus: { severity: 'warning', consequence: 'ignored: the VM has no GPU' },
  runtime: { severity: 'info', consequence: 'ignored: the service runs as a microVM' },
  isolation: { severity: 'info', consequence: 'ignored: the service runs as a microVM' },
  restart: { severity: 'info', consequence: 'not applied: a service that stops is reported with its last log lines' },
  container_name: { severity: 'info', consequence: 'ignored: the service is reached by its service name' },
  hostname: { severity: 'info', consequence: 'ignored: the service is reached by its service name' },
  domainname: { severity: 'info', consequence: 'ignored' },
  labels: { severity: 'info', consequence: 'ignored' },
  annotations: { severity: 'info', consequence: 'ignored' },
  logging: { severity: 'info', consequence: "ignored: each service's output goes to its own log" },
  stdin_open: { severity: 'info', consequence: 'ignored' },
  tty: { severity: 'info', consequence: 'ignored' },
  init: { severity: 'info', consequence: "ignored: the VM's init reaps processes" },
  stop_signal: { severity: 'info', consequence: 'ignored: stopping a service stops its VM' },
  stop_grace_period: { severity: 'info', consequence: 'ignored: stopping a service stops its VM' },
  pull_policy: { severity: 'info', consequence: 'images are pulled when missing' },
  shm_size: { severity: 'info', consequence: 'ignored: /dev/shm is sized by the VM' },
  read_only: { severity: 'info', consequence: 'ignored' },
  oom_score_adj: { severity: 'info', consequence: 'ignored' },
  oom_kill_disable: { severity: 'info', consequence: 'ignored' },
  mac_address: { severity: 'info', consequence: 'ignored' },
  group_add: { severity: 'info', consequence: 'ignored' },
  storage_opt: { severity: 'info', consequence: 'ignored' },
  scale: { severity: 'warning', consequence: 'one VM per service' },
  develop: { severity: 'info', consequence: 'ignored: the workspace folder is live in the workspace VM' },
  attach: { severity: 'info', consequence: 'ignored' },
  label_file: { severity: 'info', consequence: 'ignored' },
  blkio_config: { severity: 'info', consequence: 'ignored' },
  cpu_shares: { severity: 'info', consequence: 'ignored' },
  cpu_quota: { severity: 'info', consequence: 'ignored' },
  cpu_period: { severity: 'info', consequence: 'ignored' },
  cpuset: { severity: 'info', consequence: 'ignored' },
  mem_reservation: { severity: 'info', consequence: 'ignored' },
  memswap_limit: { severity: 'info', consequence: 'ignored' },
  mem_swappiness: { severity: 'info', consequence: 'ignored' },
  pids_limit: { severity: 'info', consequence: 'ignored' },
};

/** Top-level keys besides services, volumes and name. */
export const UNHONOURED_TOP: Record<string, { severity: Severity; consequence: string }> = {
  version: { severity: 'info', consequence: 'ignored, as docker compose ignores it' },
  networks: { severity: 'info', consequence: 'ignored: services reach each other by service name on declared ports' },
  secrets: { severity: 'warning', consequence: 'not provided to any service' },
  configs: { severity: 'warning', consequence: 'not provided to any service' },
};
