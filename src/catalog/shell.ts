// `pbsfs catalog shell`: navigate a snapshot's file archive by its catalog, look at entries, select and restore.
// The command logic is independent of the terminal so it can be driven by tests and by readline alike.
import { formatBackupTime } from '../datastore/names.js';
import { PbsError } from '../errors.js';
import type { PxarAccessor } from '../pxar/accessor.js';
import { nameToDisplay } from '../pxar/names.js';
import { type BrowserEntry, type TreeBrowser, joinComponents } from './tree-browser.js';

export interface ShellIo {
  print(line: string): void;
}

/** Restores the archive entries matching `patterns` (archive-relative globs) into `target`. */
export type RestoreFn = (target: string, patterns: string[] | undefined) => Promise<{ entries: number; warnings: number }>;

const HELP: [string, string][] = [
  ['cd DIR', 'change the current directory'],
  ['ls [DIR]', 'list a directory'],
  ['pwd', 'print the current directory'],
  ['stat PATH', 'show the metadata of an entry'],
  ['find [DIR] GLOB [--select]', 'find entries matching GLOB below DIR (and select them)'],
  ['select PATH', 'add an entry (a directory: with everything below it) to the selection'],
  ['deselect PATH', 'remove an entry from the selection'],
  ['clear-selected', 'empty the selection'],
  ['list-selected [--patterns]', 'show the selection'],
  ['restore-selected TARGET', 'restore the selected entries into TARGET'],
  ['restore TARGET [--pattern GLOB]', 'restore the current directory (or what GLOB matches) into TARGET'],
  ['help', 'this list'],
  ['exit', 'leave the shell'],
];

const TYPE_NAMES: Record<string, string> = { d: 'dir', f: 'file', l: 'symlink', h: 'hardlink', b: 'block-dev', c: 'char-dev', p: 'fifo', s: 'socket' };

export class CatalogShell {
  /** Current directory as name components below the archive root. */
  private cwd: Uint8Array[] = [];
  private readonly selected = new Set<string>();

  constructor(
    private readonly browser: TreeBrowser,
    private readonly accessor: PxarAccessor,
    private readonly restore: RestoreFn,
    private readonly io: ShellIo,
  ) {}

  get prompt(): string {
    return `pxar:${this.pwd()} > `;
  }

  private pwd(): string {
    return `/${this.cwd.map((c) => nameToDisplay(c)).join('/')}`;
  }

  /** Runs one command line; false when the shell should end. Errors are printed, never thrown. */
  async exec(line: string): Promise<boolean> {
    const [cmd, ...args] = splitWords(line);
    if (!cmd) return true;
    try {
      switch (cmd) {
        case 'exit':
        case 'quit':
          return false;
        case 'help':
          for (const [c, d] of HELP) this.io.print(`${c.padEnd(34)} ${d}`);
          break;
        case 'pwd':
          this.io.print(this.pwd());
          break;
        case 'cd':
          await this.cd(args[0] ?? '/');
          break;
        case 'ls':
          await this.ls(args[0]);
          break;
        case 'stat':
          await this.stat(need(args[0], 'stat PATH'));
          break;
        case 'find':
          await this.find(args);
          break;
        case 'select':
          this.selected.add(this.glob(need(args[0], 'select PATH')));
          break;
        case 'deselect':
          if (!this.selected.delete(this.glob(need(args[0], 'deselect PATH')))) this.io.print('not selected');
          break;
        case 'clear-selected':
          this.selected.clear();
          break;
        case 'list-selected':
          for (const p of this.selected) this.io.print(args.includes('--patterns') ? p : p.replace(/\/\*\*$/, ''));
          break;
        case 'restore-selected': {
          if (this.selected.size === 0) throw new PbsError('EINVAL', 'nothing selected');
          await this.runRestore(need(args[0], 'restore-selected TARGET'), selectionPatterns(this.selected));
          break;
        }
        case 'restore': {
          const target = need(args[0], 'restore TARGET');
          const i = args.indexOf('--pattern');
          const patterns = i >= 0 ? [need(args[i + 1], '--pattern GLOB')] : this.cwd.length ? selectionPatterns([this.glob('.')]) : undefined;
          await this.runRestore(target, patterns);
          break;
        }
        default:
          this.io.print(`unknown command '${cmd}' (try help)`);
      }
    } catch (e) {
      this.io.print(`error: ${(e as Error).message}`);
    }
    return true;
  }

  /** Names that complete the last word of `line` (paths relative to the current directory). */
  async complete(line: string): Promise<string[]> {
    const words = splitWords(line);
    const endsWithSpace = /\s$/.test(line);
    if (words.length === 0 || (words.length === 1 && !endsWithSpace)) return HELP.map(([c]) => c.split(' ')[0]!).filter((c) => c.startsWith(words[0] ?? ''));
    const partial = endsWithSpace ? '' : words[words.length - 1]!;
    const slash = partial.lastIndexOf('/');
    const dirPart = slash >= 0 ? partial.slice(0, slash + 1) : '';
    const base = partial.slice(slash + 1);
    try {
      const entries = await this.browser.list(this.resolve(dirPart || '.'));
      return entries
        .map((e) => nameToDisplay(e.name) + (e.type === 'd' ? '/' : ''))
        .filter((n) => n.startsWith(base))
        .map((n) => dirPart + n);
    } catch {
      return [];
    }
  }

  private resolve(path: string): Uint8Array[] {
    const out = path.startsWith('/') ? [] : [...this.cwd];
    for (const part of path.split('/')) {
      if (part === '' || part === '.') continue;
      if (part === '..') out.pop();
      else out.push(Buffer.from(part));
    }
    return out;
  }

  /** Archive-root-relative glob for a path typed here (`/` anchored, special characters escaped). */
  private glob(path: string): string {
    const parts = this.resolve(path);
    return `/${parts.map((p) => Buffer.from(p).toString().replace(/[\\*?[\]]/g, '\\$&')).join('/')}`;
  }

  private async entryAt(path: Uint8Array[]): Promise<BrowserEntry | undefined> {
    if (path.length === 0) return { name: new Uint8Array(0), type: 'd' };
    return (await this.browser.list(path.slice(0, -1))).find((e) => Buffer.compare(e.name, path[path.length - 1]!) === 0);
  }

  private async cd(path: string): Promise<void> {
    const target = this.resolve(path);
    const e = await this.entryAt(target);
    if (!e) throw new PbsError('ENOENT', `no such directory: ${path}`);
    if (e.type !== 'd') throw new PbsError('EINVAL', `not a directory: ${path}`);
    this.cwd = target;
  }

  private async ls(path = '.'): Promise<void> {
    const target = this.resolve(path);
    const e = await this.entryAt(target);
    if (!e) throw new PbsError('ENOENT', `no such file or directory: ${path}`);
    if (e.type !== 'd') {
      this.io.print(describeEntry(e));
      return;
    }
    for (const c of await this.browser.list(target)) this.io.print(describeEntry(c));
  }

  private async stat(path: string): Promise<void> {
    const parts = this.resolve(path);
    const found = parts.length ? await this.accessor.lookup(joinComponents(parts)) : (await this.accessor.root()).entry;
    if (!found) throw new PbsError('ENOENT', `no such file or directory: ${path}`);
    const e = found.entry.kind === 'hardlink' ? (await this.accessor.followHardlink(found)).entry : found.entry;
    const st = e.metadata.stat;
    this.io.print(`  File: ${this.glob(path).replace(/\\(.)/g, '$1')}`);
    this.io.print(`  Type: ${found.entry.kind}${found.entry.kind === 'hardlink' ? ` -> ${nameToDisplay(found.entry.linkTarget!)}` : ''}`);
    if (e.size !== undefined) this.io.print(`  Size: ${e.size}`);
    if (e.kind === 'symlink') this.io.print(`  Target: ${nameToDisplay(e.linkTarget!)}`);
    if (e.device) this.io.print(`  Device: ${e.device.major},${e.device.minor}`);
    this.io.print(`  Mode: ${(st.mode & 0o7777).toString(8).padStart(4, '0')}  Uid: ${st.uid}  Gid: ${st.gid}`);
    this.io.print(`  Modify: ${formatBackupTime(st.mtime.secs).replace('Z', '')}.${String(st.mtime.nanos).padStart(9, '0')}Z`);
    for (const x of e.metadata.xattrs) this.io.print(`  xattr ${nameToDisplay(x.name)}=${Buffer.from(x.value).toString('hex')}`);
  }

  private async find(args: string[]): Promise<void> {
    const select = args.includes('--select');
    const rest = args.filter((a) => a !== '--select');
    const [dirArg, pattern] = rest.length >= 2 ? [rest[0]!, rest[1]!] : ['.', need(rest[0], 'find [DIR] GLOB')];
    const re = globToRegExp(pattern);
    const start = this.resolve(dirArg);
    const stack: Uint8Array[][] = [start];
    let found = 0;
    while (stack.length) {
      const dir = stack.pop()!;
      for (const e of await this.browser.list(dir)) {
        const path = [...dir, e.name];
        const shown = `/${path.map((p) => nameToDisplay(p)).join('/')}`;
        if (re.test(shown) || re.test(nameToDisplay(e.name))) {
          this.io.print(shown);
          found++;
          if (select) this.selected.add(this.glob(shown));
        }
        if (e.type === 'd') stack.push(path);
      }
    }
    if (!found) this.io.print('no match');
  }

  private async runRestore(target: string, patterns: string[] | undefined): Promise<void> {
    const r = await this.restore(target, patterns);
    this.io.print(`restored ${r.entries} entries to ${target}${r.warnings ? ` (${r.warnings} warnings)` : ''}`);
  }
}

function need(v: string | undefined, usage: string): string {
  if (v === undefined) throw new PbsError('EINVAL', `usage: ${usage}`);
  return v;
}

/** A selected path stands for itself and everything below it. */
function selectionPatterns(paths: Iterable<string>): string[] {
  return [...paths].flatMap((p) => (p === '/' ? ['/**'] : [p, `${p}/**`]));
}

function describeEntry(e: BrowserEntry): string {
  const name = nameToDisplay(e.name);
  const kind = (TYPE_NAMES[e.type] ?? e.type).padEnd(9);
  if (e.type !== 'f') return `${kind} ${name}${e.type === 'd' ? '/' : ''}`;
  return `${kind} ${name}  ${e.size} bytes  ${e.mtime === undefined ? '' : formatBackupTime(e.mtime)}`;
}

/** Words separated by blanks; double quotes group, backslash escapes. */
export function splitWords(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inWord = false;
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (ch === '\\' && i + 1 < line.length) {
      cur += line[++i];
      inWord = true;
    } else if (ch === '"') {
      quoted = !quoted;
      inWord = true;
    } else if (/\s/.test(ch) && !quoted) {
      if (inWord) out.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += ch;
      inWord = true;
    }
  }
  if (inWord) out.push(cur);
  return out;
}

/** `*` and `?` within a name, `**` across directories, `[...]` classes. */
function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i]!;
    if (ch === '*' && glob[i + 1] === '*') {
      re += '.*';
      i++;
    } else if (ch === '*') re += '[^/]*';
    else if (ch === '?') re += '[^/]';
    else if (ch === '[') {
      const end = glob.indexOf(']', i + 1);
      if (end < 0) re += '\\[';
      else {
        re += `[${glob.slice(i + 1, end).replace(/^!/, '^').replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else re += ch.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}
