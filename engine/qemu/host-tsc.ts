import * as fs from 'node:fs';

/**
 * The host's TSC frequency in kHz, or undefined when it cannot be known reliably.
 *
 * Why: under TCG the guest's TSC runs at the host's rate, and a guest kernel calibrates it
 * against the emulated PIT. On a loaded host that calibration fails, the kernel marks the
 * TSC unstable and hangs before init (seen here: 15 of 15 boots hung with five VMs booting
 * at once on 2 cores; 0 of 15 with the frequency given as `tsc_early_khz`).
 */
export function hostTscKhz(): number | undefined {
  const fromSysfs = readNumber('/sys/devices/system/cpu/cpu0/tsc_freq_khz');
  if (fromSysfs) return fromSysfs;
  // Without a cpufreq driver, "cpu MHz" is the kernel's TSC-derived cpu_khz; with one it is
  // the current clock, which may differ from the TSC, so it is not used then.
  if (fs.existsSync('/sys/devices/system/cpu/cpu0/cpufreq')) return undefined;
  let cpuinfo: string;
  try {
    cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return undefined;
  }
  if (!/^flags\s*:.*\bconstant_tsc\b/m.test(cpuinfo)) return undefined;
  const mhz = /^cpu MHz\s*:\s*([\d.]+)/m.exec(cpuinfo)?.[1];
  return mhz ? Math.round(Number(mhz) * 1000) : undefined;
}

function readNumber(file: string): number | undefined {
  try {
    const value = Number(fs.readFileSync(file, 'utf8').trim());
    return Number.isFinite(value) && value > 0 ? value : undefined;
  } catch {
    return undefined;
  }
}
