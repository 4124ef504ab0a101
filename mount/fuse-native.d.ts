// The parts of fuse-native (untyped CommonJS) the mount uses.
declare module 'fuse-native' {
  type Cb<T = number> = (err: number, value?: T) => void;
  export interface FuseStat {
    mode: number;
    uid: number;
    gid: number;
    size: number;
    nlink: number;
    ino: number;
    rdev: number;
    blksize: number;
    blocks: number;
    atime: number;
    mtime: number;
    ctime: number;
  }
  export interface FuseOps {
    init?(cb: (err: number) => void): void;
    getattr?(path: string, cb: Cb<FuseStat>): void;
    readdir?(path: string, cb: (err: number, names?: string[]) => void): void;
    open?(path: string, flags: number, cb: Cb<number>): void;
    release?(path: string, fd: number, cb: (err: number) => void): void;
    read?(path: string, fd: number, buf: Buffer, len: number, pos: number, cb: (n: number) => void): void;
    readlink?(path: string, cb: Cb<string>): void;
    getxattr?(path: string, name: string, position: number, cb: Cb<Buffer | null>): void;
    listxattr?(path: string, cb: Cb<string[]>): void;
    statfs?(path: string, cb: Cb<Record<string, number>>): void;
  }
  export interface FuseOptions {
    maxRead?: number;
    kernelCache?: boolean;
    autoUnmount?: boolean;
    allowOther?: boolean;
    defaultPermissions?: boolean;
    entryTimeout?: number;
    attrTimeout?: number;
    fsname?: string;
    subtype?: string;
    timeout?: number | false;
    debug?: boolean;
  }
  type Signal = (code: number, ...rest: unknown[]) => void;
  class Fuse {
    constructor(mnt: string, ops: FuseOps, opts?: FuseOptions);
    protected ops: FuseOps;
    mount(cb: (err: Error | null) => void): void;
    unmount(cb: (err: Error | null) => void): void;
    static unmount(mnt: string, cb: (err: Error | null) => void): void;
    static readonly ENOENT: number;
    protected _op_getxattr(signal: Signal, path: string, name: string, valueBuf: Buffer, position: number): void;
    protected _op_listxattr(signal: Signal, path: string, listBuf: Buffer): void;
  }
  export default Fuse;
}
