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
    create?(path: string, mode: number, cb: Cb<number>): void;
    /** cb takes the byte count or a negative errno. */
    write?(path: string, fd: number, buf: Buffer, len: number, pos: number, cb: (n: number) => void): void;
    flush?(path: string, fd: number, cb: (err: number) => void): void;
    fsync?(path: string, datasync: boolean, fd: number, cb: (err: number) => void): void;
    truncate?(path: string, size: number, cb: (err: number) => void): void;
    ftruncate?(path: string, fd: number, size: number, cb: (err: number) => void): void;
    mkdir?(path: string, mode: number, cb: (err: number) => void): void;
    rmdir?(path: string, cb: (err: number) => void): void;
    unlink?(path: string, cb: (err: number) => void): void;
    rename?(src: string, dest: string, cb: (err: number) => void): void;
    symlink?(target: string, path: string, cb: (err: number) => void): void;
    link?(src: string, path: string, cb: (err: number) => void): void;
    mknod?(path: string, mode: number, dev: number, cb: (err: number) => void): void;
    chmod?(path: string, mode: number, cb: (err: number) => void): void;
    chown?(path: string, uid: number, gid: number, cb: (err: number) => void): void;
    utimens?(path: string, atime: number, mtime: number, cb: (err: number) => void): void;
    setxattr?(path: string, name: string, value: Buffer, position: number, flags: number, cb: (err: number) => void): void;
    removexattr?(path: string, name: string, cb: (err: number) => void): void;
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
