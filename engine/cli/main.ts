import { engineInfo } from '../info';
import { MicrovmError } from '../errors';
import { buildCommand } from './build';
import { imagesCommand, pruneCommand, pullCommand } from './images';
import { readConfigurationCommand } from './read-configuration';
import { logsCommand, portsCommand } from './workspace-services';
import { netLogCommand, netPolicyCommand } from './net-policy';
import { runCommand } from './run';
import { shellCommand } from './shell';
import { workspaceTypesCommand } from './workspace-types';
import { superviseCommand } from './supervise';
import { execCommand } from './workspace-exec';
import { downCommand, lsCommand, rmCommand } from './workspace-manage';
import { upCommand } from './workspace-up';
import { interruptible } from './interrupt';
import { plainLine } from './terminal-text';

const USAGE = `usage: microvm <command> [options]

commands:
  run [options] [--] ARGV...   run a command in a fresh microVM; stdio is streamed and
                               the exit code is the guest command's
  shell [options]              an interactive shell in a fresh microVM
  pull [--platform P] REF      pull an image (registry ref, OCI layout, OCI archive or
                               docker save tarball) and build its root disk; progress on stderr;
                               P (linux/amd64, linux/arm64, ...) picks the manifest of a
                               multi-platform image (default: this host's platform)
  images                       list the stored images
  prune                        remove blobs and root disks that no stored image uses
  info                         the accelerator, isolation, QEMU, kernel and agent, as JSON
  read-configuration --workspace-folder DIR [--config PATH] [--include-merged-configuration]
                     [--allow-local-env NAME]...
                               the folder's devcontainer.json as understood here, as JSON:
                               configuration, mergedConfiguration, workspace and every problem
  build --workspace-folder DIR [--config PATH] [--image REF] [--accept-config-changes]
        [--allow-local-env NAME]...
                               the folder's image as opening it makes it (Dockerfile, features,
                               root disk, snapshot); prints {"outcome","imageName","imageDigest"}
  net-policy --workspace-folder DIR [--write] [--json]
                               the host names the folder reached with network learn, and
                               those approved for network allowlist; --write approves them
  net-log --workspace-folder DIR [--json]
                               every connection its VMs asked the egress proxy for
  run --workspace-folder DIR [...] [-- CMD...]
                               open the folder as the extension does (image, features, mounts,
                               volumes, lifecycle hooks), then CMD as the remote user in the
                               workspace folder, or an interactive shell; the VM stops after
  types --workspace-folder DIR [--image REF] [--accept-config-changes]
                               open the folder, wait for its hooks, copy the VM's node_modules
                               types (*.d.ts, package.json cut to resolution fields) into the
                               folder's node_modules for host TypeScript; prints
                               {"outcome","projections","failures"}; the VM stops after

  up --workspace-folder DIR [--config PATH] [--image REF] [--accept-config-changes]
     [--idle-stop-minutes N]
                               start the folder's VM under its supervisor (or attach to the
                               running one) and wait for its hooks; prints one JSON line
                               {"outcome","containerId","remoteUser","remoteWorkspaceFolder"}, and for
                               a compose workspace "services" and "serviceForwards" [{service,port,localAddr}]
                               (errors: {"outcome":"error","message","code"}, exit status 1);
                               the VM keeps running (windows and CLIs attach to it) until down,
                               or until N minutes pass with nothing attached (default 30, 0 = never)
  exec --workspace-folder DIR [--config PATH] [--] CMD...
                               CMD in the running workspace VM as remoteUser, in the workspace
                               folder, with remoteEnv; a pty when stdin is a terminal; signals
                               and resizes forwarded; the exit status is CMD's
  down --workspace-folder DIR  stop the workspace VM and its supervisor
  logs --workspace-folder DIR SERVICE [--tail N]
                               what a compose service printed (kept after it stops)
  ports --workspace-folder DIR [--json]
                               the running workspace's forwards: service, port, local address
  ls [--json]                  every workspace: folder, id, state (running/suspended/stopped),
                               supervisor pid, forwarded ports; --json adds the record's
                               digests, hooks done, disks and last suspend
  rm --workspace-folder DIR [--force]
                               forget the workspace: its record, volumes and container disk
                               (a running one only with --force, which stops it first)

options (read-configuration, build, up, exec, run --workspace-folder, types):
  --config PATH    the devcontainer.json to use when the folder has several (relative to the
                   current directory; a file named devcontainer.json or .devcontainer.json
                   inside the folder); default: .devcontainer/devcontainer.json, else
                   .devcontainer.json, else the first .devcontainer/NAME/devcontainer.json.
                   A folder has one VM at a time: up or exec with another configuration than
                   the running VM's is refused (E_WORKSPACE_CONFIG); down first

options (build, up, run --workspace-folder, types):
  --image REF      the image for a folder without a devcontainer.json (default: the image
                   for its language, see below, else the embedded default image)
  --accept-config-changes
                   open even though devcontainer.json changed since it was last accepted in
                   ways that take more from this machine (a VM can write the folder)
  --network MODE   outbound (default), none, allowlist (only the presets of the folder's
                   languages, --allow names and those net-policy approved) or learn
  --allow PATTERN  a host name or *.domain network allowlist may reach (repeatable)
  --trust-host-certificates auto|off|FILE
                   the CAs of this machine the VM trusts (TLS-inspecting proxies, private
                   registries): auto (default) = those added to the system store and
                   NODE_EXTRA_CA_CERTS's file; off; or PEM files (repeatable)
  --no-type-projection
                   (run) leave the folder's node_modules alone: no projection of the VM's
                   package types onto the host

options (run, shell):
  --image REF      a registry reference (debian:12, localhost:5000/team/app:1), an OCI
                   layout directory, an OCI archive or a docker save tarball (default:
                   the embedded default image)
  --platform P     the platform of a multi-platform image to run: linux/amd64, linux/arm64,
                   linux/arm/v7 (default: this host's); an image without it is refused
                   with the list of the platforms it has
  --memory MIB     guest memory in MiB (default 256)
  --cpus N         virtual CPUs (default 1)
  --env NAME=VALUE set a variable in the guest (repeatable)
  --publish H:G    forward 127.0.0.1:H on the host to guest port G (repeatable; H 0 = any free port)
  --network MODE   outbound (default: NAT with DNS, no access to host services), none,
                   allowlist (only names given with --allow, through the host's egress
                   proxy: HTTP(S)_PROXY in the guest; no other traffic, no DNS) or learn
                   (every public name through the proxy, each one logged)
  --allow PATTERN  a host name (registry.npmjs.org) or *.domain the VM may reach with
                   --network allowlist (repeatable)
  --cwd DIR        working directory in the guest
  --mount H:G[:ro][:symlinks=P]  share host folder H at guest path G over virtio-fs
                   (repeatable; P = opaque (default), deny or follow; .git, .vscode and
                   .devcontainer stay read-only to the guest)
  --volume N:G[:MIB]  persistent ext4 volume N (under $MICROVM_HOME/volumes) at G
                   (repeatable; default 1024 MiB; grown when MIB grows)

environment:
  MICROVM_HOME     cache and state directory (default ~/.cache/microvm)
  MICROVM_ACCEL    force the accelerator: kvm, tcg or hvf
  MICROVM_BACKEND  qemu (default on Linux) or vfkit (macOS only, experimental: cannot
                   boot workloads yet; see the README's "macOS hosts")
  MICROVM_INSECURE_REGISTRIES  host:port,... that may be pulled from over plain HTTP
                   (loopback registries always may)
  MICROVM_REGISTRY_MIRRORS  registry=URL,... mirrors tried before a registry, in order
                   (docker.io=http://127.0.0.1:5000,ghcr.io=https://mirror.example/ghcr)

a folder without a devcontainer.json opens on its language's image: package.json node:22-bookworm,
pyproject.toml/requirements.txt python:3.12-bookworm, go.mod golang:1.23-bookworm, Cargo.toml
rust:1-bookworm, Gemfile ruby:3.3-bookworm, pom.xml/build.gradle eclipse-temurin:21-jdk,
*.csproj mcr.microsoft.com/dotnet/sdk:8.0; the embedded default image when none applies or
the image cannot be pulled.
  DOCKER_CONFIG    directory of the config.json whose "auths" hold registry credentials

exit status: the guest command's; 128+N when a signal N ended it; 125 when the
engine failed (the message names the error code).`;

/** Exit status for a failure of the engine itself, as docker run uses. */
const ENGINE_FAILURE = 125;

async function main(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  switch (command) {
    case 'run':
      return interruptible((signal) => runCommand(rest, signal));
    case 'shell':
      return shellCommand(rest);
    case 'pull':
      return interruptible((signal) => pullCommand(rest, signal));
    case 'images':
      return imagesCommand(rest);
    case 'prune':
      return pruneCommand(rest);
    case 'read-configuration':
      return readConfigurationCommand(rest);
    case 'build':
      return interruptible((signal) => buildCommand(rest, signal));
    case 'net-policy':
      return netPolicyCommand(rest);
    case 'net-log':
      return netLogCommand(rest);
    case 'types':
      return workspaceTypesCommand(rest);
    case 'up':
      return interruptible((signal) => upCommand(rest, signal));
    case 'exec':
      return execCommand(rest);
    case 'down':
      return downCommand(rest);
    case 'ls':
      return lsCommand(rest);
    case 'logs':
      return logsCommand(rest);
    case 'ports':
      return portsCommand(rest);
    case 'rm':
      return rmCommand(rest);
    case '__supervise':
      return superviseCommand(rest);
    case 'info':
      process.stdout.write(JSON.stringify(await engineInfo(), null, 2) + '\n');
      return 0;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE + '\n');
      return command === undefined ? 2 : 0;
    default:
      throw new MicrovmError('E_BAD_OPTION', `unknown command ${JSON.stringify(command)}; see \`microvm --help\``);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    // A message may quote the repository or the guest: its control characters are escaped (line breaks kept).
    const shown = (text: string) => text.split('\n').map(plainLine).join('\n');
    if (err instanceof MicrovmError) process.stderr.write(`microvm: error [${err.code}]: ${shown(err.message)}\n`);
    else process.stderr.write(`microvm: internal error: ${shown((err as Error)?.stack ?? String(err))}\n`);
    process.exitCode = ENGINE_FAILURE;
  },
);
