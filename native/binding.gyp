{
  "targets": [
    {
      "target_name": "pbsfs_native",
      "sources": [
        "src/napi-util.c", "src/locks.c", "src/fsmeta.c", "src/fuse-ll.c", "src/scandir.c", "src/writefile.c",
        "src/buzhash.c", "src/malloc-tuning.c", "src/inode-fd.c", "src/fuse-node-cache.c", "src/chunk-decode.c",
        "src/sha256-job.c"
      ],
      "cflags": ["-std=gnu11", "-Wall", "-Wextra", "-O2", "-Wno-deprecated-declarations", "<!@(pkg-config --cflags fuse3 libzstd)"],
      "libraries": ["<!@(pkg-config --libs fuse3 libzstd)"],
      "defines": ["_GNU_SOURCE", "NAPI_VERSION=8"]
    }
  ]
}
