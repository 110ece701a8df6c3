# Helpers to assemble an image's root filesystem from this machine's own files (no registry,
# no Docker). Source it; do not run it.

copy_into() { # copy_into ROOT PATH [DEST]: copy PATH (dereferenced) to DEST (default: PATH) under ROOT
  local dest=${3:-$2}
  mkdir -p "$1$(dirname "$dest")"; cp -L "$2" "$1$dest"
}

add_elf() { # add_elf ROOT FILE [DEST]: an ELF file and the shared libraries it loads (ldd)
  local root=$1 f=$2 dest=${3:-$2} lib
  copy_into "$root" "$f" "$dest"
  for lib in $(ldd "$f" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}'); do
    [[ -e "$root$lib" ]] || copy_into "$root" "$lib"
  done
}

skeleton() { # skeleton ROOT: a minimal /etc, /tmp and the non-root user Tenet runs as
  mkdir -p "$1/etc" "$1/tmp" "$1/run" "$1/proc" "$1/sys" "$1/dev"
  chmod 1777 "$1/tmp"
  printf 'root:x:0:0:root:/root:/bin/sh\ntenet:x:65532:65532:tenet:/nonexistent:/bin/false\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$1/etc/passwd"
  printf 'root:x:0:\ntenet:x:65532:\nnogroup:x:65534:\n' > "$1/etc/group"
  printf 'hosts: files dns\n' > "$1/etc/nsswitch.conf"
}
