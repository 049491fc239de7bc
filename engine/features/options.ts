import { MicrovmError, shown } from '../errors';
import type { FeatureJson, FeatureOption, FeatureWarning, OptionValue } from './types';

/**
 * A feature's option values (spec digest §4.2): the user's value for the feature (an object of
 * options; a string meaning `version` when the feature declares that option; true or {} for
 * the defaults), over the defaults the feature declares. A value outside the declared type or
 * enum is passed as written with a warning, as the reference CLI passes it (install.sh is the
 * judge, and a feature's enum is often narrower than what it installs); only an object or
 * array, which has no text form, is an E_FEATURE_OPTION naming the feature, the option and
 * the value.
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
    out[name] = optionValue(userId, name, raw, option, warnings);
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

/**
 * Booleans (and the strings "true" and "false" that configurations often write for them) and
 * strings (numbers as text). Any other scalar is kept as text with a warning saying what the
 * feature declares.
 */
function optionValue(
  userId: string,
  name: string,
  raw: unknown,
  option: FeatureOption,
  warnings: FeatureWarning[],
): OptionValue {
  if (typeof raw !== 'string' && typeof raw !== 'number' && typeof raw !== 'boolean')
    throw optionError(
      userId,
      name,
      raw,
      `a ${option.type} option`,
      option.type === 'boolean' ? 'write true or false' : 'write a string',
    );
  if (option.type === 'boolean') {
    if (typeof raw === 'boolean') return raw;
    if (raw === 'true' || raw === 'false') return raw === 'true';
    warnings.push(unexpected(userId, name, raw, 'true or false'));
    return String(raw);
  }
  const text = String(raw);
  if (option.enum && !option.enum.includes(text))
    warnings.push(unexpected(userId, name, raw, `one of ${option.enum.map((v) => shown(v)).join(', ')}`));
  return text;
}

function unexpected(userId: string, name: string, raw: unknown, accepted: string): FeatureWarning {
  return {
    feature: userId,
    message: `option ${shown(name)} is ${shown(raw)}, and the feature declares ${accepted}`,
    consequence: `install.sh gets ${shown(String(raw))} as written, as in other tools; it may fail or ignore it`,
  };
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
