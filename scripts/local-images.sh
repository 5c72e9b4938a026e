# shellcheck shell=bash
# Sourced by the scripts that name a local image (build-local-images.sh, the benchmarks):
# reads scripts/local-images.txt, the one place their names are written (lib/localImages.ts
# reads it for TypeScript). Not executable.
LOCAL_IMAGES_MANIFEST="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/local-images.txt"

# local_image_names: the build names, in the manifest's order.
local_image_names() {
  local build _
  while read -r build _; do
    case "$build" in "" | "#"*) continue ;; esac
    printf '%s\n' "$build"
  done <"$LOCAL_IMAGES_MANIFEST"
}

# local_image BUILD: its image, NAME:TAG as the manifest writes it (private-registry/...).
local_image() {
  local build image _
  while read -r build image _; do
    case "$build" in "" | "#"*) continue ;; esac
    if [ "$build" = "$1" ]; then
      printf '%s\n' "$image"
      return 0
    fi
  done <"$LOCAL_IMAGES_MANIFEST"
  echo "scripts/local-images.txt names no image '$1' (it names: $(local_image_names | paste -sd ' '))" >&2
  return 1
}
