import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { buildBundles, Bundles, CliResult, privateHome, realHome, runCli } from './cli-helpers';

/** The `microvm` CLI as users run it: a real process, real VMs (one per `run`), real exit codes. */
let bundles: Bundles;
const tempDirs: string[] = [];

before(async () => {
  bundles = await buildBundles();
  tempDirs.push(bundles.dir);
});

after(() => {
  for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
});

const cli = (args: string[], options?: Parameters<typeof runCli>[2]) => runCli(bundles.cli, args, options);
const REPO = path.resolve(__dirname, '..', '..');

/** Runs a program to its end; its exit code and output. */
function runCommand(
  program: string,
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(program, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** An engine failure: exit 125 and one `microvm: error [CODE]: ...` line naming what failed. */
function assertEngineError(result: CliResult, code: string, ...mentions: Array<string | RegExp>): void {
  assert.equal(result.code, 125, `expected exit 125, got ${result.code}; stderr: ${result.stderr}`);
  const line = result.stderr.split('\n').find((l) => l.startsWith('microvm: error ['));
  assert.ok(line, `no "microvm: error [...]" line in stderr: ${result.stderr}`);
  assert.ok(line.startsWith(`microvm: error [${code}]: `), `expected ${code}: ${line}`);
  for (const mention of mentions) {
    if (typeof mention === 'string') assert.ok(line.includes(mention), `error does not mention ${mention}: ${line}`);
    else assert.match(line, mention);
  }
  assert.doesNotMatch(result.stderr, /internal error|\n\s+at /, 'no stack traces for engine errors');
}

describe('microvm run', () => {
  test('uname -r prints the guest kernel release, not the host one', async () => {
    const result = await cli(['run', '--', 'uname', '-r']);
    assert.equal(result.code, 0, result.stderr);
    const guestRelease = fs.readFileSync(path.join(realHome, 'assets', 'kernel-release'), 'utf8').trim();
    assert.equal(result.stdout.toString(), `${guestRelease}\n`);
    assert.notEqual(guestRelease, os.release());
    assert.match(result.stderr, /warning: .*TCG|^$/s, 'the only stderr is progress and the TCG warning');
  });

  test("the exit code is the guest command's", async () => {
    const result = await cli(['run', '--', 'sh', '-c', 'exit 7']);
    assert.equal(result.code, 7, result.stderr);
  });

  test('1 MiB of random stdin comes back through cat intact', async () => {
    const input = randomBytes(1024 * 1024);
    const result = await cli(['run', '--', 'cat'], { input });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout.length, input.length);
    assert.equal(sha256(result.stdout), sha256(input));
  });

  test('a small text on stdin comes back through cat intact', async () => {
    const input = 'hello, guest\nsecond line without a newline at the end: é ✓';
    const result = await cli(['run', '--', 'cat'], { input });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout.toString('utf8'), input);
  });

  test('flags stop at the first word: `run ls -la /` passes -la to the guest', async () => {
    const result = await cli(['run', 'ls', '-la', '/']);
    assert.equal(result.code, 0, result.stderr);
    const listing = result.stdout.toString();
    assert.match(listing, /^total \d+/m);
    assert.match(listing, /^d[rwx-]{9}.* \.\.?$/m, 'long format with the dot entries that only -a shows');
    assert.match(listing, / bin$/m);
  });

  test('a command missing in the guest exits 127 and says which', async () => {
    const result = await cli(['run', '--', 'no-such-cmd']);
    assert.equal(result.code, 127);
    assert.match(result.stderr, /no-such-cmd/);
  });
});

describe('microvm info', () => {
  test('prints JSON with accel, isolation, qemu, kernel and agent', async () => {
    const result = await cli(['info']);
    assert.equal(result.code, 0, result.stderr);
    const info = JSON.parse(result.stdout.toString());
    assert.ok(['kvm', 'tcg', 'hvf'].includes(info.accel));
    assert.equal(typeof info.accelReason, 'string');
    assert.match(info.qemu.path, /qemu-system/);
    assert.match(info.qemu.version, /^\d+\.\d+\.\d+$/);
    assert.equal(info.kernel, fs.readFileSync(path.join(realHome, 'assets', 'kernel-release'), 'utf8').trim());
    assert.match(info.agent.sha256, /^[0-9a-f]{64}$/);
    if (info.accel === 'tcg') {
      assert.equal(info.isolation, 'emulated');
      assert.match(info.warning, /TCG/);
      assert.match(info.warning, /not.*(isolated|security boundary)/i);
    } else {
      assert.equal(info.isolation, 'hardware');
      assert.equal(info.warning, undefined);
    }
  });
});

describe('bad input is a clear engine error (exit 125)', () => {
  test('a registry reference that cannot be reached names the image', async () => {
    // Port 9 (discard) has no registry anywhere, so this fails the same way with or without network.
    const result = await cli(['run', '--image', '127.0.0.1:9/nginx:latest', '--', 'true']);
    assert.ok(/\[(E_IMAGE_UNSUPPORTED|E_REGISTRY_UNREACHABLE)\]/.test(result.stderr), result.stderr);
    const code = /\[(E_[A-Z_]+)\]/.exec(result.stderr)?.[1] ?? '';
    assertEngineError(result, code, 'nginx:latest');
  });

  test('a malformed image reference', async () => {
    const result = await cli(['run', '--image', 'Not A Ref!', '--', 'true']);
    assert.ok(/\[(E_IMAGE_UNSUPPORTED|E_IMAGE_REF)\]/.test(result.stderr), result.stderr);
    assertEngineError(result, /\[(E_[A-Z_]+)\]/.exec(result.stderr)?.[1] ?? '', 'Not A Ref!');
  });

  test('an image path that does not exist', async () => {
    assertEngineError(
      await cli(['run', '--image', '/nonexistent/dir', '--', 'true']),
      'E_IMAGE_NOT_FOUND',
      '/nonexistent/dir',
    );
  });

  test('an empty MICROVM_HOME asks for setup', async () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'mvh-empty-'));
    tempDirs.push(home);
    assertEngineError(
      await cli(['run', '--', 'true'], { env: { MICROVM_HOME: home } }),
      'E_SETUP_MISSING',
      '`npm run setup`',
      home,
    );
  });

  test('a missing guest kernel (the image is there) asks for setup and names the file', async () => {
    const home = privateHome(['images', 'rootfs']);
    tempDirs.push(home);
    const result = await cli(['run', '--', 'true'], { env: { MICROVM_HOME: home } });
    assertEngineError(result, 'E_SETUP_MISSING', '`npm run setup`', path.join(home, 'assets'));
    assert.doesNotMatch(result.stderr, /default image/, 'the kernel, not the image, is what is missing');
  });

  test('a corrupted initramfs (one flipped byte) is detected before any boot and names the file; setup rebuilds it', async () => {
    const home = privateHome(['images', 'rootfs', 'downloads']);
    tempDirs.push(home);
    for (const part of ['assets', 'stamps', 'build'])
      fs.cpSync(path.join(realHome, part), path.join(home, part), { recursive: true });
    const initrd = path.join(home, 'assets', 'initrd.cpio');
    const bytes = fs.readFileSync(initrd);
    bytes[bytes.length >> 1]! ^= 0x40;
    fs.writeFileSync(initrd, bytes);
    assertEngineError(
      await cli(['run', '--', 'true'], { env: { MICROVM_HOME: home } }),
      'E_SETUP_MISSING',
      'corrupt',
      initrd,
    );

    // What the error says to do works: the stamps (hashes of inputs) still match, the output does not.
    const setup = await runCommand('bash', [path.join(REPO, 'scripts', 'setup')], {
      ...process.env,
      MICROVM_HOME: home,
    });
    assert.equal(setup.code, 0, setup.stderr);
    assert.match(setup.stderr, /rebuilding: the output of step 'initrd' is corrupt or missing/);
    assert.doesNotMatch(setup.stderr, /guest kernel|default image/, 'only the initramfs is rebuilt');
    assert.equal(
      sha256Of(initrd),
      sha256Of(path.join(realHome, 'assets', 'initrd.cpio')),
      'the same bytes as before the flip',
    );
    const run = await cli(['run', '--', 'true'], { env: { MICROVM_HOME: home } });
    assert.equal(run.code, 0, run.stderr);
  });

  test('a damaged default image asks for setup, and setup finds the blob that is not what its name says', async () => {
    const home = privateHome(['assets', 'rootfs']);
    tempDirs.push(home);
    fs.cpSync(path.join(realHome, 'images'), path.join(home, 'images'), { recursive: true });
    const layout = path.join(home, 'images', 'default');
    const manifestDigest = JSON.parse(fs.readFileSync(path.join(layout, 'index.json'), 'utf8')).manifests[0]
      .digest as string;
    const blob = path.join(layout, 'blobs', 'sha256', manifestDigest.slice('sha256:'.length));
    const bytes = fs.readFileSync(blob);
    bytes[bytes.length >> 1]! ^= 0x01;
    fs.writeFileSync(blob, bytes);
    assertEngineError(
      await cli(['run', '--', 'true'], { env: { MICROVM_HOME: home } }),
      'E_SETUP_MISSING',
      'default image',
      layout,
      '`npm run setup`',
    );
    const stale = await runCommand(
      process.execPath,
      [path.join(REPO, 'scripts', 'setup-helper.mjs'), 'stale-steps', path.join(home, 'assets'), layout],
      process.env,
    );
    assert.equal(stale.code, 0, stale.stderr);
    assert.deepEqual(stale.stdout.trim().split('\n'), ['image']);
  });

  test('a run directory that other users can write (a squatter on /dev/shm) is refused, not used', async () => {
    const squatted = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-squat-'));
    tempDirs.push(squatted);
    fs.chmodSync(squatted, 0o777);
    const result = await cli(['run', '--', 'true'], { env: { MICROVM_RUN_DIR: squatted } });
    assertEngineError(result, 'E_STATE_DIR', squatted, 'writable by others (mode 777)', 'MICROVM_RUN_DIR');
    assert.deepEqual(fs.readdirSync(squatted), [], 'no state directory was created in it');
  });

  test('a missing QEMU names the binary', async () => {
    assertEngineError(
      await cli(['run', '--', 'true'], { env: { MICROVM_QEMU: '/nonexistent/qemu' } }),
      'E_QEMU_MISSING',
      '/nonexistent/qemu',
    );
  });

  test('invalid --memory and --cpus values name the flag and the value', async () => {
    const cases: Array<[string[], string, string]> = [
      [['--memory', 'lots'], '--memory', '"lots"'],
      [['--memory', '1'], '--memory', '"1"'],
      [['--cpus', '0'], '--cpus', '"0"'],
      [['--cpus=1.5'], '--cpus', '"1.5"'],
      [['--cpus', '1000'], '--cpus', '"1000"'],
    ];
    for (const [flags, flag, value] of cases) {
      assertEngineError(await cli(['run', ...flags, '--', 'true']), 'E_BAD_OPTION', flag, value);
    }
  });

  test('an unknown flag and a run without a command', async () => {
    assertEngineError(await cli(['run', '--bogus', 'true']), 'E_BAD_OPTION', '--bogus');
    assertEngineError(await cli(['run']), 'E_BAD_OPTION', 'needs a command');
  });
});

/** A file's sha256 (a failed comparison prints two hashes, not two 3 MB buffers). */
function sha256Of(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}
