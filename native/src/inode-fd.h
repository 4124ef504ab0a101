// File descriptors on an inode already checked through an O_PATH handle (shared by fsmeta.c and scandir.c).
#ifndef PBSFS_INODE_FD_H
#define PBSFS_INODE_FD_H

// A read-only, non-blocking descriptor of the very inode `path_fd` (O_PATH) refers to, without atime updates where
// permitted. The ioctls for chattr flags and project ids need ownership, not write access. Returns fd or -errno;
// `path_fd` stays open.
int reopen_inode(int path_fd);

// Errors meaning "this filesystem or file kind has no such attribute", not a failure.
int is_unsupported(int e);
#endif
