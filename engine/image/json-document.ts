import * as fs from 'node:fs/promises';
import type { z } from 'zod';
import { MicrovmError } from '../errors';
import { firstIssue } from '../options';

/**
 * Reads a JSON file that has no digest to check it against (oci-layout, index.json), refusing
 * anything larger than `maxBytes` before reading it.
 */
export async function readJsonDocument<T extends z.ZodTypeAny>(
  file: string,
  maxBytes: number,
  schema: T,
): Promise<z.infer<T>> {
  let content: Buffer;
  try {
    const handle = await fs.open(file, 'r');
    try {
      const { size } = await handle.stat();
      if (size > maxBytes) {
        throw new MicrovmError(
          'E_IMAGE_TOO_LARGE',
          `${file} is ${size} bytes, over the ${maxBytes}-byte limit; the layout is malformed or hostile; use another image`,
        );
      }
      content = await handle.readFile();
    } finally {
      await handle.close();
    }
  } catch (err) {
    if (err instanceof MicrovmError) throw err;
    throw new MicrovmError('E_IMAGE_NOT_FOUND', `cannot read ${file}: ${(err as Error).message}; re-export the image`, {
      cause: err,
    });
  }
  if (content.length > maxBytes) {
    throw new MicrovmError('E_IMAGE_TOO_LARGE', `${file} grew past the ${maxBytes}-byte limit while being read`);
  }
  return parseJsonDocument(content, file, schema);
}

export function parseJsonDocument<T extends z.ZodTypeAny>(content: Buffer, file: string, schema: T): z.infer<T> {
  let value: unknown;
  try {
    value = JSON.parse(content.toString('utf8'));
  } catch (err) {
    throw new MicrovmError('E_IMAGE_INVALID', `${file} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  rejectAmbiguous(value, file);
  return validate(value, file, schema);
}

function validate<T extends z.ZodTypeAny>(value: unknown, file: string, schema: T): z.infer<T> {
  const result = schema.safeParse(value);
  if (!result.success) {
    const issue = firstIssue(result.error);
    const jsonPath = ['$', ...issue.path].join('.');
    throw new MicrovmError(
      'E_IMAGE_INVALID',
      `${file} does not match the OCI schema at ${jsonPath}: ${issue.message}; the image is malformed; re-export it`,
    );
  }
  return result.data;
}

/** A document that is both an index and a manifest can be read two ways; refuse it. */
function rejectAmbiguous(value: unknown, file: string): void {
  if (value && typeof value === 'object' && 'manifests' in value && 'layers' in value) {
    throw new MicrovmError(
      'E_IMAGE_INVALID',
      `${file} has both "manifests" and "layers", so it could be read as an index or a manifest; refusing an ambiguous document`,
    );
  }
}
