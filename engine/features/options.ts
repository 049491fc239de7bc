import { MicrovmError, shown } from '../errors';
import type { FeatureJson, FeatureWarning, OptionValue } from './types';

/**
 * A feature's option values (spec digest §4.2): the user's value for the feature (an object of
 * options; a string meaning `version` when the feature declares that option; true or {} for
 * the defaults), over the defaults the feature declares. Values are checked against the
 * declared type and enum: a wrong one is an E_FEATURE_OPTION naming the feature, the option,
 * the value and what it accepts.
 */
export function optionValues(
  userId: string,
  json: FeatureJson,
  value: unknown,
  implied: Record<string, boolean>,
  warnings: FeatureWarning[],
): Record<string, OptionValue> {
  const declared = json.options ?? {};
  const given = userOptions(userId, json, value);
  const out: Record<string, OptionValue> = {};
  for (const [name, option] of Object.entries(declared)) if (option.default !== undefined) out[name] = option.default;
  for (const [name, raw] of Object.entries({ ...implied, ...given })) {
    const option = declared[name];
    if (!option) {
      warnings.push({
        feature: userId,
        message: `option ${shown(name)} is not one the feature declares (${Object.keys(declared).join(', ') || 'it has none'})`,
        consequence: `install.sh gets it anyway, as ${envName(name)}`,
      });
      out[name] = typeof raw === 'boolean' ? raw : String(raw);
      continue;
    }
    out[name] =
      option.type === 'boolean' ? booleanValue(userId, name, raw) : stringValue(userId, name, raw, option.enum);
  }
  return out;
}

function userOptions(userId: string, json: FeatureJson, value: unknown): Record<string, unknown> {
  if (value === true || value === undefined || value === null) return {};
  if (typeof value === 'string') return json.options?.version ? { version: value } : {};
  if (typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>;
  const fix =
    value === false
      ? 'false does not leave a feature out: remove its entry instead'
      : 'give an object of options, a version string, or true for the defaults';
  throw new MicrovmError(
    'E_FEATURE_OPTION',
    `feature ${shown(userId)}: its value ${shown(value)} is not an object of options; ${fix}`,
  );
}

/** Booleans, and the strings "true" and "false" that configurations often write for them. */
function booleanValue(userId: string, name: string, raw: unknown): boolean {
  if (typeof raw === 'boolean') return raw;
  if (raw === 'true' || raw === 'false') return raw === 'true';
  throw optionError(userId, name, raw, 'a boolean option', 'write true or false');
}

function stringValue(userId: string, name: string, raw: unknown, allowed: readonly string[] | undefined): string {
  if (typeof raw !== 'string' && typeof raw !== 'number' && typeof raw !== 'boolean')
    throw optionError(userId, name, raw, 'a string option', 'write a string');
  const text = String(raw);
  if (allowed && !allowed.includes(text))
    throw optionError(
      userId,
      name,
      raw,
      'an option with a fixed set of values',
      `use one of ${allowed.map((v) => shown(v)).join(', ')}`,
    );
  return text;
}

function optionError(userId: string, name: string, raw: unknown, what: string, fix: string): MicrovmError {
  return new MicrovmError(
    'E_FEATURE_OPTION',
    `feature ${shown(userId)}: option ${shown(name)} is ${what}, and ${shown(raw)} is not a valid value; ${fix}`,
  );
}

/** The reference CLI's getSafeId: non-word characters to _, a leading run of digits and _ to one _, upper case. */
export function envName(option: string): string {
  return option
    .replace(/[^\w_]/g, '_')
    .replace(/^[\d_]+/g, '_')
    .toUpperCase();
}

/**
 * devcontainer-features.env: `NAME="value"` lines install.sh's wrapper sources. As in the
 * reference CLI, `$` still expands; unlike it, `"`, `\` and backquotes are escaped, so a value
 * cannot end its quotes and run a command of its own.
 */
export function optionsEnvFile(options: Record<string, OptionValue>): string {
  return (
    Object.entries(options)
      .map(([name, value]) => `${envName(name)}=${shellDoubleQuoted(String(value))}`)
      .join('\n') + '\n'
  );
}

export function shellDoubleQuoted(text: string): string {
  return `"${text.replace(/[\\"`]/g, (c) => `\\${c}`)}"`;
}
