// The nodes the kernel knows, by FUSE node id (the node's stable inode number; the root is 1), with the kernel's
// lookup counts: a node is dropped when the kernel forgets it, so memory follows what the kernel caches.
import type { MountNode } from './node.js';

export const ROOT_ID = 1;

export interface Inode {
  readonly id: number;
  node: MountNode;
  /** Lookups the kernel holds (each entry reply, readdirplus entry or create adds one; FORGET takes them back). */
  nlookup: number;
  /** The datastore name below the mount root ('' for the root itself and for one-archive mounts' top). */
  readonly top: string;
  /** The kernel's view of the parent, for '..' in listings. */
  parent: number;
  /** The name it was last reached by (for log lines). */
  name: string;
  /** Attribute record cached for nodes that never change: record `attrsAt` of `attrs` (often a listing's). */
  attrs?: Float64Array;
  attrsAt: number;
  xattrs?: ReadonlyMap<string, Uint8Array>;
  /** Cached listing of a directory that never changes. */
  listing?: Listing;
}

/** A directory listing as the kernel sees it: '.', '..', then the children, with one attribute record each. */
export interface Listing {
  readonly names: string[];
  /** Child nodes, index i + 2 of names. */
  readonly nodes: MountNode[];
  readonly attrs: Float64Array;
  /** name → index in names, built on the first lookup that uses the listing. */
  byName?: Map<string, number>;
}

export class KernelNodes {
  private readonly inodes = new Map<number, Inode>();

  constructor(root: MountNode) {
    this.inodes.set(ROOT_ID, { id: ROOT_ID, node: root, nlookup: 1, top: '', parent: ROOT_ID, name: '', attrs: undefined, attrsAt: 0, xattrs: undefined, listing: undefined });
  }

  get(id: number): Inode | undefined {
    return this.inodes.get(id);
  }

  /** How many nodes are held (the root included). */
  get size(): number {
    return this.inodes.size;
  }

  /** Records one more kernel reference to the node `id`, reached as a child of `parent`. */
  ref(id: number, node: MountNode, parent: Inode, name: string): Inode {
    let ino = this.inodes.get(id);
    if (!ino) {
      // Every field from the start: fields added later would live in a separate property array.
      ino = { id, node, nlookup: 0, top: parent.id === ROOT_ID ? name : parent.top, parent: parent.id, name, attrs: undefined, attrsAt: 0, xattrs: undefined, listing: undefined };
      this.inodes.set(id, ino);
    } else if (Number.isFinite(node.ttlMs)) {
      // A live node looked up again: the fresher object answers (an immutable one keeps its cached state).
      ino.node = node;
    }
    ino.nlookup++;
    ino.name = name;
    return ino;
  }

  /** The kernel dropped `n` references; the node goes when none are left (the root stays). True when it went. */
  forget(id: number, n: number): boolean {
    const ino = this.inodes.get(id);
    if (!ino || id === ROOT_ID) return false;
    ino.nlookup -= n;
    if (ino.nlookup > 0) return false;
    this.inodes.delete(id);
    return true;
  }
}
