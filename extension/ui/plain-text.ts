/**
 * Text from a repository or a guest, made safe to show in VS Code UI: control characters
 * become spaces (newlines kept), markdown's link and emphasis characters are escaped so no
 * `[x](command:...)` survives as a link, and the length is capped.
 */
export function plainText(text: string, max = 500): string {
  const cleaned = text
    .replace(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029]/g, ' ')
    .replace(/([\\`*_{}[\]()<>#!|~$])/g, '\\$1');
  return cleaned.length > max ? `${cleaned.slice(0, max - 3)}...` : cleaned;
}

/**
 * A progress step (it may name an image or a feature from the configuration) for a progress
 * message: control characters become spaces and square brackets parentheses, so no
 * `[x](command:...)` link can form, without the backslashes plainText shows; capped.
 */
export function progressText(text: string, max = 200): string {
  const cleaned = text
    .replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, ' ')
    .replace(/\[/g, '(')
    .replace(/\]/g, ')');
  return cleaned.length > max ? `${cleaned.slice(0, max - 3)}...` : cleaned;
}
