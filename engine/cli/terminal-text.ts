import { StringDecoder } from 'node:string_decoder';

/**
 * Guest and repository text on the CLI's terminal. A terminal acts on control sequences: a
 * title or a hyperlink (OSC), the clipboard (OSC 52), answers typed back as if by the user
 * (device status and DECRQSS queries). Text the guest or the repository wrote (a hook's or a
 * service's output, a service name, a log line quoting the guest) must not reach the user's
 * terminal as such sequences; it is shown with each control character escaped.
 */

/** C0 controls but tab, DEL and C1 controls (which some terminals take as 8-bit ESC sequences). */
const CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f]/g;

/** `\x1b` as the four characters `\x1b`. */
function escaped(c: string): string {
  return `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
}

/** One line of text (a note, a table cell) with every control character escaped, newlines too. */
export function plainLine(text: string): string {
  return text.replace(CONTROL, escaped);
}

/** A colour or style change (SGR: `ESC [ 1;31 m`), the one sequence output keeps. */
const SGR = /^\x1b\[[0-9;:]{0,32}m/;
/** The start of what may be an SGR cut by a chunk boundary. */
const SGR_PREFIX = /\x1b(\[[0-9;:]{0,32})?$/;

/**
 * A guest's output stream (a hook's, a service's log) for a terminal: line breaks, tabs,
 * carriage returns, backspaces and colours stay (progress bars and colour work as in the VM);
 * every other control character is escaped, so no sequence but SGR reaches the terminal.
 * Chunks may cut a sequence: what could be the start of one waits for the next chunk.
 */
export class TerminalFilter {
  private pending = '';

  write(chunk: string): string {
    let text = this.pending + chunk;
    this.pending = '';
    const cut = SGR_PREFIX.exec(text);
    if (cut) {
      this.pending = text.slice(cut.index);
      text = text.slice(0, cut.index);
    }
    return filterOutput(text);
  }

  /** What is still held (a lone ESC at the end of the stream), escaped. */
  end(): string {
    const rest = this.pending;
    this.pending = '';
    return filterOutput(rest);
  }
}

function filterOutput(text: string): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i] as string;
    if (c === '\x1b') {
      const sgr = SGR.exec(text.slice(i, i + 40));
      if (sgr) {
        out += sgr[0];
        i += sgr[0].length;
        continue;
      }
    }
    out += c === '\n' || c === '\r' || c === '\t' || c === '\b' ? c : c.replace(CONTROL, escaped);
    i += 1;
  }
  return out;
}

/** Guest output for a stream: filtered when it is a terminal, byte for byte when it is a file or a pipe. */
export function guestOutputFor(stream: NodeJS.WriteStream): (chunk: Buffer | string) => string | Buffer {
  if (!stream.isTTY) return (chunk) => chunk;
  const filter = new TerminalFilter();
  const decoder = new StringDecoder('utf8');
  return (chunk) => filter.write(typeof chunk === 'string' ? chunk : decoder.write(chunk));
}
